import type { V1Node } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { NfvNode } from '../../api/nfv-node.js';
import { jsonEqual } from '../../runtime/json-equal.js';
import type { VirtualNetworkFunction } from '../../api/virtual-network-function.js';
import { Controller, type InformerEvent } from '../../runtime/controller.js';
import { objectKey } from '../../runtime/kube-object.js';
import { actOnVnf, type VnfActDeps } from './act.js';
import type { LedgerOverlay } from './ledger-overlay.js';
import { currentNfvNodes, observeVnf, type VnfCaches } from './observe.js';
import { planVnf, type VnfPlan } from './plan.js';
import { VNF_NAME_LABEL } from '../../api/group.js';
import type { Clock } from '../../runtime/clock.js';

/** Configuration of the VNF controller. */
export interface VnfControllerOptions {
  caches: VnfCaches;
  act: Omit<VnfActDeps, 'overlay'>;
  overlay: LedgerOverlay;
  logger: Logger;
  clock: Clock;
  /** Directory under which the node agents prepare host paths. */
  stateRoot: string;
  /** Image of the pods' init gate; default each VNF's own image. */
  gateImage?: string;
  /** Concurrent reconciles. Default 4. */
  workers?: number;
}

/**
 * Reconciles VirtualNetworkFunctions: observe (caches) -> plan (pure) -> act (API). Placements
 * run one at a time, as in kube-scheduler: each one plans from the ledger the previous one wrote,
 * so workers do not race each other into resourceVersion conflicts. The conflict is still the
 * guarantee against a second replica or a stale cache.
 */
export function vnfController(options: VnfControllerOptions): Controller {
  const { caches, overlay, clock, stateRoot } = options;
  const deps: VnfActDeps = { ...options.act, overlay };
  let placements: Promise<void> = Promise.resolve();
  const placementTurn = <T>(work: () => Promise<T>): Promise<T> => {
    const turn = placements.then(work);
    placements = turn.then(
      () => undefined,
      () => undefined,
    );
    return turn;
  };

  const observeAndPlan = (key: string) => {
    const obs = observeVnf(caches, overlay, key, stateRoot);
    if (!obs) return undefined;
    const plan = planVnf(obs, new Date(clock.now()), options.gateImage ? { gateImage: options.gateImage } : {});
    return { vnf: obs.vnf, plan };
  };
  const act = (vnf: VirtualNetworkFunction, plan: VnfPlan, logger: Logger, signal: AbortSignal) => {
    const nfvNodes = new Map(currentNfvNodes(caches, overlay).map((n) => [n.metadata.name!, n]));
    return actOnVnf(deps, vnf, (name) => nfvNodes.get(name), plan, logger, signal);
  };
  // Only planning and the ledger write are serial; the pod, status and Events of a placed VNF
  // are written outside the turn, so the next placement does not wait for them.
  const placeThenAct = async (key: string, logger: Logger, signal: AbortSignal) => {
    const work = await placementTurn(async () => {
      const planned = observeAndPlan(key);
      if (!planned) return undefined;
      const commits = planned.plan.actions.filter((a) => a.type === 'CommitAllocation');
      await act(planned.vnf, { actions: commits, status: undefined, events: [] }, logger, signal);
      return { ...planned, plan: { ...planned.plan, actions: planned.plan.actions.filter((a) => a.type !== 'CommitAllocation') } };
    });
    if (work) await act(work.vnf, work.plan, logger, signal);
  };

  const unplaced = () => caches.vnfs.list((v) => !v.status?.placement).map(objectKey);
  const linkedTo = (vnf: VirtualNetworkFunction) =>
    caches.vnfs.list((other) => other.metadata.namespace === vnf.metadata.namespace && other.spec.links.some((l) => l.peer === vnf.metadata.name)).map(objectKey);

  return new Controller({
    name: 'vnf',
    logger: options.logger,
    clock,
    workers: options.workers ?? 4,
    reconcile: async (key, ctx) => {
      if (!caches.vnfs.get(key)?.status?.placement) return placeThenAct(key, ctx.logger, ctx.signal);
      const work = observeAndPlan(key);
      if (work) await act(work.vnf, work.plan, ctx.logger, ctx.signal);
    },
  })
    .for(caches.vnfs)
    .watches(caches.vnfs, ({ object }) => linkedTo(object))
    .watches(caches.pods, ({ object }) => {
      const owner = object.metadata?.labels?.[VNF_NAME_LABEL];
      return owner ? `${object.metadata!.namespace}/${owner}` : undefined;
    })
    .watches(caches.nfvNodes, (event) => [...(capacityMayHaveGrown(event) ? unplaced() : []), ...vnfsOnNode(event)])
    .watches(caches.nodes, () => unplaced(), { filter: schedulingChanged })
    .watches(caches.pools, ({ object }) => caches.vnfs.list((v) => v.spec.hugepages.pool === object.metadata.name).map(objectKey));
}

// A ledger change on a node matters to the VNFs it lists: a deleted VNF waiting for its release.
function vnfsOnNode(event: InformerEvent<NfvNode>): string[] {
  return (event.object.status?.allocations ?? []).map((a) => a.vnf);
}

// Unplaced VNFs are planned again only when a node may fit more than before: new inventory or
// pool pages, or an allocation released. Every placement changes a ledger; re-planning every
// waiting VNF on each of those would be quadratic in a burst.
function capacityMayHaveGrown(event: InformerEvent<NfvNode>): boolean {
  if (event.type !== 'update') return event.type === 'add';
  const before = event.oldObject.status;
  const after = event.object.status;
  return (
    !jsonEqual(before?.inventory, after?.inventory) ||
    !jsonEqual(before?.hugepagePools, after?.hugepagePools) ||
    (after?.allocations?.length ?? 0) < (before?.allocations?.length ?? 0)
  );
}

// Node status heartbeats are frequent; only what placement reads matters.
function schedulingChanged(event: InformerEvent<V1Node>): boolean {
  if (event.type !== 'update') return true;
  const pick = (node: V1Node) => [
    node.metadata?.labels,
    node.spec?.taints,
    node.spec?.unschedulable,
    node.status?.conditions?.find((c) => c.type === 'Ready')?.status,
  ];
  return !jsonEqual(pick(event.oldObject), pick(event.object));
}
