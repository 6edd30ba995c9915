import { describe, expect, test } from '@jest/globals';
import type { NfvNode, NfvNodeStatus, PoolReservation } from '../../../src/api/nfv-node.js';
import { nodeUsage, type NodeUsage } from '../../../src/metrics/node-usage.js';
import { buildInventory } from '../../cluster/nfv-inventory.js';
import { allocation } from '../../fixtures/placement.js';

const GiB = 2 ** 30;
// One NUMA node, 4 cores × 2 threads, core 0 left to the host: CPUs 1-3 and 5-7 isolated.
// NICs 0000:18:00.0 (IOMMU group 20) and 0000:19:00.0 (group 21).
const inventory = buildInventory({ numaNodes: 1, coresPerNuma: 4, threadsPerCore: 2 });
const gold = (numaNode: number, allocated: number): PoolReservation => ({ pool: 'gold', pageSize: '1Gi', numaNode, requested: 4, allocated });
const node = (status: NfvNodeStatus | undefined): NfvNode => ({ apiVersion: 'nfv.dev/v1alpha1', kind: 'NfvNode', metadata: { name: 'n1' }, spec: undefined, status });
const vfio = (pciAddress: string, iommuGroup: number) => ({ pciAddress, iommuGroup, driver: 'vfio-pci' as const });

describe('nodeUsage', () => {
  test.each<{ name: string; status: NfvNodeStatus | undefined; usage: Omit<NodeUsage, 'node'> }>([
    {
      name: 'no status yet: nothing used, nothing free',
      status: undefined,
      usage: { cpusUsed: 0, cpusFree: 0, hugepages: [], devicesUsed: 0, devicesFree: 0 },
    },
    {
      name: 'empty ledger: every isolated CPU, reserved page and NIC is free',
      status: { inventory, hugepagePools: [gold(0, 4)] },
      usage: {
        cpusUsed: 0,
        cpusFree: 6,
        hugepages: [{ pool: 'gold', pageSize: '1Gi', numaNode: 0, usedBytes: 0, freeBytes: 4 * GiB }],
        devicesUsed: 0,
        devicesFree: 2,
      },
    },
    {
      name: 'two VNFs: their CPUs, pages and NIC are used',
      status: {
        inventory,
        hugepagePools: [gold(0, 4)],
        allocations: [allocation('a', 0, '1,5', 1, [vfio('0000:18:00.0', 20)]), allocation('b', 0, '2-3', 2)],
      },
      usage: {
        cpusUsed: 4,
        cpusFree: 2,
        hugepages: [{ pool: 'gold', pageSize: '1Gi', numaNode: 0, usedBytes: 3 * GiB, freeBytes: GiB }],
        devicesUsed: 1,
        devicesFree: 1,
      },
    },
    {
      name: 'a NIC the host uses is not free, nor is one whose IOMMU group another VNF holds',
      status: {
        inventory: {
          ...inventory,
          nics: [
            { ...inventory.nics[0]!, hostUse: 'interface ens0f0 has address 10.0.0.5/24' },
            { ...inventory.nics[1]!, iommuGroup: 7 },
            { ...inventory.nics[1]!, pciAddress: '0000:19:00.1', iommuGroup: 7 },
          ],
        },
        allocations: [allocation('a', 0, '1', 1, [vfio('0000:19:00.1', 7)])],
      },
      usage: { cpusUsed: 1, cpusFree: 5, hugepages: [{ pool: 'gold', pageSize: '1Gi', numaNode: 0, usedBytes: GiB, freeBytes: 0 }], devicesUsed: 1, devicesFree: 0 },
    },
    {
      name: 'a partial page counts as a whole page used; the kernel giving fewer pages shrinks free',
      status: {
        inventory,
        hugepagePools: [gold(0, 2), { pool: 'silver', pageSize: '2Mi', numaNode: 0, requested: 512, allocated: 512 }],
        allocations: [{ ...allocation('a', 0, '1'), hugepages: { pool: 'silver', pageSize: '2Mi', bytes: 3 * 2 ** 20 } }],
      },
      usage: {
        cpusUsed: 1,
        cpusFree: 5,
        hugepages: [
          { pool: 'gold', pageSize: '1Gi', numaNode: 0, usedBytes: 0, freeBytes: 2 * GiB },
          { pool: 'silver', pageSize: '2Mi', numaNode: 0, usedBytes: 2 * 2 * 2 ** 20, freeBytes: 510 * 2 * 2 ** 20 },
        ],
        devicesUsed: 0,
        devicesFree: 2,
      },
    },
    {
      name: 'a claim on a pool no longer reserved still shows as used, sorted by pool then NUMA node',
      status: {
        inventory,
        hugepagePools: [gold(1, 4), gold(0, 4)],
        allocations: [{ ...allocation('a', 0, '1'), hugepages: { pool: 'bronze', pageSize: '1Gi', bytes: GiB } }],
      },
      usage: {
        cpusUsed: 1,
        cpusFree: 5,
        hugepages: [
          { pool: 'bronze', pageSize: '1Gi', numaNode: 0, usedBytes: GiB, freeBytes: 0 },
          { pool: 'gold', pageSize: '1Gi', numaNode: 0, usedBytes: 0, freeBytes: 4 * GiB },
          { pool: 'gold', pageSize: '1Gi', numaNode: 1, usedBytes: 0, freeBytes: 4 * GiB },
        ],
        devicesUsed: 0,
        devicesFree: 2,
      },
    },
  ])('$name', ({ status, usage }) => {
    expect(nodeUsage(node(status))).toEqual({ node: 'n1', ...usage });
  });
});
