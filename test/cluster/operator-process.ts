/**
 * The operator as a separate process, exactly as `npm run controller` starts it, so tests can
 * kill it with SIGKILL: no graceful shutdown, no lease release, requests cut mid-flight.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './tools.js';

/** A running operator process. */
export interface OperatorProcess {
  identity: string;
  child: ChildProcess;
  /** Resolves with the exit code or signal name. */
  exited: Promise<string>;
  kill(signal?: NodeJS.Signals): Promise<string>;
}

/** Starts `src/main.ts` with tsx; its log goes to `<logDir>/<identity>.log`. */
export function spawnOperator(kubeconfigPath: string, identity: string, logDir: string, env: Record<string, string> = {}): OperatorProcess {
  const root = repoRoot();
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src', 'main.ts')], {
    cwd: root,
    // Metrics off unless asked for: several replicas share this host's ports.
    env: { ...process.env, KUBECONFIG: kubeconfigPath, POD_NAME: identity, LOG_LEVEL: 'info', NFV_METRICS_ADDRESS: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = createWriteStream(join(logDir, `${identity}.log`), { flags: 'a' });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? String(code))));
  return {
    identity,
    child,
    exited,
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
