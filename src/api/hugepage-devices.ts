import { PAGE_SIZE_BYTES, type PageSize } from './common.js';
import type { NfvNodeStatus } from './nfv-node.js';

/** How many devices (pages) of `nfv.dev/hugepages-<size>` a node offers kubelet on one NUMA node. */
export interface HugepageDeviceCount {
  pageSize: PageSize;
  numaNode: number;
  pages: number;
}

/**
 * The hugepage devices of a node, per page size and NUMA node, from its NfvNode status, so that
 * the node agent (which lists them to kubelet) and the controller (which checks Node allocatable
 * against them) read one figure from one object:
 * - the pages the pools' reservations got from the kernel (`hugepagePools[].allocated`), which is
 *   what the placement hands out, so the scheduler admits exactly what the controller placed;
 * - but never fewer than the ledger holds on that NUMA node: when a pool shrinks or goes while
 *   VNFs keep their pages, the agent keeps those pages in the kernel and kubelet has handed them to
 *   running pods, so the list must not drop below them.
 * Sizes in neither are left out (no plugin for them). Sorted by page size, then NUMA node.
 */
export function hugepageDeviceCounts(status: Pick<NfvNodeStatus, 'hugepagePools' | 'allocations'> | undefined): HugepageDeviceCount[] {
  const counts = new Map<string, { pageSize: PageSize; numaNode: number; reserved: number; held: number }>();
  const at = (pageSize: PageSize, numaNode: number) => {
    const key = `${pageSize}/${numaNode}`;
    if (!counts.has(key)) counts.set(key, { pageSize, numaNode, reserved: 0, held: 0 });
    return counts.get(key)!;
  };
  for (const reservation of status?.hugepagePools ?? []) at(reservation.pageSize, reservation.numaNode).reserved += reservation.allocated;
  for (const { numaNode, hugepages } of status?.allocations ?? []) {
    // Per allocation: each VNF pod requests its own whole number of pages.
    at(hugepages.pageSize, numaNode).held += Math.ceil(hugepages.bytes / PAGE_SIZE_BYTES[hugepages.pageSize]);
  }
  return [...counts.values()]
    .map(({ pageSize, numaNode, reserved, held }) => ({ pageSize, numaNode, pages: Math.max(reserved, held) }))
    .sort((a, b) => a.pageSize.localeCompare(b.pageSize) || a.numaNode - b.numaNode);
}
