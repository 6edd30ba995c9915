import { PAGE_SIZE_BYTES, type PageSize } from '../../api/common.js';
import type { NfvNodeStatus } from '../../api/nfv-node.js';
import { parseByteQuantity } from '../../api/quantity.js';
import type { ConditionStatus } from '../../runtime/conditions.js';
import { summarizeList } from './summarize-list.js';

/** Condition type: kubelet advertises every page the kernel holds, so the scheduler can place VNFs on the pool's pages. */
export const KUBELET_ADVERTISED = 'KubeletAdvertised';

/** Pages of one size on one node: what kubelet advertises and what the kernel holds. */
export interface AdvertisedPages {
  node: string;
  /** From Node.status.allocatable; undefined while the Node has no status for this size. */
  advertised: number | undefined;
  kernel: number;
}

/** The KubeletAdvertised condition, without its type and bookkeeping. */
export interface KubeletVerdict {
  status: ConditionStatus;
  reason: 'PagesAdvertised' | 'KubeletRestartRequired' | 'WaitingForNodeStatus';
  message: string;
}

/**
 * Kubelet's pages of `pageSize` on a node next to the kernel's. The kernel figure is the sum of
 * nr_hugepages over the NUMA nodes of the agent's inventory, not the pool's reservations: the agent
 * discovers the inventory after reserving, so it already counts the pool pages on top of the
 * boot-time ones, and that sum is exactly what kubelet's capacity (cAdvisor's machine-wide
 * nr_hugepages) was at its start. Kubelet cannot hold hugepages back (kube/system-reserved accept
 * only cpu, memory, ephemeral-storage and pid), so allocatable equals that capacity. Comparing with
 * the pool pages alone would pass a kubelet that started with B boot-time pages before a pool of
 * P <= B pages was reserved, although only B of the B + P pages are then schedulable: the
 * scheduler does not know which page belongs to whom.
 */
export function advertisedPages(node: string, nfvNode: NfvNodeStatus | undefined, allocatable: Readonly<Record<string, string>> | undefined, pageSize: PageSize): AdvertisedPages {
  const kernel = (nfvNode?.inventory?.numaNodes ?? []).reduce((sum, numa) => sum + (numa.hugepages.find((h) => h.pageSize === pageSize)?.total ?? 0), 0);
  const bytes = hugepageBytes(allocatable?.[`hugepages-${pageSize}`]);
  return { node, advertised: bytes === undefined ? undefined : Math.floor(bytes / PAGE_SIZE_BYTES[pageSize]), kernel };
}

/**
 * KubeletAdvertised from the nodes that hold pages of the pool: False when a kubelet advertises
 * fewer pages than its kernel holds, because kubelet reads the hugepage capacity only when it
 * starts and pages reserved since then cannot be scheduled until it restarts; Unknown while a
 * Node has no allocatable figure for the size. More pages than the kernel holds is not flagged.
 */
export function kubeletVerdict(pageSize: PageSize, nodes: readonly AdvertisedPages[]): KubeletVerdict {
  const resource = `hugepages-${pageSize}`;
  const short = nodes.filter((n) => n.advertised !== undefined && n.advertised < n.kernel);
  if (short.length > 0) {
    const figures = short.map((n) => `kubelet on ${n.node} advertises ${n.advertised} of the ${n.kernel} ${pageSize} pages its kernel holds`);
    return {
      status: 'False',
      reason: 'KubeletRestartRequired',
      message:
        `${summarizeList(figures, '; ')}. Kubelet reads the hugepage capacity only when it starts, so the pages reserved since ` +
        `cannot be scheduled (pods stay Pending with Insufficient ${resource}): restart kubelet on ${summarizeList(short.map((n) => n.node))} ` +
        `(systemctl restart kubelet); running pods keep running`,
    };
  }
  const unknown = nodes.filter((n) => n.advertised === undefined);
  if (unknown.length > 0) {
    return { status: 'Unknown', reason: 'WaitingForNodeStatus', message: `no allocatable ${resource} in the Node status of ${summarizeList(unknown.map((n) => n.node))} yet` };
  }
  return { status: 'True', reason: 'PagesAdvertised', message: `kubelet advertises every ${pageSize} page the kernel holds on the ${nodes.length} nodes with pages of the pool` };
}

/** Bytes of a hugepage quantity as kubelet writes it (binary suffixes, or "0"); undefined when absent or unreadable. */
function hugepageBytes(quantity: string | undefined): number | undefined {
  if (quantity === undefined) return undefined;
  if (quantity === '0') return 0;
  try {
    return parseByteQuantity(quantity);
  } catch {
    return undefined;
  }
}
