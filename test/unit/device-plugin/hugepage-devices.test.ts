import { describe, expect, test } from '@jest/globals';
import type { PageSize } from '../../../src/api/common.js';
import { hugepageDeviceCounts } from '../../../src/api/hugepage-devices.js';
import type { NfvNodeStatus, PoolReservation } from '../../../src/api/nfv-node.js';
import { hugepageAllocation, hugepageDevicesOf, hugepageIdsOn, listedHugepages, type HugepageDevices } from '../../../node-agent/device-plugin/hugepage-devices.js';
import { AllocationError, type DeviceNodeView } from '../../../node-agent/device-plugin/plugin-devices.js';
import { allocateContainer, listedDevices, nicDevices } from '../../../node-agent/device-plugin/plugin-resources.js';
import { allocation } from '../../fixtures/placement.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;
const reservation = (pool: string, pageSize: PageSize, numaNode: number, allocated: number, requested = allocated): PoolReservation => ({ pool, pageSize, numaNode, requested, allocated });
/** A ledger entry holding `bytes` of `pageSize` pages on `numaNode`. */
const holding = (uid: string, numaNode: number, pageSize: PageSize, bytes: number) => ({ ...allocation(uid, numaNode, '1'), hugepages: { pool: 'gold', pageSize, bytes } });
const pages = (numaNodes: HugepageDevices['numaNodes'], pageSize: PageSize = '1Gi', inUse: readonly string[] = []): HugepageDevices => ({
  kind: 'hugepages',
  resource: `nfv.dev/hugepages-${pageSize}`,
  pageSize,
  numaNodes,
  inUse: new Set(inUse),
});
const noNodes: DeviceNodeView = { vfioContainer: false, vfioGroups: new Set(), uioNodes: new Map() };
const empty = { envs: {}, mounts: [], devices: [], annotations: {}, cdi_devices: [] };

describe('hugepageDeviceCounts: what the agent offers and the controller expects, from one NfvNode status', () => {
  test.each<{ name: string; status: Pick<NfvNodeStatus, 'hugepagePools' | 'allocations'> | undefined; expected: ReturnType<typeof hugepageDeviceCounts> }>([
    { name: 'no status yet: nothing', status: undefined, expected: [] },
    {
      name: 'the pages the kernel gave each reservation, per NUMA node',
      status: { hugepagePools: [reservation('gold', '1Gi', 0, 4), reservation('gold', '1Gi', 1, 3, 4)] },
      expected: [
        { pageSize: '1Gi', numaNode: 0, pages: 4 },
        { pageSize: '1Gi', numaNode: 1, pages: 3 },
      ],
    },
    {
      name: 'pools of one size add up; sizes stay apart, sorted',
      status: { hugepagePools: [reservation('silver', '2Mi', 0, 512), reservation('gold', '1Gi', 0, 4), reservation('bronze', '1Gi', 0, 2)] },
      expected: [
        { pageSize: '1Gi', numaNode: 0, pages: 6 },
        { pageSize: '2Mi', numaNode: 0, pages: 512 },
      ],
    },
    {
      name: 'ledger entries within the reservation change nothing',
      status: { hugepagePools: [reservation('gold', '1Gi', 0, 4)], allocations: [holding('a', 0, '1Gi', 2 * GiB), holding('b', 0, '1Gi', GiB)] },
      expected: [{ pageSize: '1Gi', numaNode: 0, pages: 4 }],
    },
    {
      name: 'a pool shrunk below what VNFs hold: never fewer than the ledger',
      status: { hugepagePools: [reservation('gold', '1Gi', 0, 1), reservation('gold', '1Gi', 1, 1)], allocations: [holding('a', 0, '1Gi', 2 * GiB), holding('b', 0, '1Gi', GiB)] },
      expected: [
        { pageSize: '1Gi', numaNode: 0, pages: 3 },
        { pageSize: '1Gi', numaNode: 1, pages: 1 },
      ],
    },
    {
      name: 'a pool deleted while a VNF holds its pages: the held pages only',
      status: { hugepagePools: [], allocations: [holding('a', 1, '2Mi', 64 * MiB)] },
      expected: [{ pageSize: '2Mi', numaNode: 1, pages: 32 }],
    },
    {
      name: 'each VNF pod requests whole pages',
      status: { allocations: [holding('a', 0, '2Mi', 3 * MiB), holding('b', 0, '2Mi', 3 * MiB)] },
      expected: [{ pageSize: '2Mi', numaNode: 0, pages: 4 }],
    },
  ])('$name', ({ status, expected }) => {
    expect(hugepageDeviceCounts(status)).toEqual(expected);
  });
});

describe('hugepageDevicesOf', () => {
  test('one resource per page size, with its pages per NUMA node, sorted by resource', () => {
    const status = { hugepagePools: [reservation('silver', '2Mi', 1, 8), reservation('gold', '1Gi', 0, 4), reservation('gold', '1Gi', 1, 4), reservation('silver', '2Mi', 0, 8)] };
    expect(hugepageDevicesOf(status)).toEqual([
      pages([
        { numaNode: 0, pages: 4 },
        { numaNode: 1, pages: 4 },
      ]),
      pages(
        [
          { numaNode: 0, pages: 8 },
          { numaNode: 1, pages: 8 },
        ],
        '2Mi',
      ),
    ]);
  });

  test('a size whose pools got no page still has its plugin, with no device: kubelet advertises 0', () => {
    expect(hugepageDevicesOf({ hugepagePools: [reservation('gold', '1Gi', 0, 0, 4)] })).toEqual([pages([{ numaNode: 0, pages: 0 }])]);
    expect(listedHugepages(pages([{ numaNode: 0, pages: 0 }]))).toEqual([]);
  });
});

describe('listedHugepages', () => {
  test('one Healthy device per page, numbered per NUMA node, with the NUMA node for the topology manager', () => {
    expect(
      listedHugepages(
        pages([
          { numaNode: 0, pages: 2 },
          { numaNode: 1, pages: 1 },
        ]),
      ),
    ).toEqual([
      { ID: 'numa0-0', health: 'Healthy', topology: { nodes: [{ ID: 0 }] } },
      { ID: 'numa0-1', health: 'Healthy', topology: { nodes: [{ ID: 0 }] } },
      { ID: 'numa1-0', health: 'Healthy', topology: { nodes: [{ ID: 1 }] } },
    ]);
  });

  test('growing adds IDs and shrinking removes the last ones: the pages that stay keep their IDs', () => {
    const ids = (count: number) => listedHugepages(pages([{ numaNode: 0, pages: count }])).map((device) => device.ID);
    expect(ids(5)).toEqual(expect.arrayContaining(ids(3)));
    expect(ids(5).slice(0, 3)).toEqual(ids(3));
  });
});

describe('hugepageIdsOn: the IDs kubelet gave running pods stay listed', () => {
  test.each<{ name: string; pages: number; inUse: string[]; expected: string[] }>([
    { name: 'nothing in use: the lowest indices', pages: 3, inUse: [], expected: ['numa0-0', 'numa0-1', 'numa0-2'] },
    { name: 'a shrink keeps the held IDs, however high', pages: 2, inUse: ['numa0-5', 'numa0-7'], expected: ['numa0-5', 'numa0-7'] },
    { name: 'free pages fill from the lowest free index', pages: 4, inUse: ['numa0-1', 'numa0-6'], expected: ['numa0-0', 'numa0-1', 'numa0-2', 'numa0-6'] },
    { name: 'held IDs of other NUMA nodes and foreign IDs are not this node\'s', pages: 2, inUse: ['numa1-0', 'numa1-9', 'gpu-3', 'numa0-x'], expected: ['numa0-0', 'numa0-1'] },
    { name: 'more held than pages (a list kubelet has not caught up with): all held stay', pages: 1, inUse: ['numa0-2', 'numa0-3'], expected: ['numa0-2', 'numa0-3'] },
  ])('$name', ({ pages: count, inUse, expected }) => {
    expect(hugepageIdsOn(0, count, new Set(inUse))).toEqual(expected);
  });

  test('allocating listed IDs changes nothing: the list is stable while the count stays', () => {
    const before = listedHugepages(pages([{ numaNode: 0, pages: 4 }], '2Mi')).map((d) => d.ID);
    const after = listedHugepages(pages([{ numaNode: 0, pages: 4 }], '2Mi', ['numa0-2', 'numa0-3'])).map((d) => d.ID);
    expect(after).toEqual(before);
  });
});

describe('hugepageAllocation', () => {
  const listed = pages([
    { numaNode: 0, pages: 4 },
    { numaNode: 1, pages: 2 },
  ]);

  test.each([
    { name: 'pages on one NUMA node', ids: ['numa0-0', 'numa0-3'] },
    { name: 'pages on two NUMA nodes', ids: ['numa0-1', 'numa1-1'] },
    { name: 'nothing asked', ids: [] },
  ])('gives nothing to add to the container (the hugetlbfs mount is a pod volume): $name', ({ ids }) => {
    expect(hugepageAllocation(listed, ids)).toEqual(empty);
  });

  test.each([
    { name: 'an ID past the pages of its NUMA node (a shrink)', ids: ['numa1-2'], message: /nfv\.dev\/hugepages-1Gi lists 4 pages on NUMA node 0, 2 pages on NUMA node 1; kubelet asked for numa1-2, which it does not list/ },
    { name: 'a NUMA node without pages', ids: ['numa0-0', 'numa3-0'], message: /kubelet asked for numa3-0,/ },
    { name: 'a foreign ID', ids: ['40'], message: /kubelet asked for 40,/ },
  ])('refuses $name', ({ ids, message }) => {
    expect(() => hugepageAllocation(listed, ids)).toThrow(AllocationError);
    expect(() => hugepageAllocation(listed, ids)).toThrow(message);
  });

  test('refuses everything when no page is listed', () => {
    expect(() => hugepageAllocation(pages([{ numaNode: 0, pages: 0 }]), ['numa0-0'])).toThrow(/lists no pages; kubelet asked for numa0-0/);
  });
});

describe('plugin resources: NIC devices and pages behind one plugin server', () => {
  const group = { kind: 'vfio' as const, resource: 'nfv.dev/vfio-group-7', group: 7, numaNode: 1 };
  const twoPages = pages([{ numaNode: 0, pages: 2 }]);

  test('lists a NIC device alone and pages one by one', () => {
    expect(listedDevices(group, noNodes)).toEqual([{ ID: '7', health: 'Unhealthy', topology: { nodes: [{ ID: 1 }] } }]);
    expect(listedDevices(twoPages, noNodes).map((device) => device.ID)).toEqual(['numa0-0', 'numa0-1']);
  });

  test('allocates each by its own rules', () => {
    expect(allocateContainer(twoPages, ['numa0-1'], noNodes)).toEqual(empty);
    expect(() => allocateContainer(group, ['7'], noNodes)).toThrow(/\/dev\/vfio\/7 does not exist/);
  });

  test('reads device nodes for NIC devices only', () => {
    expect(nicDevices([twoPages, group])).toEqual([group]);
  });
});
