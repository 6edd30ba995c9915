import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type { HugepagePool } from '../../api/hugepage-pool.js';
import type { NfvNode } from '../../api/nfv-node.js';
import type { VirtualNetworkFunction } from '../../api/virtual-network-function.js';
import type { Informer } from '../../runtime/informer.js';
import type { CandidateNode, Taint } from '../placement/candidate-node.js';
import type { LedgerOverlay } from './ledger-overlay.js';
import { chainOf } from './links.js';
import type { VnfObservation } from './observation.js';
import { vnfPodName } from './render-pod.js';

/** The informer caches the VNF controller reads. */
export interface VnfCaches {
  vnfs: Informer<VirtualNetworkFunction>;
  pods: Informer<V1Pod>;
  pools: Informer<HugepagePool>;
  nodes: Informer<V1Node>;
  nfvNodes: Informer<NfvNode>;
}

/** The NfvNodes as this process last saw or wrote them. */
export function currentNfvNodes(caches: VnfCaches, overlay: LedgerOverlay): NfvNode[] {
  return caches.nfvNodes.list().map((node) => overlay.latest(node.metadata.name!, node)!);
}

/**
 * Gathers what one reconcile of `key` decides from; undefined when the VNF is gone. `nfvNodes`
 * is the ledger view to plan against: the caches with this process's own writes, or a placement
 * batch's view with its earlier decisions.
 */
export function observeVnf(caches: VnfCaches, nfvNodes: readonly NfvNode[], key: string, stateRoot: string): VnfObservation | undefined {
  const vnf = caches.vnfs.get(key);
  if (!vnf) return undefined;
  const namespace = vnf.metadata.namespace!;
  const uid = vnf.metadata.uid!;
  let ledger: VnfObservation['ledger'];
  for (const node of nfvNodes) {
    const allocation = node.status?.allocations?.find((a) => a.uid === uid);
    if (allocation) ledger = { node: node.metadata.name!, allocation };
  }
  const peers = chainOf(vnf, (name) => caches.vnfs.getByName(name, namespace));
  return {
    vnf,
    pod: caches.pods.getByName(vnfPodName(vnf.metadata.name!), namespace),
    pool: caches.pools.getByName(vnf.spec.hugepages.pool),
    peers,
    ledger,
    nodes: candidateNodes(caches.nodes, nfvNodes),
    ledgerNodeExists: ledger !== undefined && nfvNodes.some((n) => n.metadata.name === ledger.node),
    stateRoot,
  };
}

function candidateNodes(nodes: Informer<V1Node>, nfvNodes: readonly NfvNode[]): CandidateNode[] {
  const candidates: CandidateNode[] = [];
  for (const nfvNode of nfvNodes) {
    const inventory = nfvNode.status?.inventory;
    const node = nodes.getByName(nfvNode.metadata.name!);
    if (!inventory || !node) continue;
    candidates.push({
      name: nfvNode.metadata.name!,
      labels: node.metadata?.labels ?? {},
      taints: (node.spec?.taints ?? []) as Taint[],
      unschedulable: node.spec?.unschedulable === true,
      ready: node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
      inventory,
      pools: nfvNode.status?.hugepagePools ?? [],
      allocations: nfvNode.status?.allocations ?? [],
    });
  }
  return candidates;
}
