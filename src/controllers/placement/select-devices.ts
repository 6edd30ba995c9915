import type { InventoryNic, NodeAllocation } from '../../api/nfv-node.js';
import type { VnfInterface } from '../../api/virtual-network-function.js';

/** A NIC chosen for one interface. */
export interface ChosenDevice {
  interface: string;
  pciAddress: string;
  iommuGroup: number;
  driver: VnfInterface['driver'];
}

function matches(nic: InventoryNic, iface: VnfInterface): boolean {
  const { pciAddress, vendor, deviceId, pool } = iface.device;
  if (pciAddress !== undefined) return nic.pciAddress === pciAddress;
  if (vendor !== undefined) return nic.vendor === vendor && nic.deviceId === deviceId;
  return pool !== undefined && nic.pool === pool;
}

// Exact addresses first, then vendor/device, then pools: a broad selector must not take the one
// device a narrow selector needs.
const specificity = (iface: VnfInterface) => (iface.device.pciAddress ? 0 : iface.device.vendor ? 1 : 2);

/**
 * Chooses a NIC on NUMA node `numaNode` for every interface, or reports the interfaces left
 * without one. A NIC is free when no allocation holds it, the host does not use it, and no other
 * VNF holds a device of its IOMMU group: VFIO hands out whole groups, so a group cannot be split
 * between VNFs. A NIC whose NUMA node is unknown (-1) fits only a single-NUMA node.
 */
export function selectDevices(
  nics: readonly InventoryNic[],
  allocations: readonly NodeAllocation[],
  interfaces: readonly VnfInterface[],
  numaNode: number,
  singleNuma: boolean,
): { devices: ChosenDevice[]; missing: string[] } {
  const heldAddresses = new Set(allocations.flatMap((a) => a.devices.map((d) => d.pciAddress)));
  const heldGroups = new Set(allocations.flatMap((a) => a.devices.map((d) => d.iommuGroup)).filter((g) => g >= 0));
  const chosen = new Set<string>();
  const devices: ChosenDevice[] = [];
  const missing: string[] = [];
  for (const iface of [...interfaces].sort((a, b) => specificity(a) - specificity(b))) {
    const nic = [...nics]
      .sort((a, b) => a.pciAddress.localeCompare(b.pciAddress))
      .find(
        (n) =>
          (n.numaNode === numaNode || (n.numaNode === -1 && singleNuma)) &&
          !n.hostUse &&
          !heldAddresses.has(n.pciAddress) &&
          !(n.iommuGroup >= 0 && heldGroups.has(n.iommuGroup)) &&
          !chosen.has(n.pciAddress) &&
          matches(n, iface),
      );
    if (!nic) {
      missing.push(iface.name);
      continue;
    }
    chosen.add(nic.pciAddress);
    devices.push({ interface: iface.name, pciAddress: nic.pciAddress, iommuGroup: nic.iommuGroup, driver: iface.driver });
  }
  const order = new Map(interfaces.map((iface, index) => [iface.name, index]));
  devices.sort((a, b) => order.get(a.interface)! - order.get(b.interface)!);
  return { devices, missing };
}
