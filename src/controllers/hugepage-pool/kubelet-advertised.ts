import type { PageSize } from '../../api/common.js';
import { hugepageResource } from '../../api/device-resources.js';
import { hugepageDeviceCounts } from '../../api/hugepage-devices.js';
import type { NfvNodeStatus } from '../../api/nfv-node.js';
import type { ConditionStatus } from '../../runtime/conditions.js';
import { summarizeList } from './summarize-list.js';

/** Condition type: kubelet advertises every page the node agent offers, so the scheduler can place VNF pods on the pool's pages. */
export const KUBELET_ADVERTISED = 'KubeletAdvertised';

/** Pages of one size on one node: what kubelet advertises and what the node agent offers it. */
export interface AdvertisedPages {
  node: string;
  /** `nfv.dev/hugepages-<size>` of Node.status.allocatable; undefined while absent or unreadable. */
  advertised: number | undefined;
  /** The pages the agent's device plugin lists: every pool's reservations of the size, at least what the ledger holds. */
  offered: number;
}

/** The KubeletAdvertised condition, without its type and bookkeeping. */
export interface KubeletVerdict {
  status: ConditionStatus;
  reason: 'PagesAdvertised' | 'WaitingForNodeStatus';
  message: string;
}

/**
 * Kubelet's `nfv.dev/hugepages-<size>` on a node next to the pages the agent offers it. The offer
 * counts every pool of the size on the node, not this pool alone: VNF pods of all of them request
 * the same resource, so the scheduler can place this pool's pages only once kubelet advertises the
 * whole offer. It is computed from the NfvNode status with the agent's own function, so the two
 * agree exactly once kubelet has the agent's latest list.
 */
export function advertisedPages(node: string, nfvNode: NfvNodeStatus | undefined, allocatable: Readonly<Record<string, string>> | undefined, pageSize: PageSize): AdvertisedPages {
  const offered = hugepageDeviceCounts(nfvNode)
    .filter((count) => count.pageSize === pageSize)
    .reduce((sum, count) => sum + count.pages, 0);
  return { node, advertised: resourceCount(allocatable?.[hugepageResource(pageSize)]), offered };
}

/**
 * KubeletAdvertised from the nodes that hold pages of the pool: False (WaitingForNodeStatus) while
 * a Node's allocatable has fewer pages than its agent offers, which lasts from a pool change until
 * kubelet's next Node status update (seconds; no restart), or for as long as the agent's device
 * plugin is not registered with kubelet. More pages than offered (a shrink kubelet has not reported
 * yet) is not flagged: the controller never places beyond the reservations.
 */
export function kubeletVerdict(pageSize: PageSize, nodes: readonly AdvertisedPages[]): KubeletVerdict {
  const resource = hugepageResource(pageSize);
  const behind = nodes.filter((n) => (n.advertised ?? 0) < n.offered);
  if (behind.length > 0) {
    const figures = behind.map((n) =>
      n.advertised === undefined
        ? `${n.node} has no ${resource} in its Node allocatable yet (its agent offers ${n.offered})`
        : `${n.node} advertises ${n.advertised} of the ${n.offered} ${resource} its agent offers`,
    );
    return {
      status: 'False',
      reason: 'WaitingForNodeStatus',
      message:
        `${summarizeList(figures, '; ')}. kubelet reports the pages of the node agent's device plugin with its next Node status ` +
        `update, within seconds; VNF pods there stay Pending with Insufficient ${resource} meanwhile. If it lasts, the agent's ` +
        `device plugin is not registered with kubelet: see its log on ${summarizeList(behind.map((n) => n.node))}`,
    };
  }
  return { status: 'True', reason: 'PagesAdvertised', message: `kubelet advertises every ${pageSize} page the node agents offer on the ${nodes.length} nodes with pages of the pool` };
}

/**
 * A whole-number resource quantity as kubelet writes it for a device-plugin resource
 * (`resource.NewQuantity(n, DecimalSI)`: "16", "2k" for 2000); undefined when absent or unreadable.
 */
function resourceCount(quantity: string | undefined): number | undefined {
  const match = /^([0-9]+)(k|M|G)?$/.exec(quantity ?? '');
  if (!match) return undefined;
  return Number(match[1]) * { '': 1, k: 1e3, M: 1e6, G: 1e9 }[match[2] ?? '']!;
}
