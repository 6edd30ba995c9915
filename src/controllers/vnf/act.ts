import type { Logger } from 'pino';
import { VNF_FINALIZER } from '../../api/group.js';
import type { NfvNode, NodeAllocation } from '../../api/nfv-node.js';
import type { VirtualNetworkFunction, VnfStatus } from '../../api/virtual-network-function.js';
import type { ChildApplier } from '../../runtime/apply.js';
import type { EventRecorder } from '../../runtime/event-recorder.js';
import { jsonEqual } from '../../runtime/json-equal.js';
import type { KubeClient } from '../../runtime/kube-client.js';
import type { StatusWriter } from '../../runtime/status-writer.js';
import { resources } from '../resources.js';
import type { LedgerOverlay } from './ledger-overlay.js';
import { CONTROLLER_CONDITIONS, type VnfAction, type VnfPlan } from './plan.js';

/** What the act step writes with. */
export interface VnfActDeps {
  client: Pick<KubeClient, 'apply' | 'mergePatch' | 'delete'>;
  children: ChildApplier;
  statusWriter: StatusWriter;
  events: EventRecorder;
  overlay: LedgerOverlay;
  fieldManager: string;
}

/**
 * Carries out a plan: the actions in order, then the status (only if the controller-owned part
 * changed), then the Events, without waiting for them. The only place that writes to the API
 * server for a VNF.
 */
export async function actOnVnf(
  deps: VnfActDeps,
  vnf: VirtualNetworkFunction,
  nfvNodes: (name: string) => NfvNode | undefined,
  plan: VnfPlan,
  logger: Logger,
  signal: AbortSignal,
): Promise<void> {
  for (const action of plan.actions) {
    logger.debug({ action: action.type }, 'act');
    await perform(deps, vnf, nfvNodes, action, signal);
  }
  if (plan.status && !jsonEqual(controllerView(vnf.status), plan.status)) {
    await deps.statusWriter.write(resources.vnfs, vnf, plan.status, { signal, compare: 'desiredKeys' });
  }
  // Events are best effort and never hold up a reconcile (client-go's broadcaster is
  // asynchronous too); the recorder logs what it cannot write.
  for (const event of plan.events) void deps.events.record(vnf, event);
}

/** The part of a VNF status this controller owns (the agent owns the NodePrepared condition). */
export function controllerView(status: VnfStatus | undefined): VnfStatus | undefined {
  if (!status) return undefined;
  return { ...status, conditions: (status.conditions ?? []).filter((c) => (CONTROLLER_CONDITIONS as readonly string[]).includes(c.type)) };
}

async function perform(
  deps: VnfActDeps,
  vnf: VirtualNetworkFunction,
  nfvNodes: (name: string) => NfvNode | undefined,
  action: VnfAction,
  signal: AbortSignal,
): Promise<void> {
  const { name, namespace, resourceVersion } = vnf.metadata;
  const finalizers = vnf.metadata.finalizers ?? [];
  switch (action.type) {
    case 'AddFinalizer':
    case 'RemoveFinalizer': {
      const next = action.type === 'AddFinalizer' ? [...finalizers, VNF_FINALIZER] : finalizers.filter((f) => f !== VNF_FINALIZER);
      // resourceVersion makes the list replacement conditional: another writer's finalizer is never lost.
      await deps.client.mergePatch(resources.vnfs, name!, { metadata: { finalizers: next, resourceVersion } }, { namespace, signal });
      return;
    }
    case 'CommitAllocation':
    case 'ReleaseAllocation': {
      const node = nfvNodes(action.node);
      if (!node) throw new Error(`NfvNode ${action.node} is not in the cache`);
      const others = (node.status?.allocations ?? []).filter((a) => a.uid !== (action.type === 'CommitAllocation' ? action.allocation.uid : action.uid));
      const allocations: NodeAllocation[] = action.type === 'CommitAllocation' ? [...others, action.allocation] : others;
      await writeLedger(deps, node, allocations, signal);
      return;
    }
    case 'ApplyConfigMap':
      await deps.children.apply(resources.configMaps, action.configMap, { owner: vnf, signal });
      return;
    case 'ApplyPod':
      await deps.children.apply(resources.pods, action.pod, { owner: vnf, signal });
      return;
    case 'DeletePod':
      await deps.client.delete(resources.pods, action.name, { namespace, preconditions: { uid: action.uid }, signal });
      return;
  }
}

/**
 * Writes a node's whole ledger with server-side apply and the resourceVersion the plan was made
 * from: if anyone changed the NfvNode since, the API server answers 409 Conflict and the VNF is
 * planned again from fresh data. This is what makes double allocation impossible, across workers
 * and across controller replicas alike.
 */
export async function writeLedger(deps: VnfActDeps, node: NfvNode, allocations: NodeAllocation[], signal: AbortSignal): Promise<void> {
  const written = await deps.client.apply<NfvNode>(
    resources.nfvNodes,
    {
      apiVersion: node.apiVersion,
      kind: node.kind,
      metadata: { name: node.metadata.name, resourceVersion: node.metadata.resourceVersion },
      status: { allocations },
    } as NfvNode,
    { fieldManager: deps.fieldManager, force: true, subresource: 'status', signal },
  );
  deps.overlay.remember(written);
}
