import { describe, expect, test } from '@jest/globals';
import { aggregatePool, type PoolNodeView } from '../../../src/controllers/hugepage-pool/aggregate.js';
import type { PageSize } from '../../../src/api/common.js';
import type { NfvNodeStatus } from '../../../src/api/nfv-node.js';
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

  describe('KubeletAdvertised: Node allocatable nfv.dev/hugepages-<size> against the pages the agent offers', () => {
    // Pool gold: 4 pages on each of 2 NUMA nodes of every node, all of them given by the kernel.
    const pooled = (allocatable: Record<string, string> | undefined, name = 'n1') => view(name, { hugepagePools: [reservation(0, 4, 4), reservation(1, 4, 4)] }, {}, allocatable);
    it.each<{ name: string; pool?: PageSize; views: PoolNodeView[]; kubelet: Partial<Condition>; ready?: string; message?: RegExp; notInMessage?: string }>([
      {
        name: 'advertised: the Node allocatable has every page the agent offers',
        views: [pooled({ cpu: '32', 'nfv.dev/hugepages-1Gi': '8', 'nfv.dev/hugepages-2Mi': '0' })],
        kubelet: { status: 'True', reason: 'PagesAdvertised' },
      },
      {
        name: 'more advertised than offered (a shrink kubelet has not reported yet) is not this condition',
        views: [pooled({ 'nfv.dev/hugepages-1Gi': '10' })],
        kubelet: { status: 'True', reason: 'PagesAdvertised' },
      },
      {
        name: 'lagging on one node: its kubelet has not reported the new pages yet; Ready does not wait for it',
        views: [pooled({ 'nfv.dev/hugepages-1Gi': '8' }, 'n1'), pooled({ 'nfv.dev/hugepages-1Gi': '4' }, 'n2')],
        kubelet: { status: 'False', reason: 'WaitingForNodeStatus' },
        message: /^n2 advertises 4 of the 8 nfv\.dev\/hugepages-1Gi its agent offers\. .*Insufficient nfv\.dev\/hugepages-1Gi .*see its log on n2$/,
        notInMessage: 'n1',
      },
      {
        name: 'no plugin registered yet: the resource is not in the allocatable',
        views: [pooled({ cpu: '32' })],
        kubelet: { status: 'False', reason: 'WaitingForNodeStatus' },
        message: /^n1 has no nfv\.dev\/hugepages-1Gi in its Node allocatable yet \(its agent offers 8\)\. /,
      },
      {
        name: 'no Node status at all',
        views: [pooled(undefined)],
        kubelet: { status: 'False', reason: 'WaitingForNodeStatus' },
        message: /^n1 has no nfv\.dev\/hugepages-1Gi in its Node allocatable yet/,
      },
      {
        name: "kubelet's native hugepages-<size> do not count: VNF pods do not request them",
        views: [pooled({ 'hugepages-1Gi': '8Gi' })],
        kubelet: { status: 'False', reason: 'WaitingForNodeStatus' },
      },
      {
        name: 'every pool of the size on the node counts: their VNF pods request the same resource',
        views: [view('n1', { hugepagePools: [reservation(0, 4, 4), reservation(1, 4, 4), { ...reservation(0, 2, 2), pool: 'silver' }] }, {}, { 'nfv.dev/hugepages-1Gi': '8' })],
        kubelet: { status: 'False', reason: 'WaitingForNodeStatus' },
        message: /^n1 advertises 8 of the 10 nfv\.dev\/hugepages-1Gi/,
      },
      {
        name: 'pages VNFs still hold above a shrunk reservation stay offered',
        views: [view('n1', { hugepagePools: [reservation(0, 1, 1), reservation(1, 1, 1)], allocations: [allocation('a', 0, '1', 3)] }, {}, { 'nfv.dev/hugepages-1Gi': '2' })],
        kubelet: { status: 'False', reason: 'WaitingForNodeStatus' },
        message: /^n1 advertises 2 of the 4 nfv\.dev\/hugepages-1Gi/,
        ready: 'Reserved',
      },
      {
        name: 'several sizes: a 2Mi pool is judged on nfv.dev/hugepages-2Mi only',
        pool: '2Mi',
        views: [view('n1', { hugepagePools: [reservation(0, 4, 4, undefined, '2Mi'), reservation(1, 4, 4, undefined, '2Mi')] }, {}, { 'nfv.dev/hugepages-2Mi': '8', 'nfv.dev/hugepages-1Gi': '0' })],
        kubelet: { status: 'True', reason: 'PagesAdvertised' },
      },
      {
        name: "kubelet's decimal form of large counts (2k)",
        pool: '2Mi',
        views: [view('n1', { hugepagePools: [reservation(0, 1000, 1000, undefined, '2Mi'), reservation(1, 1000, 1000, undefined, '2Mi')] }, {}, { 'nfv.dev/hugepages-2Mi': '2k' })],
        kubelet: { status: 'True', reason: 'PagesAdvertised' },
      },
      {
        name: 'a node where the kernel gave the pool nothing has none of its pages to advertise',
        views: [view('n1', { hugepagePools: [reservation(0, 4, 0, 'KernelFragmentation'), reservation(1, 4, 0, 'KernelFragmentation')] }, {}, { 'nfv.dev/hugepages-1Gi': '0' })],
        kubelet: { status: 'True', reason: 'PagesAdvertised' },
        ready: 'Degraded',
      },
      {
        name: 'Ready keeps its own reason while kubelet lags',
        views: [view('n1', { hugepagePools: [reservation(0, 4, 3, 'KernelFragmentation'), reservation(1, 4, 3, 'KernelFragmentation')] }, {}, { 'nfv.dev/hugepages-1Gi': '0' })],
        kubelet: { status: 'False', reason: 'WaitingForNodeStatus' },
        ready: 'Degraded',
      },
    ])('$name', ({ pool = '1Gi', views, kubelet, ready = 'Reserved', message, notInMessage }) => {
      const status = aggregatePool(goldPool(pool), views, now);
      const advertised = condition(status.conditions, 'KubeletAdvertised')!;
      expect(advertised).toMatchObject(kubelet);
      if (message) expect(advertised.message).toMatch(message);
      if (notInMessage) expect(advertised.message).not.toContain(notInMessage);
      expect(condition(status.conditions, 'Ready')).toMatchObject({ reason: ready, status: ready === 'Reserved' ? 'True' : 'False' });
    });

    test('clears by itself once kubelet reports the pages: no restart', () => {
      const lagging = aggregatePool(goldPool(), [pooled({ 'nfv.dev/hugepages-1Gi': '0' })], now);
      const later = new Date(now.getTime() + 10_000);
      const caughtUp = aggregatePool({ ...goldPool(), status: lagging }, [pooled({ 'nfv.dev/hugepages-1Gi': '8' })], later);
      expect(condition(caughtUp.conditions, 'KubeletAdvertised')).toMatchObject({ status: 'True', reason: 'PagesAdvertised', lastTransitionTime: '2026-11-29T10:00:10Z' });
      expect(condition(caughtUp.conditions, 'Ready')).toMatchObject({ status: 'True', reason: 'Reserved', lastTransitionTime: '2026-11-29T10:00:00Z' });
    });

    test('names at most five nodes', () => {
      const views = ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((name) => pooled({ 'nfv.dev/hugepages-1Gi': '0' }, name));
      const { message } = condition(aggregatePool(goldPool(), views, now).conditions, 'KubeletAdvertised')!;
      expect(message).toMatch(/; e advertises 0 of the 8 nfv\.dev\/hugepages-1Gi its agent offers and 2 more\. .*see its log on a, b, c, d, e and 2 more$/);
    });
  });
});
