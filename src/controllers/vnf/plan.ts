import type { V1ConfigMap, V1Pod } from '@kubernetes/client-node';
import { createHash } from 'node:crypto';
import { parseCpuList } from '../../api/cpu-list.js';
import { VNF_FINALIZER } from '../../api/group.js';
import type { NodeAllocation } from '../../api/nfv-node.js';
import type { Placement, VnfPhase, VnfStatus } from '../../api/virtual-network-function.js';
import { findCondition, setCondition, type Condition, type ConditionUpdate } from '../../runtime/conditions.js';
import { planPlacement } from '../placement/plan-placement.js';
import { linkVerdict } from './links.js';
import type { VnfObservation } from './observation.js';
import { allocationOf, describePlacement, placementOf } from './placement-status.js';
import { renderConfigMap, renderPod, vnfPodName } from './render-pod.js';

/** A change to the API that the act step makes, in order. */
export type VnfAction =
  | { type: 'AddFinalizer' }
  | { type: 'RemoveFinalizer' }
  | { type: 'CommitAllocation'; node: string; allocation: NodeAllocation }
  | { type: 'ReleaseAllocation'; node: string; uid: string }
  | { type: 'ApplyConfigMap'; configMap: V1ConfigMap }
  | { type: 'ApplyPod'; pod: V1Pod }
  | { type: 'DeletePod'; name: string; uid: string };

/** An Event to record on the VNF. */
export interface VnfEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

/** The outcome of planning one reconcile. */
export interface VnfPlan {
  actions: VnfAction[];
  /** The status fields the controller owns; undefined when the object is going away. */
  status: VnfStatus | undefined;
  events: VnfEvent[];
}

/** Conditions the controller owns; NodePrepared belongs to the node agent. */
export const CONTROLLER_CONDITIONS = ['Placed', 'Ready', 'Reconciling', 'Stalled'] as const;

/** Annotation on the pod with a hash of what it was rendered from, to notice spec changes. */
export const POD_HASH_ANNOTATION = 'nfv.dev/pod-hash';

// Reasons of waits that need a human or more capacity; the others are normal progress.
const WARNING_REASONS = new Set(['Unschedulable', 'PoolNotFound', 'PeerNotFound', 'LinkMismatch', 'NodePreparationFailed', 'PodFailed']);

/** Options of the planner that come from the controller's configuration. */
export interface PlanOptions {
  /** Image of the init gate; default the VNF image. */
  gateImage?: string;
}

/**
 * Decides one reconcile of a VNF from what is observed, Flux-style: the finalizer first, deletion
 * in its own path, then placement, children and status. Pure: the same observation gives the
 * same plan, so it is table-tested without an API server.
 */
export function planVnf(obs: VnfObservation, now: Date, options: PlanOptions = {}): VnfPlan {
  const { vnf } = obs;
  const finalizers = vnf.metadata.finalizers ?? [];
  if (vnf.metadata.deletionTimestamp) {
    return finalizers.includes(VNF_FINALIZER) ? planDeletion(obs, now) : { actions: [], status: undefined, events: [] };
  }
  if (!finalizers.includes(VNF_FINALIZER)) return { actions: [{ type: 'AddFinalizer' }], status: undefined, events: [] };

  const status = new StatusBuilder(obs, now);
  const actions: VnfAction[] = [];
  let placement: Placement | undefined;
  if (obs.ledger) {
    placement = placementOf(vnf, obs.ledger.node, obs.ledger.allocation, obs.stateRoot);
  } else {
    const decision = decidePlacement(obs, status);
    if (decision) {
      actions.push({ type: 'CommitAllocation', node: decision.node, allocation: decision.allocation });
      placement = placementOf(vnf, decision.node, decision.allocation, obs.stateRoot);
    }
  }
  if (!placement) return { actions, ...status.build(undefined, obs.pod) };
  status.placed(placement);

  const configMap = renderConfigMap(vnf);
  const node = obs.nodes.find((n) => n.name === placement.node);
  const pod = renderPod({
    vnf,
    placement,
    nodeCpus: node ? node.inventory.cpus.map((c) => c.id) : parseCpuList(placement.cpus),
    ...(options.gateImage ? { gateImage: options.gateImage } : {}),
  });
  const hash = createHash('sha256').update(JSON.stringify([pod.spec, configMap?.data])).digest('hex').slice(0, 16);
  pod.metadata!.annotations = { [POD_HASH_ANNOTATION]: hash };
  const current = obs.pod;
  if (!current) {
    if (configMap) actions.push({ type: 'ApplyConfigMap', configMap });
    actions.push({ type: 'ApplyPod', pod });
  } else if (!current.metadata?.deletionTimestamp) {
    const outdated = current.metadata?.annotations?.[POD_HASH_ANNOTATION] !== hash;
    const finished = current.status?.phase === 'Failed' || current.status?.phase === 'Succeeded';
    // Pods are mostly immutable: a changed spec or a finished pod is replaced, not patched.
    if (outdated || finished) actions.push({ type: 'DeletePod', name: current.metadata!.name!, uid: current.metadata!.uid! });
  }
  return { actions, ...status.build(placement, current) };
}

function decidePlacement(obs: VnfObservation, status: StatusBuilder): { node: string; allocation: NodeAllocation } | undefined {
  const { vnf, pool } = obs;
  if (!pool) {
    status.notPlaced('PoolNotFound', `spec.hugepages.pool: HugepagePool ${vnf.spec.hugepages.pool} does not exist; create it or name another pool`);
    return undefined;
  }
  if (pool.spec.pageSize !== vnf.spec.hugepages.pageSize) {
    status.stalled(
      'PageSizeMismatch',
      `spec.hugepages.pageSize is ${vnf.spec.hugepages.pageSize} but HugepagePool ${pool.metadata.name} has ${pool.spec.pageSize} pages; use a pool of ${vnf.spec.hugepages.pageSize} pages`,
    );
    return undefined;
  }
  const links = linkVerdict(vnf, obs.peers);
  if (links.kind === 'stalled') {
    status.stalled(links.reason, links.message);
    return undefined;
  }
  if (links.kind === 'wait') {
    status.notPlaced(links.reason, links.message);
    return undefined;
  }
  const plan = planPlacement(
    { spec: vnf.spec, poolSpec: pool.spec, ...(links.kind === 'colocate' ? { peer: { name: links.peer, node: links.node } } : {}) },
    obs.nodes,
  );
  if (!plan.placed) {
    status.notPlaced('Unschedulable', plan.message);
    return undefined;
  }
  return { node: plan.decision.node, allocation: allocationOf(vnf, plan.decision) };
}

function planDeletion(obs: VnfObservation, now: Date): VnfPlan {
  const status = new StatusBuilder(obs, now);
  const { pod, ledger } = obs;
  if (pod) {
    const actions: VnfAction[] = pod.metadata?.deletionTimestamp ? [] : [{ type: 'DeletePod', name: pod.metadata!.name!, uid: pod.metadata!.uid! }];
    status.terminating('WaitingForPodDeletion', `waiting for pod ${pod.metadata!.name} to stop`);
    return { actions, ...status.build(obs.vnf.status?.placement, pod) };
  }
  const tornDown = findCondition(obs.vnf.status?.conditions, 'NodePrepared')?.reason === 'TornDown';
  if (ledger && obs.ledgerNodeExists && !tornDown) {
    status.terminating('WaitingForNodeTeardown', `waiting for the node agent on ${ledger.node} to undo hugetlbfs, cgroup, sysfs and driver changes`);
    return { actions: [], ...status.build(obs.vnf.status?.placement, undefined) };
  }
  const actions: VnfAction[] = [];
  if (ledger) actions.push({ type: 'ReleaseAllocation', node: ledger.node, uid: ledger.allocation.uid });
  actions.push({ type: 'RemoveFinalizer' });
  const events: VnfEvent[] = ledger
    ? [{ type: 'Normal', reason: 'Released', message: `released CPUs ${ledger.allocation.cpus} and hugepages on node ${ledger.node}` }]
    : [];
  return { actions, status: undefined, events };
}

/** Accumulates the controller-owned conditions and derives phase, Ready and events from them. */
class StatusBuilder {
  private conditions: Condition[];
  private readonly before: readonly Condition[];
  private readonly generation: number | undefined;
  private terminal: ConditionUpdate | undefined;
  private waiting: ConditionUpdate | undefined;
  private deleting = false;

  constructor(
    private readonly obs: VnfObservation,
    private readonly now: Date,
  ) {
    this.generation = obs.vnf.metadata.generation;
    this.before = (obs.vnf.status?.conditions ?? []).filter((c) => (CONTROLLER_CONDITIONS as readonly string[]).includes(c.type));
    this.conditions = [...this.before];
  }

  notPlaced(reason: string, message: string): void {
    this.set('Placed', 'False', reason, message);
    this.waiting = this.update('Ready', 'False', reason, message);
  }

  stalled(reason: string, message: string): void {
    this.set('Placed', 'False', reason, message);
    this.terminal = this.update('Stalled', 'True', reason, message);
  }

  placed(placement: Placement): void {
    this.set('Placed', 'True', 'Allocated', describePlacement(placement));
  }

  terminating(reason: string, message: string): void {
    this.deleting = true;
    this.waiting = this.update('Ready', 'False', reason, message);
  }

  build(placement: Placement | undefined, pod: V1Pod | undefined): Pick<VnfPlan, 'status' | 'events'> {
    const ready = this.terminal ? this.update('Ready', 'False', this.terminal.reason, this.terminal.message) : (this.waiting ?? this.readiness(placement!, pod));
    this.set(ready.type, ready.status, ready.reason, ready.message);
    if (this.terminal) this.set('Stalled', 'True', this.terminal.reason, this.terminal.message);
    else this.conditions = this.conditions.filter((c) => c.type !== 'Stalled');
    if (ready.status === 'True' || this.terminal) this.conditions = this.conditions.filter((c) => c.type !== 'Reconciling');
    else this.set('Reconciling', 'True', ready.reason, ready.message);

    const status: VnfStatus = {
      phase: this.phase(placement, pod, ready.status === 'True'),
      observedGeneration: this.generation,
      conditions: this.conditions,
      ...(placement ? { placement } : {}),
      ...(placement ? { podName: vnfPodName(this.obs.vnf.metadata.name!) } : {}),
    };
    return { status, events: transitionEvents(this.before, this.conditions) };
  }

  private readiness(placement: Placement, pod: V1Pod | undefined): ConditionUpdate {
    const prepared = findCondition(this.obs.vnf.status?.conditions, 'NodePrepared');
    if (!pod) return this.update('Ready', 'False', 'PodCreating', `creating pod on ${placement.node}`);
    const podName = pod.metadata!.name;
    if (pod.status?.phase === 'Failed') return this.update('Ready', 'False', 'PodFailed', `pod ${podName} failed: ${pod.status.message ?? pod.status.reason ?? 'no reason given'}; replacing it`);
    if (prepared?.status === 'False' && prepared.reason !== 'Preparing') {
      return this.update('Ready', 'False', 'NodePreparationFailed', `node agent on ${placement.node}: ${prepared.message}`);
    }
    if (prepared?.status !== 'True') return this.update('Ready', 'False', 'WaitingForNodeAgent', `waiting for the node agent on ${placement.node} to prepare the VNF`);
    const podReady = pod.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
    if (!podReady) return this.update('Ready', 'False', 'PodNotReady', `pod ${podName} is ${pod.status?.phase ?? 'Pending'}, not ready yet`);
    return this.update('Ready', 'True', 'Running', `running on ${describePlacement(placement)}`);
  }

  private phase(placement: Placement | undefined, pod: V1Pod | undefined, ready: boolean): VnfPhase {
    if (this.deleting) return 'Terminating';
    if (this.terminal) return 'Failed';
    if (!placement) return 'Pending';
    if (ready) return 'Running';
    return pod ? 'Starting' : 'Placed';
  }

  private update(type: string, status: Condition['status'], reason: string, message: string): ConditionUpdate {
    return { type, status, reason, message, ...(this.generation !== undefined ? { observedGeneration: this.generation } : {}) };
  }

  private set(type: string, status: Condition['status'], reason: string, message: string): void {
    this.conditions = setCondition(this.conditions, this.update(type, status, reason, message), this.now);
  }
}

// One Event per change of a condition's status or reason: Normal for progress (placed, running,
// released), Warning for what needs a human or more capacity.
function transitionEvents(before: readonly Condition[], after: readonly Condition[]): VnfEvent[] {
  const events: VnfEvent[] = [];
  for (const condition of after) {
    if (condition.type === 'Reconciling') continue;
    const old = before.find((c) => c.type === condition.type);
    if (old && old.status === condition.status && old.reason === condition.reason) continue;
    const warning = WARNING_REASONS.has(condition.reason) || (condition.type === 'Stalled' && condition.status === 'True');
    // Ready's intermediate reasons (PodCreating, WaitingForNodeAgent, PodNotReady) are in the
    // status; an Event each would triple the writes per VNF for no new information.
    if (condition.type === 'Ready' && condition.status !== 'True' && !warning) continue;
    // Ready repeats the reason of the condition that holds it back: one Event is enough.
    if (events.some((e) => e.reason === condition.reason)) continue;
    events.push({ type: warning ? 'Warning' : 'Normal', reason: condition.reason, message: condition.message });
  }
  return events;
}
