import { readFileSync, writeFileSync } from 'node:fs';
import { posix } from 'node:path';
import type { HugepagePool } from '../../src/api/hugepage-pool.js';
import { HugepageReservation } from '../../node-agent/host/hugepage-reservation.js';
import { heldBytesKey, planHugepageTargets, poolReservations } from '../../node-agent/hugepage-pools.js';
import { buildFakeMachine } from './helpers/fake-sysfs.js';
import { ExtraHugepages, lockHugepages, requireRoot, TempTree } from './helpers/host-fixtures.js';

function pool(name: string, spec: Partial<HugepagePool['spec']>): HugepagePool {
  return { apiVersion: 'nfv.dev/v1alpha1', kind: 'HugepagePool', metadata: { name }, spec: { pageSize: '2Mi', ...spec } };
}

describe('HugepageReservation on the real kernel', () => {
  const node0 = '/sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages';
  let before: number;
  let unlock: () => void = () => undefined;

  beforeAll(async () => {
    requireRoot();
    unlock = await lockHugepages();
    before = Number(readFileSync(node0, 'utf8'));
  });

  afterAll(() => {
    try {
      // Back to the value found; the lock keeps the other host test files from changing it meanwhile.
      const now = Number(readFileSync(node0, 'utf8'));
      if (now !== before) writeFileSync(node0, `${before}\n`);
      expect(Number(readFileSync(node0, 'utf8'))).toBe(before);
    } finally {
      unlock();
    }
  });

  it('grows and shrinks nr_hugepages of NUMA node 0 and reports what the kernel holds', async () => {
    const reservation = new HugepageReservation('/sys');
    const grown = await reservation.reserve(0, '2Mi', before + 4);
    expect(grown).toEqual({ requested: before + 4, allocated: before + 4, attempts: 1 });
    expect((await reservation.read(0, '2Mi')).total).toBe(before + 4);
    expect(ExtraHugepages.read().total).toBeGreaterThanOrEqual(before + 4);
    const shrunk = await reservation.reserve(0, '2Mi', before);
    expect(shrunk.allocated).toBe(before);
  });

  it('never goes below the floor of pages that VNFs hold', async () => {
    const reservation = new HugepageReservation('/sys');
    const result = await reservation.reserve(0, '2Mi', 0, before + 2);
    expect(result).toMatchObject({ requested: before + 2, allocated: before + 2 });
    await reservation.reserve(0, '2Mi', before);
  });
});

describe('HugepageReservation when the kernel gives fewer pages (built tree)', () => {
  let tree: TempTree;
  beforeAll(() => {
    tree = new TempTree('nfv-reserve');
    buildFakeMachine(tree.path('sys'), tree.path('proc'), { numaNodes: 2, coresPerNode: 2, threadsPerCore: 1 });
  });
  afterAll(() => tree.cleanup());

  it('retries a bounded number of times, compacting in between, then reports the shortfall', async () => {
    const writes: string[] = [];
    // A fragmented "kernel": every attempt yields only one more 1Gi page, at most 3.
    const reservation = new HugepageReservation(tree.path('sys'), {
      procRoot: tree.path('proc'),
      attempts: 3,
      retryDelayMs: 1,
      writeAttribute: async (path, value) => {
        writes.push(`${posix.basename(path)}=${value.trim()}`);
        if (!path.endsWith('nr_hugepages')) return;
        const current = Number(readFileSync(path, 'utf8'));
        writeFileSync(path, `${Math.min(Number(value), current + 1, 3)}\n`);
      },
    });
    const result = await reservation.reserve(1, '1Gi', 8);
    expect(result).toEqual({ requested: 8, allocated: 3, attempts: 3 });
    expect(writes).toEqual(['nr_hugepages=8', 'compact_memory=1', 'nr_hugepages=8', 'compact_memory=1', 'nr_hugepages=8']);
  });
});

describe('pool planning', () => {
  const pools = [
    pool('a', { pagesPerNumaNode: 100 }),
    pool('b', { totalPages: 3 }),
    pool('c', { pageSize: '1Gi', pagesPerNumaNode: 2, nodeSelector: { tier: 'edge' } }),
    pool('d', { pagesPerNumaNode: 7, nodeSelector: { tier: 'core' } }),
  ];

  it('sums the pools that select the node per size and NUMA node, with the floor of held pages', () => {
    const held = new Map([[heldBytesKey('2Mi', 1), 300 * (2 << 20)]]);
    expect(planHugepageTargets(pools, { tier: 'edge' }, [0, 1], held, ['2Mi'])).toEqual([
      { pageSize: '1Gi', numaNode: 0, requested: 2, floor: 0 },
      { pageSize: '1Gi', numaNode: 1, requested: 2, floor: 0 },
      { pageSize: '2Mi', numaNode: 0, requested: 102, floor: 0 },
      { pageSize: '2Mi', numaNode: 1, requested: 101, floor: 300 },
    ]);
  });

  it('gives a deleted pool its pages back: a managed size with no pool targets 0', () => {
    expect(planHugepageTargets([], {}, [0], new Map(), ['1Gi'])).toEqual([{ pageSize: '1Gi', numaNode: 0, requested: 0, floor: 0 }]);
  });

  it('splits the kernel pages among pools in name order and explains a shortfall', () => {
    const reservations = poolReservations(pools.slice(0, 2), {}, [0], [{ pageSize: '2Mi', numaNode: 0, requested: 103, floor: 0, allocated: 101 }]);
    expect(reservations).toEqual([
      { pool: 'a', pageSize: '2Mi', numaNode: 0, requested: 100, allocated: 100 },
      { pool: 'b', pageSize: '2Mi', numaNode: 0, requested: 3, allocated: 1, reason: 'KernelFragmentation', message: expect.stringContaining('gave 101 of 103 2Mi pages on NUMA node 0') },
    ]);
  });
});
