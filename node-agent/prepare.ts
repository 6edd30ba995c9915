import type { Logger } from 'pino';
import { hostStep, hostStepNames, podStepNames, type StepContext } from './host-steps.js';
import type { NodeHost } from './host/node-host.js';
import type { JournalState, VnfJournal } from './journal.js';
import { jsonEqual } from '../src/runtime/json-equal.js';
import type { VnfHostPlan } from './validate.js';

/** Options of {@link prepareVnf}. */
export interface PrepareOptions {
  /** The VNF's pod, once it exists on this node: enables the cgroup and ready-signal steps. */
  podUid?: string;
  logger?: Logger;
}

/** How far preparation got. */
export type PrepareResult =
  /** Host-side steps are done; waiting for the pod (or its cgroup). */
  | { stage: 'host' }
  /** Cgroup limits applied and the ready signal written for this pod. */
  | { stage: 'ready'; podUid: string };

/** Preparation was asked of a VNF whose journal is tearing down, or whose placement changed. */
export class PrepareRefusedError extends Error {
  override readonly name = 'PrepareRefusedError';
}

/**
 * Brings the host to the plan, step by step, each announced in the journal before it touches the
 * host. Idempotent and resumable: steps already done are applied again without journaling (so
 * the host converges back if reality drifted, e.g. after a reboot lost the mounts), a step begun
 * before a crash is simply run again, and new steps are journaled first.
 *
 * With `podUid`, also the pod stage: cgroup limits, then the ready signal. A pod that replaced
 * an earlier one gets its own steps after the earlier pod's signal has been withdrawn.
 *
 * @throws PodCgroupMissingError while the pod's cgroup does not exist yet (host steps are done).
 * @throws HostStepError with the CamelCase reason of the step that failed.
 */
export async function prepareVnf(
  plan: VnfHostPlan,
  journal: VnfJournal,
  host: NodeHost,
  context: StepContext,
  options: PrepareOptions = {},
): Promise<PrepareResult> {
  const state = await journal.state();
  if (state.tearingDown) throw new PrepareRefusedError(`VNF ${plan.namespace}/${plan.name} (${plan.uid}) is being torn down on this node; teardown finishes first`);
  if (!state.plan) await journal.append({ op: 'plan', plan });
  else if (!jsonEqual(state.plan, plan)) {
    throw new PrepareRefusedError(`the placement of VNF ${plan.namespace}/${plan.name} changed after the node prepared it; delete and recreate the VNF`);
  }
  const effective = state.plan ?? plan;
  const run = (name: string) => runStep(name, effective, journal, host, context, state, options.logger);

  for (const name of hostStepNames(effective)) await run(name);
  if (!options.podUid) return { stage: 'host' };

  const current = new Set(podStepNames(options.podUid));
  const stale = [...state.steps.values()].filter((step) => /^(ready|cgroups):/.test(step.name) && !current.has(step.name) && step.status !== 'undone');
  for (const step of stale.reverse()) {
    if (step.status !== 'undoing') await journal.append({ op: 'undo', step: step.name });
    await hostStep(step.name, effective, host, context).undo(step.data);
    await journal.append({ op: 'undone', step: step.name });
    step.status = 'undone';
  }
  for (const name of podStepNames(options.podUid)) await run(name);
  return { stage: 'ready', podUid: options.podUid };
}

/** Whether the pod stage (cgroup limits, ready signal) of `podUid` is done and not undone. */
export async function podStageDone(journal: VnfJournal, podUid: string): Promise<boolean> {
  const { steps } = await journal.state();
  return podStepNames(podUid).every((name) => steps.get(name)?.status === 'done');
}

async function runStep(
  name: string,
  plan: VnfHostPlan,
  journal: VnfJournal,
  host: NodeHost,
  context: StepContext,
  state: JournalState,
  logger: Logger | undefined,
): Promise<void> {
  const step = hostStep(name, plan, host, context);
  const known = state.steps.get(name);
  if (known?.status === 'done') {
    await step.apply(known.data);
    return;
  }
  let data = known && known.status !== 'undone' ? known.data : undefined;
  if (!known || known.status === 'undone') {
    data = step.capture ? await step.capture() : undefined;
    await journal.append({ op: 'begin', step: name, ...(data ? { data } : {}) });
  }
  logger?.debug({ step: name }, 'applying host step');
  const result = await step.apply(data);
  await journal.append({ op: 'done', step: name, ...(result ? { data: result } : {}) });
  state.steps.set(name, { name, status: 'done', data: { ...data, ...(result ?? {}) } });
}
