import { PAGE_SIZE_BYTES } from '../../api/common.js';
import type { HugepagePool, HugepagePoolStatus } from '../../api/hugepage-pool.js';
import type { NfvNodeStatus } from '../../api/nfv-node.js';
import { setCondition, type Condition } from '../../runtime/conditions.js';
import { matchesSelector } from '../placement/node-eligibility.js';
import { advertisedPages, KUBELET_ADVERTISED, kubeletVerdict, type AdvertisedPages } from './kubelet-advertised.js';
import { summarizeList } from './summarize-list.js';

/** A node as the pool controller sees it: its labels, its NfvNode status and its Node's allocatable, if known. */
export interface PoolNodeView {
  name: string;
  labels: Record<string, string>;
  nfvNode: NfvNodeStatus | undefined;
  /** Node.status.allocatable; undefined while the Node or its status is not known. */
  allocatable: Record<string, string> | undefined;
}

type NodeCounts = NonNullable<HugepagePoolStatus['nodes']>[number];

/**
 * The pool status from the agents' reports (requested and allocated pages per NUMA node) and the
 * controller's ledgers (claimed pages). Degraded when a kernel gave fewer pages than asked, with
 * the agent's reason (1Gi pages on a fragmented node are the usual cause); KubeletAdvertised False
 * while a Node's allocatable lags behind the pages its agent's device plugin offers; Ready when
 * every selected node has reported and got all its pages.
 */
export function aggregatePool(pool: HugepagePool, nodes: readonly PoolNodeView[], now: Date): HugepagePoolStatus {
  const name = pool.metadata.name!;
  const pageBytes = PAGE_SIZE_BYTES[pool.spec.pageSize];
  const selected = nodes.filter((n) => matchesSelector(n.labels, pool.spec.nodeSelector)).sort((a, b) => a.name.localeCompare(b.name));
  const silent: string[] = [];
  const nodeCounts: NodeCounts[] = [];
  const advertised: AdvertisedPages[] = [];
  for (const node of selected) {
    const reservations = (node.nfvNode?.hugepagePools ?? []).filter((r) => r.pool === name);
    if (reservations.length === 0) {
      silent.push(node.name);
      continue;
    }
    const numaNodes = reservations
      .map((r) => {
        const claimedBytes = (node.nfvNode?.allocations ?? [])
          .filter((a) => a.hugepages.pool === name && a.numaNode === r.numaNode)
          .reduce((sum, a) => sum + a.hugepages.bytes, 0);
        const claimed = Math.ceil(claimedBytes / pageBytes);
        return { numaNode: r.numaNode, requested: r.requested, allocated: r.allocated, claimed, free: Math.max(0, r.allocated - claimed) };
      })
      .sort((a, b) => a.numaNode - b.numaNode);
    const short = reservations.find((r) => r.allocated < r.requested);
    if (reservations.some((r) => r.allocated > 0)) advertised.push(advertisedPages(node.name, node.nfvNode, node.allocatable, pool.spec.pageSize));
    nodeCounts.push({
      node: node.name,
      ...sumCounts(numaNodes),
      numaNodes,
      ...(short?.reason ? { reason: short.reason } : {}),
      ...(short ? { message: short.message ?? `NUMA ${short.numaNode}: ${short.allocated} of ${short.requested} pages` } : {}),
    });
  }
  const generation = pool.metadata.generation;
  const update = (type: string, status: Condition['status'], reason: string, message: string) =>
    (conditions = setCondition(conditions, { type, status, reason, message, ...(generation !== undefined ? { observedGeneration: generation } : {}) }, now));
  let conditions: Condition[] = [...(pool.status?.conditions ?? [])];

  const shortNodes = nodeCounts.filter((n) => n.allocated < n.requested);
  if (shortNodes.length > 0) {
    const first = shortNodes[0]!;
    update(
      'Degraded',
      'True',
      first.reason ?? 'InsufficientHugepages',
      shortNodes.map((n) => `${n.node}: ${n.allocated} of ${n.requested} ${pool.spec.pageSize} pages (${n.message})`).join('; '),
    );
  } else {
    update('Degraded', 'False', 'AllPagesReserved', 'every node got the pages it was asked for');
  }
  const kubelet = kubeletVerdict(pool.spec.pageSize, advertised);
  update(KUBELET_ADVERTISED, kubelet.status, kubelet.reason, kubelet.message);
  // Ready does not wait for KubeletAdvertised: kubelet takes the agent's new page list without a
  // restart, at its next Node status update, so every pool change would flap Ready (and kstatus
  // waits such as `kubectl wait` or Flux) for a few seconds, while the pages are reserved and
  // placed from all along. A plugin that never registers shows in KubeletAdvertised itself.
  if (selected.length === 0) {
    update('Ready', 'False', 'NoMatchingNodes', 'no NFV node matches spec.nodeSelector');
  } else if (silent.length > 0) {
    update('Ready', 'False', 'WaitingForNodeAgents', `no report yet from the node agent on ${summarizeList(silent)}`);
  } else if (shortNodes.length > 0) {
    update('Ready', 'False', 'Degraded', `${shortNodes.length} of ${nodeCounts.length} nodes have fewer pages than requested`);
  } else {
    update('Ready', 'True', 'Reserved', `${sumCounts(nodeCounts).allocated} pages reserved on ${nodeCounts.length} nodes`);
  }
  return { observedGeneration: generation, ...sumCounts(nodeCounts), nodes: nodeCounts, conditions };
}

function sumCounts(items: readonly { requested: number; allocated: number; claimed: number; free: number }[]) {
  return items.reduce(
    (sum, c) => ({ requested: sum.requested + c.requested, allocated: sum.allocated + c.allocated, claimed: sum.claimed + c.claimed, free: sum.free + c.free }),
    { requested: 0, allocated: 0, claimed: 0, free: 0 },
  );
}
