/**
 * Jest global setup of the e2e project: starts one local cluster for every e2e file.
 *
 * The cluster runs in a child process (`start-cluster.ts --supervised`) rather than in Jest's own
 * process, for three reasons: Jest loads this file outside its module registry, where neither
 * `moduleNameMapper` nor the ESM transform applies, so the cluster code (whose imports end in
 * `.js`) cannot be imported here; test files may run in worker processes, which reach the
 * supervisor's control endpoint to restart the API server; and the supervisor stops the cluster
 * by itself if Jest dies without running the teardown. Test files get the cluster from
 * `e2e-env.ts`.
 */
import { spawn, type ChildProcess } from 'node:child_process';

/** Where the teardown finds the supervisor (Jest runs setup and teardown in one process). */
export interface E2eSupervisorHandle {
  child: ChildProcess;
}

/** Must equal `E2E_CLUSTER_ENV` in e2e-env.ts, which this file cannot import (see above). */
const CLUSTER_ENV = 'NFV_E2E_CLUSTER';
const SHARED_NODES = '2';

/** Jest passes the global and the project configuration; only the project's root is needed. */
export default async function globalSetup(_globalConfig: unknown, projectConfig: { rootDir: string }): Promise<void> {
  const began = Date.now();
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'test/cluster/start-cluster.ts', '--supervised', '--nodes', SHARED_NODES, '--node-prefix', 'e2e-node'],
    { cwd: projectConfig.rootDir, stdio: ['ignore', 'pipe', 'pipe'], env: process.env },
  );
  const stderrTail: string[] = [];
  let partial = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      // Building the tools takes minutes on a cold cache: show its steps, keep the rest for errors.
      if (line.includes('[build-tools]')) process.stderr.write(`${messageOf(line)}\n`);
      stderrTail.push(line);
      if (stderrTail.length > 60) stderrTail.shift();
    }
  });

  const line = await new Promise<string>((resolve, reject) => {
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const newline = stdout.indexOf('\n');
      if (newline >= 0) resolve(stdout.slice(0, newline));
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      reject(
        new Error(
          `the e2e cluster did not start (start-cluster.ts ended with ${signal ?? `exit code ${code}`}):\n` +
            [...stderrTail, partial].join('\n'),
        ),
      );
    });
  });

  // From here on the supervisor logs into the cluster's temp dir and never writes to these pipes.
  child.stdout.destroy();
  child.stderr.destroy();
  child.unref();
  process.env[CLUSTER_ENV] = line;
  (globalThis as { nfvE2eSupervisor?: E2eSupervisorHandle }).nfvE2eSupervisor = { child };
  const info = JSON.parse(line) as { server: string; startupMs: number };
  process.stderr.write(`\ne2e cluster ready at ${info.server} in ${Date.now() - began} ms (control plane ${info.startupMs} ms)\n`);
}

/** The `msg` of a pino JSON line, or the line itself. */
function messageOf(line: string): string {
  try {
    const parsed = JSON.parse(line) as { msg?: unknown };
    return typeof parsed.msg === 'string' ? parsed.msg : line;
  } catch {
    return line;
  }
}
