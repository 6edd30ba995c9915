/**
 * The agent's host side as a separate process, so a test can SIGKILL it at an exact point:
 * prepares, tears down or recovers one VNF and prints the outcome as JSON. With
 * `killAfterAppend: n` it kills itself with SIGKILL right after the n-th journal record is on
 * disk, i.e. between two host changes, exactly where a crash hurts most.
 *
 * Usage: node --import tsx step-runner.ts '<json RunnerRequest>' (crash-safety.test.ts runs it
 * bundled by esbuild, which starts faster).
 */
import { JournalStore } from '../../../node-agent/journal.js';
import { createNodeHost, type HostRoots } from '../../../node-agent/host/node-host.js';
import { prepareVnf } from '../../../node-agent/prepare.js';
import { journalStepContext, recoverJournals } from '../../../node-agent/recover.js';
import { teardownVnf } from '../../../node-agent/teardown.js';
import type { VnfHostPlan } from '../../../node-agent/validate.js';

/** What the runner is asked to do. */
export interface RunnerRequest {
  action: 'prepare' | 'teardown' | 'recover';
  stateRoot: string;
  roots: HostRoots;
  plan: VnfHostPlan;
  podUid?: string;
  /** For recover: what the API server would say about the VNF. */
  intent?: 'prepare' | 'teardown';
  killAfterAppend?: number;
  /** Kill with SIGKILL this many ms after the first journal record, wherever the code then is (mid-step). */
  killAfterMsFromFirstAppend?: number;
  /** Files whose content is the host's mount table for the disk check. */
  hostMountInfo?: string;
}

async function main(): Promise<void> {
  const request = JSON.parse(process.argv[2]!) as RunnerRequest;
  let appends = 0;
  const store = new JournalStore(request.stateRoot, {
    afterAppend: () => {
      appends++;
      if (appends === 1 && request.killAfterMsFromFirstAppend !== undefined) {
        setTimeout(() => process.kill(process.pid, 'SIGKILL'), request.killAfterMsFromFirstAppend);
      }
      if (request.killAfterAppend === appends) process.kill(process.pid, 'SIGKILL');
    },
  });
  const host = createNodeHost(request.roots, { hostMountInfo: request.hostMountInfo, driverSettleTimeoutMs: 3000 });
  const journal = store.journal(request.plan.uid);
  const context = journalStepContext(store, request.plan.uid);
  let result: unknown;
  switch (request.action) {
    case 'prepare':
      result = await prepareVnf(request.plan, journal, host, context, { podUid: request.podUid });
      break;
    case 'teardown':
      await teardownVnf(journal, host, context);
      result = { tornDown: true };
      break;
    case 'recover':
      result = await recoverJournals(store, host, () => (request.intent === 'teardown' ? { intent: 'teardown' } : { intent: 'prepare', podUid: request.podUid }));
      break;
  }
  process.stdout.write(JSON.stringify({ result, appends }));
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
