import { describe, expect, test } from '@jest/globals';
import { aggregatePool, type PoolNodeView } from '../../../src/controllers/hugepage-pool/aggregate.js';
import type { PageSize } from '../../../src/api/common.js';
import type { Inventory, NfvNodeStatus } from '../../../src/api/nfv-node.js';
import type { Condition } from '../../../src/runtime/conditions.js';
import { allocation } from '../../fixtures/placement.js';
import { goldPool } from '../../fixtures/vnf.js';

const now = new Date('2026-11-29T10:00:00Z');
const reservation = (numaNode: number, requested: number, allocated: number, reason?: string, pageSize: PageSize = '1Gi') => ({
  pool: 'gold',
  pageSize,
  numaNode,
  requested,
  allocated,
  ...(reason ? { reason, message: `only ${allocated} contiguous 1Gi blocks` } : {}),
});
const view = (name: string, status?: NfvNodeStatus, labels: Record<string, string> = {}, allocatable?: Record<string, string>): PoolNodeView => ({
  name,
  labels,
  nfvNode: status,
  allocatable,
});
/** An inventory whose NUMA nodes hold these pages (nr_hugepages) per size: boot-time plus pool pages, as the agent discovers them after reserving. */
const kernelPages = (perNuma: Partial<Record<PageSize, number>>, numaNodes = 2): Inventory => ({
  threadsPerCore: 2,
  cpus: [],
  numaNodes: Array.from({ length: numaNodes }, (_, id) => ({
    id,
    cpus: '',
    hugepages: Object.entries(perNuma).map(([pageSize, total]) => ({ pageSize: pageSize as PageSize, total, free: total })),
  })),
  nics: [],
});
const condition = (conditions: readonly Condition[] | undefined, type: string) => conditions?.find((c) => c.type === type);

describe('aggregatePool', () => {
  test('sums requested, allocated, claimed and free per NUMA node, node and pool', () => {
    const status = aggregatePool(
      goldPool(),
      [view('n1', { hugepagePools: [reservation(0, 4, 4), reservation(1, 4, 4)], allocations: [allocation('a', 0, '1', 3)] }), view('n2', { hugepagePools: [reservation(0, 4, 4)] })],
      now,
    );
    expect(status).toMatchObject({ requested: 12, allocated: 12, claimed: 3, free: 9 });
    expect(status.nodes![0]).toMatchObject({ node: 'n1', requested: 8, claimed: 3, free: 5, numaNodes: [{ numaNode: 0, claimed: 3, free: 1 }, { numaNode: 1, free: 4 }] });
    expect(status.conditions!.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True', reason: 'Reserved' });
    expect(status.conditions!.find((c) => c.type === 'Degraded')).toMatchObject({ status: 'False' });
  });

  test('Degraded with the agent reason when the kernel gave fewer pages', () => {
    const status = aggregatePool(goldPool(), [view('n1', { hugepagePools: [reservation(0, 4, 2, 'KernelFragmentation')] })], now);
    const degraded = status.conditions!.find((c) => c.type === 'Degraded')!;
    expect(degraded).toMatchObject({ status: 'True', reason: 'KernelFragmentation' });
    expect(degraded.message).toMatch(/n1: 2 of 4 1Gi pages \(only 2 contiguous 1Gi blocks\)/);
    expect(status.conditions!.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'Degraded' });
  });

  test('waits for agents that have not reported, and ignores nodes outside the selector', () => {
    const pool = { ...goldPool(), spec: { ...goldPool().spec, nodeSelector: { tier: 'edge' } } };
    const status = aggregatePool(pool, [view('a', undefined, { tier: 'edge' }), view('b', { hugepagePools: [reservation(0, 4, 4)] }, { tier: 'core' })], now);
    expect(status.nodes).toEqual([]);
    expect(status.conditions!.find((c) => c.type === 'Ready')).toMatchObject({ reason: 'WaitingForNodeAgents', message: 'no report yet from the node agent on a' });
    expect(aggregatePool(pool, [], now).conditions!.find((c) => c.type === 'Ready')).toMatchObject({ reason: 'NoMatchingNodes' });
  });

  describe('KubeletAdvertised: Node allocatable against the pages the kernel holds', () => {
    // Pool gold: 4 pages on each of 2 NUMA nodes of every node.
    const pooled = (bootPerNuma: number, allocatable: Record<string, string> | undefined, name = 'n1') =>
      view(name, { inventory: kernelPages({ '1Gi': bootPerNuma + 4 }), hugepagePools: [reservation(0, 4, 4), reservation(1, 4, 4)] }, {}, allocatable);
    it.each<{ name: string; pool?: PageSize; views: PoolNodeView[]; kubelet: Partial<Condition>; ready: string; message?: RegExp; notInMessage?: string }>([
      {
        name: 'advertised: kubelet restarted after the reservation',
        views: [pooled(0, { 'hugepages-1Gi': '8Gi', 'hugepages-2Mi': '0' })],
        kubelet: { status: 'True', reason: 'PagesAdvertised' },
        ready: 'Reserved',
      },
      {
        name: 'more advertised than the kernel holds is not this condition',
        views: [pooled(0, { 'hugepages-1Gi': '10Gi' })],
        kubelet: { status: 'True', reason: 'PagesAdvertised' },
        ready: 'Reserved',
      },
      {
        // 4 boot-time pages per NUMA node: kubelet saw 8, the kernel holds 16. The pool's own 8
        // pages alone would look advertised.
        name: 'short on one node: its kubelet started before the pool pages, with as many boot-time pages',
        views: [pooled(4, { 'hugepages-1Gi': '16Gi' }, 'n1'), pooled(4, { 'hugepages-1Gi': '8Gi' }, 'n2')],
        kubelet: { status: 'False', reason: 'KubeletRestartRequired' },
        ready: 'KubeletRestartRequired',
        message: /^kubelet on n2 advertises 8 of the 16 1Gi pages its kernel holds\. .*: restart kubelet on n2 \(systemctl restart kubelet\)/,
        notInMessage: 'n1',
      },
      {
        name: 'a kubelet that saw no pages at all ("0")',
        views: [pooled(0, { 'hugepages-1Gi': '0' })],
        kubelet: { status: 'False', reason: 'KubeletRestartRequired' },
        ready: 'KubeletRestartRequired',
        message: /n1 advertises 0 of the 8 1Gi pages/,
      },
      {
        name: 'no Node status yet: unknown, Ready is left to the other checks',
        views: [pooled(0, undefined), pooled(0, { 'hugepages-1Gi': '8Gi' }, 'n2')],
        kubelet: { status: 'Unknown', reason: 'WaitingForNodeStatus', message: 'no allocatable hugepages-1Gi in the Node status of n1 yet' },
        ready: 'Reserved',
      },
      {
        name: 'several sizes: a 1Gi pool is judged on hugepages-1Gi only',
        views: [view('n1', { inventory: kernelPages({ '2Mi': 512, '1Gi': 4 }), hugepagePools: [reservation(0, 4, 4), reservation(1, 4, 4)] }, {}, { 'hugepages-2Mi': '1Gi', 'hugepages-1Gi': '8Gi' })],
        kubelet: { status: 'True', reason: 'PagesAdvertised' },
        ready: 'Reserved',
      },
      {
        name: 'several sizes: a 2Mi pool on the same node is judged on hugepages-2Mi',
        pool: '2Mi',
        views: [
          view('n1', { inventory: kernelPages({ '2Mi': 516, '1Gi': 4 }), hugepagePools: [reservation(0, 4, 4, undefined, '2Mi'), reservation(1, 4, 4, undefined, '2Mi')] }, {}, { 'hugepages-2Mi': '2Gi', 'hugepages-1Gi': '8Gi' }),
        ],
        kubelet: { status: 'False', reason: 'KubeletRestartRequired' },
        ready: 'KubeletRestartRequired',
        message: /n1 advertises 1024 of the 1032 2Mi pages .*Insufficient hugepages-2Mi/,
      },
      {
        name: 'a node where the kernel gave the pool nothing holds none of its pages to advertise',
        views: [view('n1', { inventory: kernelPages({ '1Gi': 0 }), hugepagePools: [reservation(0, 4, 0, 'KernelFragmentation'), reservation(1, 4, 0, 'KernelFragmentation')] }, {}, { 'hugepages-1Gi': '0' })],
        kubelet: { status: 'True', reason: 'PagesAdvertised' },
        ready: 'Degraded',
      },
      {
        name: 'before Degraded in Ready: fewer pages than asked still serve, unadvertised ones do not',
        views: [view('n1', { inventory: kernelPages({ '1Gi': 3 }), hugepagePools: [reservation(0, 4, 3, 'KernelFragmentation'), reservation(1, 4, 3, 'KernelFragmentation')] }, {}, { 'hugepages-1Gi': '0' })],
        kubelet: { status: 'False', reason: 'KubeletRestartRequired' },
        ready: 'KubeletRestartRequired',
      },
    ])('$name', ({ pool = '1Gi', views, kubelet, ready, message, notInMessage }) => {
      const status = aggregatePool(goldPool(pool), views, now);
      const advertised = condition(status.conditions, 'KubeletAdvertised')!;
      expect(advertised).toMatchObject(kubelet);
      if (message) expect(advertised.message).toMatch(message);
      if (notInMessage) expect(advertised.message).not.toContain(notInMessage);
      expect(condition(status.conditions, 'Ready')).toMatchObject({ reason: ready, status: ready === 'Reserved' ? 'True' : 'False' });
      if (kubelet.status === 'False') expect(condition(status.conditions, 'Ready')!.message).toBe(advertised.message);
    });

    test('clears by itself once the restarted kubelet advertises the pages', () => {
      const stale = aggregatePool(goldPool(), [pooled(0, { 'hugepages-1Gi': '0' })], now);
      const later = new Date(now.getTime() + 60_000);
      const restarted = aggregatePool({ ...goldPool(), status: stale }, [pooled(0, { 'hugepages-1Gi': '8Gi' })], later);
      expect(condition(restarted.conditions, 'KubeletAdvertised')).toMatchObject({ status: 'True', reason: 'PagesAdvertised', lastTransitionTime: '2026-11-29T10:01:00Z' });
      expect(condition(restarted.conditions, 'Ready')).toMatchObject({ status: 'True', reason: 'Reserved', lastTransitionTime: '2026-11-29T10:01:00Z' });
    });

    test('names at most five nodes', () => {
      const views = ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((name) => pooled(0, { 'hugepages-1Gi': '0' }, name));
      const { message } = condition(aggregatePool(goldPool(), views, now).conditions, 'KubeletAdvertised')!;
      expect(message).toMatch(/restart kubelet on a, b, c, d, e and 2 more \(/);
    });
  });
});
