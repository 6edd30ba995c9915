import { posix } from 'node:path';
import { formatCpuList } from '../../src/api/cpu-list.js';
import type { PageSize } from '../../src/api/common.js';
import type { Inventory, InventoryCpu } from '../../src/api/nfv-node.js';
import { listDir, readKernelInt } from '../host/kernel-files.js';
import type { DiscoveryRoots } from './cpu-topology.js';

const PAGE_SIZE_BY_KB: Record<string, PageSize> = { '2048': '2Mi', '1048576': '1Gi' };

/** Hugepage counts of every known size in a `hugepages` directory. */
async function hugepageCounts(dir: string): Promise<Inventory['numaNodes'][number]['hugepages']> {
  const counts: Inventory['numaNodes'][number]['hugepages'] = [];
  for (const entry of await listDir(dir)) {
    const pageSize = PAGE_SIZE_BY_KB[/^hugepages-(\d+)kB$/.exec(entry)?.[1] ?? ''];
    if (!pageSize) continue;
    counts.push({
      pageSize,
      total: (await readKernelInt(posix.join(dir, entry, 'nr_hugepages'))) ?? 0,
      free: (await readKernelInt(posix.join(dir, entry, 'free_hugepages'))) ?? 0,
    });
  }
  return counts.sort((a, b) => a.pageSize.localeCompare(b.pageSize));
}

/**
 * NUMA nodes with their CPUs and hugepages. A kernel without NUMA shows one node 0 whose
 * hugepages are the global ones in /sys/kernel/mm/hugepages.
 */
export async function discoverNumaNodes(roots: DiscoveryRoots, cpus: readonly InventoryCpu[]): Promise<Inventory['numaNodes']> {
  const nodeDir = posix.join(roots.sysfs, 'devices/system/node');
  const ids = (await listDir(nodeDir))
    .map((entry) => /^node(\d+)$/.exec(entry)?.[1])
    .filter((id): id is string => id !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
  const cpusOf = (node: number) => formatCpuList(cpus.filter((cpu) => cpu.numaNode === node).map((cpu) => cpu.id));
  if (ids.length === 0) {
    return [{ id: 0, cpus: cpusOf(0), hugepages: await hugepageCounts(posix.join(roots.sysfs, 'kernel/mm/hugepages')) }];
  }
  const nodes: Inventory['numaNodes'] = [];
  for (const id of ids) nodes.push({ id, cpus: cpusOf(id), hugepages: await hugepageCounts(posix.join(nodeDir, `node${id}`, 'hugepages')) });
  return nodes;
}
