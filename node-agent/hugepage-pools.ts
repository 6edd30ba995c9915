import { PAGE_SIZE_BYTES, type PageSize } from '../src/api/common.js';
import { poolPagesPerNumaNode, type HugepagePool } from '../src/api/hugepage-pool.js';
import type { PoolReservation } from '../src/api/nfv-node.js';

/** Pages of one size on one NUMA node: the unit nr_hugepages is written in. */
export interface HugepageTarget {
  pageSize: PageSize;
  numaNode: number;
  /** Sum of what the pools ask for here. */
  requested: number;
  /** Pages held by VNFs prepared here: nr_hugepages never goes below. */
  floor: number;
}

/** What the kernel holds after a reservation attempt, per target. */
export interface HugepageOutcome extends HugepageTarget {
  allocated: number;
}

/** Whether a pool's nodeSelector selects a node with these labels (empty selects every NFV node). */
export function poolSelectsNode(pool: HugepagePool, labels: Readonly<Record<string, string>>): boolean {
  return Object.entries(pool.spec.nodeSelector ?? {}).every(([key, value]) => labels[key] === value);
}

const key = (pageSize: string, numaNode: number) => `${pageSize}/${numaNode}`;

/**
 * The pages the pools ask for per size and NUMA node, on top of what the kernel held before the
 * agent managed it (the caller adds that baseline): the sum of the pools selecting this node,
 * never below what prepared VNFs hold. Sizes in `previouslyManaged` with no pool left get a
 * target of 0, so pages of a deleted pool are given back.
 */
export function planHugepageTargets(
  pools: readonly HugepagePool[],
  labels: Readonly<Record<string, string>>,
  numaNodes: readonly number[],
  heldBytes: ReadonlyMap<string, number>,
  previouslyManaged: readonly PageSize[] = [],
): HugepageTarget[] {
  const targets = new Map<string, HugepageTarget>();
  const ensure = (pageSize: PageSize, numaNode: number) => {
    const k = key(pageSize, numaNode);
    let target = targets.get(k);
    if (!target) {
      const floor = Math.ceil((heldBytes.get(k) ?? 0) / PAGE_SIZE_BYTES[pageSize]);
      target = { pageSize, numaNode, requested: 0, floor };
      targets.set(k, target);
    }
    return target;
  };
  for (const pageSize of previouslyManaged) for (const numaNode of numaNodes) ensure(pageSize, numaNode);
  for (const pool of pools) {
    if (!poolSelectsNode(pool, labels)) continue;
    for (const [numaNode, pages] of poolPagesPerNumaNode(pool.spec, numaNodes)) ensure(pool.spec.pageSize, numaNode).requested += pages;
  }
  return [...targets.values()].sort((a, b) => a.pageSize.localeCompare(b.pageSize) || a.numaNode - b.numaNode);
}

/** The key of {@link planHugepageTargets}' heldBytes map. */
export function heldBytesKey(pageSize: PageSize, numaNode: number): string {
  return key(pageSize, numaNode);
}

/**
 * Splits what the kernel gave among the pools, in name order, and says why a pool got fewer
 * pages than it asked for. The result is NfvNode.status.hugepagePools.
 */
export function poolReservations(
  pools: readonly HugepagePool[],
  labels: Readonly<Record<string, string>>,
  numaNodes: readonly number[],
  outcomes: readonly HugepageOutcome[],
): PoolReservation[] {
  const remaining = new Map(outcomes.map((o) => [key(o.pageSize, o.numaNode), o.allocated]));
  const reservations: PoolReservation[] = [];
  const selected = pools.filter((pool) => poolSelectsNode(pool, labels)).sort((a, b) => a.metadata.name!.localeCompare(b.metadata.name!));
  for (const pool of selected) {
    for (const [numaNode, requested] of poolPagesPerNumaNode(pool.spec, numaNodes)) {
      const k = key(pool.spec.pageSize, numaNode);
      const available = remaining.get(k) ?? 0;
      const allocated = Math.min(requested, available);
      remaining.set(k, available - allocated);
      const reservation: PoolReservation = { pool: pool.metadata.name!, pageSize: pool.spec.pageSize, numaNode, requested, allocated };
      if (allocated < requested) {
        const outcome = outcomes.find((o) => o.pageSize === pool.spec.pageSize && o.numaNode === numaNode);
        reservation.reason = 'KernelFragmentation';
        reservation.message =
          `the kernel gave ${outcome?.allocated ?? 0} of ${outcome?.requested ?? requested} ${pool.spec.pageSize} pages on NUMA node ${numaNode} ` +
          `after repeated attempts with memory compaction; free memory there is too fragmented. Lower the pool, reserve at boot ` +
          `(hugepagesz=${pool.spec.pageSize === '1Gi' ? '1G' : '2M'} hugepages=N on the kernel command line), or drain the node and retry`;
      }
      reservations.push(reservation);
    }
  }
  return reservations;
}
