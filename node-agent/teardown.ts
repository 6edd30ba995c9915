import type { Logger } from 'pino';
import { hostStep, type StepContext } from './host-steps.js';
import type { NodeHost } from './host/node-host.js';
import type { VnfJournal } from './journal.js';

/**
 * Reverses every step the journal records, newest first, then deletes the journal. Idempotent
 * and resumable: once the `teardown` record is written the VNF is never prepared again, each
 * undo is announced before it runs and is safe to repeat, so a crash anywhere is finished by
 * calling this again. A VNF without a journal has nothing to tear down.
 */
export async function teardownVnf(journal: VnfJournal, host: NodeHost, context: StepContext, logger?: Logger): Promise<void> {
  const state = await journal.state();
  if (!state.plan) {
    await journal.remove();
    return;
  }
  if (!state.tearingDown) await journal.append({ op: 'teardown' });
  for (const step of [...state.steps.values()].reverse()) {
    if (step.status === 'undone') continue;
    if (step.status !== 'undoing') await journal.append({ op: 'undo', step: step.name });
    logger?.debug({ step: step.name }, 'undoing host step');
    await hostStep(step.name, state.plan, host, context).undo(step.data);
    await journal.append({ op: 'undone', step: step.name });
  }
  await journal.remove();
}
