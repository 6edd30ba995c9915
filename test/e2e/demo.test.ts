import { expect, test } from '@jest/globals';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../cluster/tools.js';
import { waitUntil } from '../cluster/wait-until.js';

interface DemoRun {
  stdout: string;
  stderr: string;
  code: number | null;
}

// The README's first command, minus the dependency bootstrap that `npm run demo` does first.
function runDemo(env: Record<string, string>, interruptWhen?: (stdout: string) => boolean): Promise<DemoRun> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot(), 'demo', 'run-demo.ts')], {
    cwd: repoRoot(),
    env: { ...process.env, KUBECONFIG: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const run: DemoRun = { stdout: '', stderr: '', code: null };
  child.stdout.on('data', (chunk: Buffer) => {
    run.stdout += chunk.toString();
    if (interruptWhen?.(run.stdout)) child.kill('SIGINT');
  });
  child.stderr.on('data', (chunk: Buffer) => (run.stderr += chunk.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ ...run, code })));
}

const clusterDir = (stderr: string) => /KUBECONFIG=(\/\S+)\/admin\.kubeconfig/.exec(stderr)?.[1];

test('npm run demo brings the examples to Ready on its own local cluster and stops cleanly', async () => {
  const run = await runDemo({ NFV_DEMO_EXIT_WHEN_READY: '1' });
  expect(run.stderr).toMatch(/all 4 VNFs are Ready/);
  expect(run.code).toBe(0);
  const table = run.stdout.trim().split('\n\n').at(-1)!;
  for (const name of ['l2fwd', 'l3fwd', 'chain-access', 'chain-core']) expect(table).toMatch(new RegExp(`default\\s+${name}\\s+Running\\s+True`));
  expect(run.stderr).toMatch(/stopped cleanly/);
  expect(existsSync(clusterDir(run.stderr)!)).toBe(false);
});

test('Ctrl-C stops the demo, its cluster and its processes', async () => {
  const run = await runDemo({}, (stdout) => /chain-core\s+Running/.test(stdout));
  expect(run.code).toBe(0);
  expect(run.stderr).toMatch(/stopped cleanly/);
  const dir = clusterDir(run.stderr)!;
  await waitUntil('the cluster dir to be removed', () => !existsSync(dir), { timeoutMs: 10_000 });
});
