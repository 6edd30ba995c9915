/**
 * Jest global teardown of the e2e project: stops the supervisor of `global-setup.ts`, which stops
 * every cluster process and removes the cluster's temp dir before it exits.
 */
import type { E2eSupervisorHandle } from './global-setup.js';

const STOP_TIMEOUT_MS = 30_000;

export default async function globalTeardown(): Promise<void> {
  const handle = (globalThis as { nfvE2eSupervisor?: E2eSupervisorHandle }).nfvE2eSupervisor;
  if (!handle) return;
  const { child } = handle;
  delete (globalThis as { nfvE2eSupervisor?: E2eSupervisorHandle }).nfvE2eSupervisor;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), STOP_TIMEOUT_MS);
  });
  if (await Promise.race([exited.then(() => false), timedOut])) {
    // Its own exit handler cannot run on SIGKILL; the next cluster start reaps what is left.
    child.kill('SIGKILL');
    process.stderr.write(`e2e cluster supervisor did not stop within ${STOP_TIMEOUT_MS} ms; killed it\n`);
  }
  clearTimeout(timer);
}
