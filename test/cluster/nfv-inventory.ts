/**
 * Realistic NFV node inventories for tests and the demo, shaped exactly as the node agent
 * publishes them: sockets = NUMA nodes, hyperthread siblings numbered like Linux does (cpu N and
 * N + cores), the first core of each NUMA node left to the host, NICs with PCI addresses,
 * IOMMU groups and pools.
 */
import type { Inventory, InventoryNic } from '../../src/api/nfv-node.js';
import { formatCpuList } from '../../src/api/cpu-list.js';

/** Shape of a simulated NFV node. */
export interface InventoryShape {
  /** NUMA nodes (one socket each). Default 2. */
  numaNodes?: number;
  /** Physical cores per NUMA node. Default 8. */
  coresPerNuma?: number;
  /** Hyperthreads per core. Default 2. */
  threadsPerCore?: number;
  /** Cores per NUMA node left to the host (not isolated). Default 1. */
  housekeepingCores?: number;
  /** NICs per NUMA node. Default 2. */
  nicsPerNuma?: number;
  /** Pool name of the NICs. Default "fast". */
  nicPool?: string;
  /** 2Mi hugepages the kernel holds per NUMA node. Default 0. */
  hugepages2MiPerNuma?: number;
  /** 1Gi hugepages the kernel holds per NUMA node. Default 0. */
  hugepages1GiPerNuma?: number;
}

/** Builds the inventory of a simulated node. */
export function buildInventory(shape: InventoryShape = {}): Inventory {
  const numaCount = shape.numaNodes ?? 2;
  const cores = shape.coresPerNuma ?? 8;
  const threads = shape.threadsPerCore ?? 2;
  const housekeeping = shape.housekeepingCores ?? 1;
  const totalCores = numaCount * cores;
  const cpus: Inventory['cpus'] = [];
  for (let thread = 0; thread < threads; thread++) {
    for (let numa = 0; numa < numaCount; numa++) {
      for (let core = 0; core < cores; core++) {
        cpus.push({ id: thread * totalCores + numa * cores + core, numaNode: numa, socket: numa, core, isolated: core >= housekeeping });
      }
    }
  }
  cpus.sort((a, b) => a.id - b.id);
  const nics: InventoryNic[] = [];
  for (let numa = 0; numa < numaCount; numa++) {
    for (let i = 0; i < (shape.nicsPerNuma ?? 2); i++) {
      const bus = (0x18 + numa * 0x40 + i).toString(16).padStart(2, '0');
      nics.push({
        pciAddress: `0000:${bus}:00.0`,
        vendor: '8086',
        deviceId: '159b',
        numaNode: numa,
        iommuGroup: 20 + numa * 16 + i,
        driver: 'ice',
        interface: `ens${numa}f${i}`,
        pool: shape.nicPool ?? 'fast',
        sriovTotalVfs: 64,
      });
    }
  }
  return {
    threadsPerCore: threads,
    cpus,
    numaNodes: Array.from({ length: numaCount }, (_, numa) => ({
      id: numa,
      cpus: formatCpuList(cpus.filter((c) => c.numaNode === numa).map((c) => c.id)),
      hugepages: [
        { pageSize: '2Mi' as const, total: shape.hugepages2MiPerNuma ?? 0, free: shape.hugepages2MiPerNuma ?? 0 },
        { pageSize: '1Gi' as const, total: shape.hugepages1GiPerNuma ?? 0, free: shape.hugepages1GiPerNuma ?? 0 },
      ],
    })),
    nics,
  };
}
