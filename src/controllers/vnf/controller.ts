import type { V1Node } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { NfvNode } from '../../api/nfv-node.js';
import { jsonEqual } from '../../runtime/json-equal.js';
import type { VirtualNetworkFunction } from '../../api/virtual-network-function.js';
import { Controller, type InformerEvent } from '../../runtime/controller.js';
import { objectKey } from '../../runtime/kube-object.js';
import { actOnVnf, writeLedger, type VnfActDeps } from './act.js';
import { chainOf } from './links.js';
import { PlacementBatcher } from './placement-batcher.js';
import type { LedgerOverlay } from './ledger-overlay.js';
import { currentNfvNodes, observeVnf, type VnfCaches } from './observe.js';
import { planVnf, type VnfPlan } from './plan.js';
import { VNF_NAME_LABEL } from '../../api/group.js';
import type { Clock } from '../../runtime/clock.js';

/** A VNF and what to do about it. */
interface PlannedWork {
  vnf: VirtualNetworkFunction;
  plan: VnfPlan;
}

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
 * are serialised in batches so workers do not race each other into resourceVersion conflicts;
 * the conflict is still the guarantee against a second replica or a stale cache.
 */
export function vnfController(options: VnfControllerOptions): Controller {
  const { caches, overlay, clock, stateRoot } = options;
  const deps: VnfActDeps = { ...options.act, overlay };
  const plan = (key: string, nfvNodes: readonly NfvNode[]) => {
    const obs = observeVnf(caches, nfvNodes, key, stateRoot);
    if (!obs) return undefined;
    return { vnf: obs.vnf, plan: planVnf(obs, new Date(clock.now()), options.gateImage ? { gateImage: options.gateImage } : {}) };
  };
  const act = (work: PlannedWork, logger: Logger, signal: AbortSignal) => {
    const nfvNodes = new Map(currentNfvNodes(caches, overlay).map((n) => [n.metadata.name!, n]));
    return actOnVnf(deps, work.vnf, (name) => nfvNodes.get(name), work.plan, logger, signal);
  };

  // Placements are planned in batches, one batch at a time, as kube-scheduler assumes pods: each
  // decision is added to the batch's view of its node before the next VNF is planned, then every
  // node touched gets one ledger write carrying the resourceVersion the batch started from. A
  // conflict fails that node's VNFs, which are retried from fresh data. The pod, status and
  // Events are written outside the batch, so the next batch does not wait for them.
  const batcher = new PlacementBatcher<PlannedWork | undefined>(async (keys, signal) => {
    const view = new Map(currentNfvNodes(caches, overlay).map((n) => [n.metadata.name!, n]));
    const committers = new Map<string, string[]>();
    const results = new Map<string, PlannedWork | undefined | Error>();
    for (const key of keys) {
      const work = plan(key, [...view.values()]);
      const commit = work?.plan.actions.find((a) => a.type === 'CommitAllocation');
      if (work && commit?.type === 'CommitAllocation') {
        const node = view.get(commit.node)!;
        const others = (node.status?.allocations ?? []).filter((a) => a.uid !== commit.allocation.uid);
        view.set(commit.node, { ...node, status: { ...node.status, allocations: [...others, commit.allocation] } });
        committers.set(commit.node, [...(committers.get(commit.node) ?? []), key]);
        work.plan = { ...work.plan, actions: work.plan.actions.filter((a) => a !== commit) };
      }
      results.set(key, work);
    }
    await Promise.all(
      [...committers].map(async ([name, batchKeys]) => {
        const node = view.get(name)!;
        try {
          await writeLedger(deps, node, node.status!.allocations!, signal);
        } catch (error) {
          for (const key of batchKeys) results.set(key, error instanceof Error ? error : new Error(String(error)));
        }
      }),
    );
    return results;
  });

  const unplaced = () => caches.vnfs.list((v) => !v.status?.placement).map(objectKey);
  // A VNF's placement changes what every member of its memif chain waits for.
  const chainKeys = (vnf: VirtualNetworkFunction) =>
    [...chainOf(vnf, (name) => caches.vnfs.getByName(name, vnf.metadata.namespace)).keys()].map((name) => `${vnf.metadata.namespace}/${name}`);

  return new Controller({
    name: 'vnf',
    logger: options.logger,
    clock,
    workers: options.workers ?? 4,
    reconcile: async (key, ctx) => {
      const work = caches.vnfs.get(key)?.status?.placement
        ? plan(key, currentNfvNodes(caches, overlay))
        : await batcher.submit(key, ctx.signal);
      if (work) await act(work, ctx.logger, ctx.signal);
    },
  })
    .for(caches.vnfs)
    .watches(caches.vnfs, ({ object }) => chainKeys(object))
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
