import type { Inventory } from '../../src/api/nfv-node.js';
import type { HostUseProbe } from '../host/host-use.js';
import { discoverCpus, type DiscoveryRoots } from './cpu-topology.js';
import { discoverNumaNodes } from './numa-nodes.js';
import { discoverNics, type NicPoolRule } from './pci-nics.js';

export type { DiscoveryRoots } from './cpu-topology.js';
export type { NicPoolRule } from './pci-nics.js';

/** What discovery needs besides the roots. */
export interface DiscoveryOptions {
  hostUse: HostUseProbe;
  nicPools?: readonly NicPoolRule[];
}

/** The node's inventory as NfvNode.status.inventory publishes it. Read-only: never writes the host. */
export async function discoverInventory(roots: DiscoveryRoots, options: DiscoveryOptions): Promise<Inventory> {
  const { cpus, threadsPerCore } = await discoverCpus(roots);
  return {
    threadsPerCore,
    cpus,
    numaNodes: await discoverNumaNodes(roots, cpus),
    nics: await discoverNics(roots, options.hostUse, options.nicPools ?? []),
  };
}
