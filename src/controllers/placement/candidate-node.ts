import type { Inventory, NodeAllocation, PoolReservation } from '../../api/nfv-node.js';

/** A taint as on a Node. */
export interface Taint {
  key: string;
  value?: string;
  effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
}

/** Everything the planner knows of one node: the Node, its NfvNode inventory and ledger. */
export interface CandidateNode {
  name: string;
  labels: Record<string, string>;
  taints: Taint[];
  /** Cordoned (spec.unschedulable). */
  unschedulable: boolean;
  /** The Node's Ready condition is True. */
  ready: boolean;
  inventory: Inventory;
  /** Hugepage pool reservations the agent made. */
  pools: PoolReservation[];
  /** What placed VNFs hold (the ledger). */
  allocations: NodeAllocation[];
}
