/**
 * Runs host test files with jest inside the VM and reads jest's JSON report back, one entry per
 * file. The guest's stderr starts with the cgroup mounts and the root's controllers, so a test can
 * check what kind of host the files ran on.
 */
import { posix } from 'node:path';
import { REPO_ROOT } from './vm-guest.js';

/** One failed test of a file, as jest names it (describe titles and test title). */
export interface TestFailure {
  title: string;
  message: string;
}

/** What jest reported for one test file. */
export interface FileReport {
  passed: number;
  /** Tests that did not run: skipped, pending or todo. */
  skipped: number;
  failures: TestFailure[];
}

const quote = (value: string) => `'${value.replaceAll("'", `'\\''`)}'`;

/**
 * The guest job: prints the cgroup mounts and controllers to stderr, then runs `files` (paths
 * relative to the repo) with the host project's jest config, serially, with its cache in the
 * guest's /tmp (the repo is read-only there), the JSON report on stdout.
 */
export function jestInGuestScript(files: readonly string[]): string {
  return [
    'set -u',
    "grep -E ' cgroup2? ' /proc/mounts >&2",
    'echo "controllers: $(cat /sys/fs/cgroup/cgroup.controllers)" >&2',
    'echo "cpus: $(cat /sys/devices/system/cpu/online)" >&2',
    [
      'exec node --experimental-vm-modules node_modules/jest/bin/jest.js --selectProjects host --runInBand --ci --json',
      '--cacheDirectory /tmp/jest-cache',
      ...files.map(quote),
    ].join(' '),
    '',
  ].join('\n');
}

interface JestJson {
  testResults: {
    name: string;
    message?: string;
    assertionResults: { fullName: string; status: string; failureMessages: string[] }[];
  }[];
}

/** jest's `--json` report, per file relative to the repo; a file that did not run reports its error. */
export function parseJestReport(stdout: string): Map<string, FileReport> {
  const start = stdout.indexOf('{');
  if (start < 0) throw new Error(`jest in the guest printed no JSON report:\n${stdout.slice(-2000)}`);
  const report = JSON.parse(stdout.slice(start)) as JestJson;
  const files = new Map<string, FileReport>();
  for (const result of report.testResults) {
    const failures = result.assertionResults
      .filter((assertion) => assertion.status === 'failed')
      .map((assertion) => ({ title: assertion.fullName, message: assertion.failureMessages.join('\n') }));
    if (result.assertionResults.length === 0 && result.message) failures.push({ title: '(the file did not run)', message: result.message });
    const passed = result.assertionResults.filter((assertion) => assertion.status === 'passed').length;
    const skipped = result.assertionResults.filter((assertion) => assertion.status !== 'passed' && assertion.status !== 'failed').length;
    files.set(posix.relative(REPO_ROOT, result.name), { passed, skipped, failures });
  }
  return files;
}
