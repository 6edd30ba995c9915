import { formatCpuList } from '../../api/cpu-list.js';
import { vnfHostPaths } from '../../api/host-paths.js';
import type { NodeAllocation } from '../../api/nfv-node.js';
import { formatByteQuantity } from '../../api/quantity.js';
import type { Placement, VirtualNetworkFunction } from '../../api/virtual-network-function.js';
import type { PlacementDecision } from '../placement/plan-placement.js';

/** The ledger entry that records a decision on its node. */
export function allocationOf(vnf: VirtualNetworkFunction, decision: PlacementDecision): NodeAllocation {
  return {
    uid: vnf.metadata.uid!,
    vnf: `${vnf.metadata.namespace}/${vnf.metadata.name}`,
    numaNode: decision.numaNode,
    cpus: formatCpuList(decision.cpus),
    hugepages: decision.hugepages,
    devices: decision.devices.map(({ pciAddress, iommuGroup, driver }) => ({ pciAddress, iommuGroup, driver })),
  };
}

/**
 * The status placement of a VNF, derived from its ledger entry: the ledger is what the
 * resourceVersion precondition protects, so status always mirrors it, also after a crash between
 * the ledger write and the status write.
 */
export function placementOf(vnf: VirtualNetworkFunction, node: string, allocation: NodeAllocation, stateRoot: string): Placement {
  // The ledger keeps devices in interface order (see allocationOf).
  const devices = allocation.devices.map((device, index) => ({ interface: vnf.spec.interfaces[index]?.name ?? `nic${index}`, ...device }));
  return {
    node,
    numaNode: allocation.numaNode,
    cpus: allocation.cpus,
    hugepages: allocation.hugepages,
    devices,
    hostPaths: vnfHostPaths(stateRoot, allocation.uid),
  };
}

/** "node n1 NUMA 0: CPUs 1,17, 1Gi of 1Gi hugepages from pool gold, NICs 0000:18:00.0". */
export function describePlacement(placement: Placement): string {
  const { pool, pageSize, bytes } = placement.hugepages;
  const nics = placement.devices.length ? `, NICs ${placement.devices.map((d) => `${d.pciAddress} (${d.interface})`).join(', ')}` : '';
  return `node ${placement.node} NUMA ${placement.numaNode}: CPUs ${placement.cpus}, ${formatByteQuantity(bytes)} of ${pageSize} hugepages from pool ${pool}${nics}`;
}
