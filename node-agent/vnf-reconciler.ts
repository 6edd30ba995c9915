import type { V1Pod } from '@kubernetes/client-node';
import { AGENT_FIELD_MANAGER, VNF_NAME_LABEL } from '../src/api/group.js';
import type { VirtualNetworkFunction } from '../src/api/virtual-network-function.js';
import type { Clock } from '../src/runtime/clock.js';
import { findCondition, setCondition, type Condition, type ConditionUpdate } from '../src/runtime/conditions.js';
import type { ReconcileContext } from '../src/runtime/controller.js';
import { StalledError, WaitingError, type ReconcileResult } from '../src/runtime/errors.js';
import type { KubeClient } from '../src/runtime/kube-client.js';
import type { ResourceRef } from '../src/runtime/kube-object.js';
import { HostStepError } from './host-steps.js';
import type { NodeHost } from './host/node-host.js';
import { PodCgroupMissingError } from './host/pod-cgroups.js';
import type { JournalStore } from './journal.js';
import { podStageDone, prepareVnf, PrepareRefusedError } from './prepare.js';
import { journalStepContext } from './recover.js';
import { teardownVnf } from './teardown.js';
import type { AgentMetrics } from './agent-metrics.js';
import { InvalidPlacementError, planVnfHost } from './validate.js';

/** The condition the agent owns on a VNF. */
export const NODE_PREPARED = 'NodePrepared';

/** REST coordinates of VirtualNetworkFunctions. */
export const VNF_RESOURCE: ResourceRef = { group: 'nfv.dev', version: 'v1alpha1', plural: 'virtualnetworkfunctions', kind: 'VirtualNetworkFunction', namespaced: true };

/** What the VNF reconcile sees. */
export interface VnfObservation {
  nodeName: string;
  /** The VNF from the cache; undefined when it is gone. */
  vnf?: VirtualNetworkFunction;
  /** Pods on this node labelled with the VNF's name. */
  pods: readonly V1Pod[];
  /** UIDs of VNFs with this namespace/name that have a journal here. */
  journaled: readonly string[];
}

/** What to do about one VNF key; pure, from {@link VnfObservation}. */
export interface VnfDecision {
  /** Journals to tear down now (their VNF is gone or deleting, and its pods are gone). */
  teardown: string[];
  /** Then: prepare the current VNF (with its pod's UID once it runs here), or report, or wait. */
  next:
    | { type: 'prepare'; podUid?: string }
    | { type: 'reportTornDown' }
    | { type: 'waitForPods'; pods: string[] }
    | { type: 'nothing' };
}

function podsOf(pods: readonly V1Pod[], uid: string): V1Pod[] {
  return pods.filter((pod) => {
    const owners = pod.metadata?.ownerReferences ?? [];
    return owners.length === 0 || owners.some((owner) => owner.uid === uid);
  });
}

/**
 * Decides per the agent protocol: prepare a VNF placed here and not being deleted (with its pod
 * once the pod runs on this node); tear down a deleting or vanished VNF once no pod of it is
 * left; never tear down while a pod may still use the host paths.
 */
export function decideVnf(obs: VnfObservation): VnfDecision {
  const { vnf } = obs;
  const currentUid = vnf?.metadata.uid;
  const teardown = obs.journaled.filter((uid) => uid !== currentUid && podsOf(obs.pods, uid).length === 0);
  if (!vnf) return { teardown, next: { type: 'nothing' } };
  const placedHere = vnf.status?.placement?.node === obs.nodeName;
  const mine = podsOf(obs.pods, currentUid!);
  if (placedHere && !vnf.metadata.deletionTimestamp) {
    const pod = mine.find((p) => p.metadata?.name === vnf.status?.podName && !p.metadata?.deletionTimestamp && p.spec?.nodeName === obs.nodeName);
    return { teardown, next: { type: 'prepare', ...(pod?.metadata?.uid ? { podUid: pod.metadata.uid } : {}) } };
  }
  if (mine.length > 0) return { teardown, next: { type: 'waitForPods', pods: mine.map((p) => p.metadata!.name!) } };
  if (obs.journaled.includes(currentUid!)) teardown.push(currentUid!);
  return { teardown, next: vnf.metadata.deletionTimestamp ? { type: 'reportTornDown' } : { type: 'nothing' } };
}

/** What the VNF reconcile needs. */
export interface VnfReconcilerDeps {
  nodeName: string;
  stateRoot: string;
  host: NodeHost;
  journals: JournalStore;
  getVnf(key: string): VirtualNetworkFunction | undefined;
  /** Pods on this node in `namespace` labelled with the VNF name. */
  podsOf(namespace: string, name: string): V1Pod[];
  client: Pick<KubeClient, 'apply'>;
  clock: Clock;
  /** Online CPUs and NUMA nodes of the node, to validate placements against. */
  hostFacts(): Promise<{ cpus: Set<number>; numaNodes: Set<number> }>;
  /** Called after the host changed (hugepage floors and the inventory may have moved). */
  onHostChanged(): void;
  /** Durations and failures of prepare and teardown. Default: not recorded. */
  metrics?: AgentMetrics;
  /**
   * Why the VNF's DPDK container would now start without its hugetlb limit (the runtime applies
   * container limits and the agent's NRI plugin is not registered), or undefined. While it says
   * so, a pod's ready signal is held back: the container would start with kubelet's limit 0 and
   * DPDK would fail with ENOMEM. Default: never.
   */
  containerLimitsMissing?(): Promise<string | undefined>;
}

/** Condition reasons that retrying cannot fix until the VNF (or the node's configuration) changes. */
const TERMINAL_REASONS = new Set(['InvalidPlacement', 'PlacementChanged']);

/** The reconcile of one VNF key on this node. */
export function vnfReconciler(deps: VnfReconcilerDeps) {
  return async (key: string, ctx: ReconcileContext): Promise<ReconcileResult | void> => {
    const [namespace, name] = key.split('/') as [string, string];
    const vnf = deps.getVnf(key);
    const journaled: string[] = [];
    for (const [uid, state] of await deps.journals.states()) {
      if (state.plan?.namespace === namespace && state.plan.name === name) journaled.push(uid);
    }
    const decision = decideVnf({ nodeName: deps.nodeName, vnf, pods: deps.podsOf(namespace, name), journaled });
    const logger = ctx.logger;
    const reported: ReportedCondition = { current: findCondition(vnf?.status?.conditions as Condition[] | undefined, NODE_PREPARED) };

    for (const uid of decision.teardown) {
      logger.info({ vnfUid: uid }, 'tearing down host changes');
      const started = deps.clock.now();
      try {
        await teardownVnf(deps.journals.journal(uid), deps.host, journalStepContext(deps.journals, uid), logger);
      } catch (err) {
        deps.metrics?.failed('teardown', err instanceof HostStepError ? err.reason : 'TeardownFailed');
        throw err;
      }
      deps.metrics?.succeeded('teardown', (deps.clock.now() - started) / 1000);
      deps.onHostChanged();
    }

    const next = decision.next;
    if (!vnf || next.type === 'nothing') return;
    if (next.type === 'waitForPods') {
      logger.debug({ pods: next.pods }, 'waiting for the pods to go before teardown');
      return;
    }
    if (next.type === 'reportTornDown') {
      await report(deps, vnf, reported, { status: 'False', reason: 'TornDown', message: `every host change on ${deps.nodeName} is undone` }, ctx);
      return;
    }

    const uid = vnf.metadata.uid!;
    let plan;
    try {
      const facts = await deps.hostFacts();
      plan = planVnfHost(vnf, { stateRoot: deps.stateRoot, nodeName: deps.nodeName, ...facts });
    } catch (err) {
      if (!(err instanceof InvalidPlacementError)) throw err;
      await report(deps, vnf, reported, { status: 'False', reason: err.reason, message: `${err.message}; the agent touched nothing on ${deps.nodeName}` }, ctx);
      throw new StalledError(err.reason, err.message);
    }
    const current = reported.current;
    // Preparing is announced when preparation begins (first time, or for a new pod), not on every
    // retry: writing it over the last attempt's outcome (waiting for kubelet, a failed step) and
    // then the outcome again flips the condition twice per attempt, and each write comes back
    // through the watch and runs this reconcile again at once, defeating the retry delays.
    const entering = current === undefined || (current.status === 'True' && !current.message.includes(next.podUid ?? '\0'));
    if (entering) {
      await report(deps, vnf, reported, { status: 'False', reason: 'Preparing', message: next.podUid ? `applying cgroup limits to pod ${next.podUid}` : `preparing hugetlbfs, sysfs masks and drivers on ${deps.nodeName}` }, ctx);
    }
    const journal = deps.journals.journal(uid);
    // Checked only until this pod is ready: a signal once given is never withdrawn for it.
    const missing = next.podUid && !(await podStageDone(journal, next.podUid)) ? await deps.containerLimitsMissing?.() : undefined;
    const started = deps.clock.now();
    try {
      const result = await prepareVnf(plan, journal, deps.host, journalStepContext(deps.journals, uid), { podUid: missing ? undefined : next.podUid, logger });
      deps.metrics?.succeeded('prepare', (deps.clock.now() - started) / 1000, result.stage);
      deps.onHostChanged();
      if (missing) {
        await report(deps, vnf, reported, { status: 'False', reason: 'WaitingForNriPlugin', message: `host side prepared on ${deps.nodeName}; the ready signal of pod ${next.podUid} waits: ${missing}` }, ctx);
        throw new WaitingError('WaitingForNriPlugin', missing, 2000);
      }
      if (result.stage === 'host') {
        await report(deps, vnf, reported, { status: 'False', reason: 'Preparing', message: `host side prepared on ${deps.nodeName}; waiting for pod ${vnf.status?.podName ?? '(not created yet)'} to start here` }, ctx);
        return;
      }
      await report(deps, vnf, reported, { status: 'True', reason: 'Prepared', message: `hugetlbfs, cgroups, sysfs masks and drivers ready for pod ${result.podUid}` }, ctx);
    } catch (err) {
      if (err instanceof WaitingError) throw err;
      if (err instanceof PodCgroupMissingError) {
        await report(deps, vnf, reported, { status: 'False', reason: 'Preparing', message: `waiting for kubelet to create the cgroup of pod ${next.podUid}` }, ctx);
        throw new WaitingError('Preparing', err.message, 1000);
      }
      const reason = err instanceof HostStepError ? err.reason : err instanceof PrepareRefusedError ? 'PlacementChanged' : 'NodePreparationFailed';
      deps.metrics?.failed('prepare', reason);
      await report(deps, vnf, reported, { status: 'False', reason, message: (err as Error).message }, ctx);
      if (TERMINAL_REASONS.has(reason)) throw new StalledError(reason, (err as Error).message, { cause: err });
      throw err;
    }
  };
}

/** The NodePrepared condition as last seen or sent during one reconcile (the cache lags our own writes). */
interface ReportedCondition {
  current?: Condition;
}

/**
 * Server-side applies the NodePrepared condition, and nothing else of the status: the controller
 * owns the other conditions and fields. Unchanged conditions are not written.
 */
async function report(
  deps: VnfReconcilerDeps,
  vnf: VirtualNetworkFunction,
  reported: ReportedCondition,
  update: Omit<ConditionUpdate, 'type'>,
  ctx: ReconcileContext,
): Promise<void> {
  const generation = vnf.metadata.generation;
  const full: ConditionUpdate = { type: NODE_PREPARED, ...update, ...(generation !== undefined ? { observedGeneration: generation } : {}) };
  const before = reported.current;
  if (before && before.status === full.status && before.reason === full.reason && before.message === full.message && before.observedGeneration === full.observedGeneration) return;
  const [condition] = setCondition(before ? [before] : [], full, new Date(deps.clock.now()));
  await deps.client.apply(
    VNF_RESOURCE,
    { apiVersion: 'nfv.dev/v1alpha1', kind: 'VirtualNetworkFunction', metadata: { name: vnf.metadata.name, namespace: vnf.metadata.namespace }, status: { conditions: [condition] } },
    { fieldManager: AGENT_FIELD_MANAGER, force: true, subresource: 'status', signal: ctx.signal },
  );
  reported.current = condition;
  ctx.logger.info({ reason: full.reason, status: full.status }, `NodePrepared ${full.status} ${full.reason}`);
}

/** The VNF key of a pod (render-pod labels it with the VNF's name), for mapping pod events. */
export function vnfKeyOfPod(pod: V1Pod): string | undefined {
  const name = pod.metadata?.labels?.[VNF_NAME_LABEL];
  return name && pod.metadata?.namespace ? `${pod.metadata.namespace}/${name}` : undefined;
}
