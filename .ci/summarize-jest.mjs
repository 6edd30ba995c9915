// Prints the plain closing line CI reads, "N passed, N failed": jest's tests from its JSON
// results, plus one entry per extra check given as name=exitCode (typecheck, lint).
import { readFileSync } from 'node:fs';

const [resultsFile, ...checks] = process.argv.slice(2);
let passed = 0;
let failed = 0;
let skipped = 0;
try {
  const results = JSON.parse(readFileSync(resultsFile, 'utf8'));
  // A suite that fails to load (syntax error, a throwing beforeAll) has no assertions to count.
  const brokenSuites = results.testResults.filter((s) => s.status === 'failed' && s.assertionResults.length === 0).length;
  passed = results.numPassedTests;
  failed = results.numFailedTests + brokenSuites;
  skipped = results.numPendingTests + results.numTodoTests;
} catch {
  console.error('jest wrote no results: counting the test run as one failure');
  failed = 1;
}
for (const check of checks) {
  const [name, code] = check.split('=');
  if (code === '0') passed++;
  else {
    failed++;
    console.error(`${name} failed`);
  }
}
// Skipped tests on a line of their own: the closing line stays exactly "N passed, N failed".
if (skipped) console.log(`${skipped} skipped (see the test output for why)`);
console.log(`${passed} passed, ${failed} failed`);
