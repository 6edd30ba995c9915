import type { V1Pod } from '@kubernetes/client-node';
import type { HugepagePool } from '../../api/hugepage-pool.js';
import type { NodeAllocation } from '../../api/nfv-node.js';
import type { VirtualNetworkFunction } from '../../api/virtual-network-function.js';
import type { CandidateNode } from '../placement/candidate-node.js';

/** Where the ledger says a VNF's allocation lives. */
export interface LedgerEntry {
  node: string;
  allocation: NodeAllocation;
}

/** Everything one VNF reconcile decides from, read from the informer caches. */
export interface VnfObservation {
  vnf: VirtualNetworkFunction;
  /** The VNF's pod, if it exists. */
  pod: V1Pod | undefined;
  /** The HugepagePool named by spec.hugepages.pool, if it exists. */
  pool: HugepagePool | undefined;
  /** The other VNFs of this VNF's memif chain (see chainOf); undefined for those that do not exist. */
  peers: Map<string, VirtualNetworkFunction | undefined>;
  /** This VNF's entry in some node's ledger, if it holds resources. */
  ledger: LedgerEntry | undefined;
  /** Every NFV node the VNF could go to, with its ledger. */
  nodes: CandidateNode[];
  /** Whether the node of the ledger entry still exists (a deleted node frees its VNFs). */
  ledgerNodeExists: boolean;
  /** The directory under which the agent prepares host paths. */
  stateRoot: string;
}
