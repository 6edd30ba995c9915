// Prints jest's JSON results as the plain closing line CI reads: "N passed, N failed".
import { readFileSync } from 'node:fs';

let results;
try {
  results = JSON.parse(readFileSync(process.argv[2], 'utf8'));
} catch {
  console.log('0 passed, 1 failed');
  process.exit(0);
}
const suitesFailedToRun = results.testResults.filter((s) => s.status === 'failed' && s.assertionResults.length === 0).length;
const skipped = results.numPendingTests + results.numTodoTests;
console.log(`${results.numPassedTests} passed, ${results.numFailedTests + suitesFailedToRun} failed${skipped ? `, ${skipped} skipped` : ''}`);
