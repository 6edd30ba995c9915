import { PAGE_SIZE_BYTES, type PageSize } from '../api/common.js';
import { parseCpuList } from '../api/cpu-list.js';
import type { NfvNode } from '../api/nfv-node.js';

/** Hugepages of one pool on one NUMA node of a node. */
export interface HugepageUsage {
  pool: string;
  pageSize: PageSize;
  numaNode: number;
  /** Whole pages held by ledger entries, in bytes (a VNF holds whole pages, even for a partial amount). */
  usedBytes: number;
  /** Pages the kernel gave the pool here that no ledger entry holds, in bytes. */
  freeBytes: number;
}

/** What the ledger of one NfvNode holds and what is left for new VNFs. */
export interface NodeUsage {
  node: string;
  /** Distinct CPUs held by ledger entries. */
  cpusUsed: number;
  /** Isolated CPUs that no ledger entry holds. */
  cpusFree: number;
  /** Per pool and NUMA node, sorted by pool then NUMA node. */
  hugepages: HugepageUsage[];
  /** Distinct NICs held by ledger entries. */
  devicesUsed: number;
  /**
   * NICs a new VNF could take: not held, not needed by the host, and not in an IOMMU group another
   * VNF holds (VFIO hands out whole groups).
   */
  devicesFree: number;
}

/**
 * Usage of one node from its NfvNode status: the agent's inventory and pool reservations minus the
 * controller's ledger (`status.allocations`). Counts the same way placement does, so "free" here
 * is what the planner could still hand out. A node without an inventory yet has nothing free.
 */
export function nodeUsage(nfvNode: NfvNode): NodeUsage {
  const status = nfvNode.status ?? {};
  const inventory = status.inventory;
  const allocations = status.allocations ?? [];

  const heldCpus = new Set(allocations.flatMap((a) => parseCpuList(a.cpus)));
  const cpusFree = (inventory?.cpus ?? []).filter((cpu) => cpu.isolated && !heldCpus.has(cpu.id)).length;

  const heldDevices = new Set(allocations.flatMap((a) => a.devices.map((d) => d.pciAddress)));
  const heldGroups = new Set(allocations.flatMap((a) => a.devices.map((d) => d.iommuGroup)).filter((group) => group >= 0));
  const devicesFree = (inventory?.nics ?? []).filter(
    (nic) => !nic.hostUse && !heldDevices.has(nic.pciAddress) && !(nic.iommuGroup >= 0 && heldGroups.has(nic.iommuGroup)),
  ).length;

  return {
    node: nfvNode.metadata?.name ?? '',
    cpusUsed: heldCpus.size,
    cpusFree,
    hugepages: hugepageUsage(status),
    devicesUsed: heldDevices.size,
    devicesFree,
  };
}

function hugepageUsage(status: NonNullable<NfvNode['status']>): HugepageUsage[] {
  // A claim on a pool the agent no longer reserves (pool deleted, node relabelled) still shows as
  // used, so the metrics never hide memory a VNF holds.
  const byKey = new Map<string, { pool: string; pageSize: PageSize; numaNode: number; allocatedPages: number; claimedBytes: number }>();
  const entry = (pool: string, pageSize: PageSize, numaNode: number) => {
    const key = `${pool}\u0000${numaNode}`;
    let found = byKey.get(key);
    if (!found) {
      found = { pool, pageSize, numaNode, allocatedPages: 0, claimedBytes: 0 };
      byKey.set(key, found);
    }
    return found;
  };
  for (const reservation of status.hugepagePools ?? []) {
    entry(reservation.pool, reservation.pageSize, reservation.numaNode).allocatedPages += reservation.allocated;
  }
  for (const allocation of status.allocations ?? []) {
    const { pool, pageSize, bytes } = allocation.hugepages;
    entry(pool, pageSize, allocation.numaNode).claimedBytes += bytes;
  }
  return [...byKey.values()]
    .map(({ pool, pageSize, numaNode, allocatedPages, claimedBytes }) => {
      const pageBytes = PAGE_SIZE_BYTES[pageSize];
      const usedPages = Math.ceil(claimedBytes / pageBytes);
      return {
        pool,
        pageSize,
        numaNode,
        usedBytes: usedPages * pageBytes,
        freeBytes: Math.max(0, allocatedPages - usedPages) * pageBytes,
      };
    })
    .sort((a, b) => a.pool.localeCompare(b.pool) || a.numaNode - b.numaNode);
}
