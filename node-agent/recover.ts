import type { Logger } from 'pino';
import type { StepContext } from './host-steps.js';
import type { NodeHost } from './host/node-host.js';
import type { JournalState, JournalStore } from './journal.js';
import { prepareVnf } from './prepare.js';
import { teardownVnf } from './teardown.js';

/** What should become of a journaled VNF, as the caller (the agent, from the API server) knows it. */
export type RecoveryIntent =
  /** Finish preparing; with the pod UID, through the ready signal. */
  | { intent: 'prepare'; podUid?: string }
  /** Reverse everything. */
  | { intent: 'teardown' }
  /** Not known yet (the API server is not reachable): leave it to the next reconcile. */
  | { intent: 'unknown' };

/** A step context that knows the other journals: a memif directory stays while another VNF's journal lists it. */
export function journalStepContext(store: JournalStore, self: string): StepContext {
  return {
    async memifDirInUse(dir) {
      for (const [uid, state] of await store.states()) {
        if (uid === self || !state.plan || state.tearingDown) continue;
        if (state.plan.memifDirs.includes(dir)) return true;
      }
      return false;
    },
  };
}

/** One journal's recovery outcome. */
export interface RecoveryOutcome {
  uid: string;
  action: 'prepared' | 'tornDown' | 'left';
  error?: Error;
}

/**
 * Reconciles every journal with reality after a (re)start: teardowns in progress are finished
 * whatever `intentOf` says, and the rest go where `intentOf` says. Each journal is handled on
 * its own, so one failing VNF does not block the others.
 */
export async function recoverJournals(
  store: JournalStore,
  host: NodeHost,
  intentOf: (uid: string, state: JournalState) => RecoveryIntent,
  logger?: Logger,
): Promise<RecoveryOutcome[]> {
  const outcomes: RecoveryOutcome[] = [];
  for (const [uid, state] of await store.states()) {
    const journal = store.journal(uid);
    const context = journalStepContext(store, uid);
    const intent: RecoveryIntent = state.tearingDown || !state.plan ? { intent: 'teardown' } : intentOf(uid, state);
    try {
      if (intent.intent === 'teardown') {
        await teardownVnf(journal, host, context, logger?.child({ vnfUid: uid }));
        outcomes.push({ uid, action: 'tornDown' });
      } else if (intent.intent === 'prepare') {
        await prepareVnf(state.plan!, journal, host, context, { podUid: intent.podUid, logger: logger?.child({ vnfUid: uid }) });
        outcomes.push({ uid, action: 'prepared' });
      } else {
        outcomes.push({ uid, action: 'left' });
      }
    } catch (err) {
      logger?.error({ err, vnfUid: uid }, 'recovery of a journaled VNF failed');
      outcomes.push({ uid, action: 'left', error: err as Error });
    }
  }
  return outcomes;
}
