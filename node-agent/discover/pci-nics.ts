import { posix } from 'node:path';
import { isPciAddress } from '../../src/api/pci-address.js';
import type { InventoryNic } from '../../src/api/nfv-node.js';
import { deviceNetInterfaces, type HostUseProbe } from '../host/host-use.js';
import { listDir, readKernelInt, readKernelText, readLinkName } from '../host/kernel-files.js';
import type { DiscoveryRoots } from './cpu-topology.js';

/** Puts NICs into named pools (first matching rule wins); configured per agent. */
export interface NicPoolRule {
  pool: string;
  /** These exact devices. */
  pciAddresses?: string[];
  /** Or every device of this vendor id (with deviceId). */
  vendor?: string;
  deviceId?: string;
}

/** The pool a NIC belongs to under `rules`, if any. */
export function nicPoolOf(nic: Pick<InventoryNic, 'pciAddress' | 'vendor' | 'deviceId'>, rules: readonly NicPoolRule[]): string | undefined {
  for (const rule of rules) {
    if (rule.pciAddresses?.includes(nic.pciAddress)) return rule.pool;
    if (rule.vendor && rule.vendor === nic.vendor && (!rule.deviceId || rule.deviceId === nic.deviceId)) return rule.pool;
  }
  return undefined;
}

const hexId = (text: string | undefined) => (text ?? '').replace(/^0x/, '').toLowerCase();

/** PCI network devices (class 0x02xxxx) with their NUMA node, IOMMU group, driver and SR-IOV totals. */
export async function discoverNics(roots: DiscoveryRoots, hostUse: HostUseProbe, pools: readonly NicPoolRule[]): Promise<InventoryNic[]> {
  const devicesDir = posix.join(roots.sysfs, 'bus/pci/devices');
  const nics: InventoryNic[] = [];
  for (const address of await listDir(devicesDir)) {
    if (!isPciAddress(address)) continue;
    const dir = posix.join(devicesDir, address);
    if (!hexId(await readKernelText(posix.join(dir, 'class'))).startsWith('02')) continue;
    const nic: InventoryNic = {
      pciAddress: address,
      vendor: hexId(await readKernelText(posix.join(dir, 'vendor'))),
      deviceId: hexId(await readKernelText(posix.join(dir, 'device'))),
      numaNode: Math.max(-1, (await readKernelInt(posix.join(dir, 'numa_node'))) ?? -1),
      iommuGroup: Number((await readLinkName(posix.join(dir, 'iommu_group'))) ?? -1),
      driver: (await readLinkName(posix.join(dir, 'driver'))) ?? '',
    };
    const [netInterface] = await deviceNetInterfaces(dir);
    if (netInterface) nic.interface = netInterface.name;
    const pool = nicPoolOf(nic, pools);
    if (pool) nic.pool = pool;
    const totalVfs = await readKernelInt(posix.join(dir, 'sriov_totalvfs'));
    if (totalVfs !== undefined) nic.sriovTotalVfs = totalVfs;
    const use = await hostUse.describe(address);
    if (use) nic.hostUse = use;
    nics.push(nic);
  }
  return nics;
}
