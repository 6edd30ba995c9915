import { describe, expect, test } from '@jest/globals';
import { aggregatePool, type PoolNodeView } from '../../../src/controllers/hugepage-pool/aggregate.js';
import type { NfvNodeStatus } from '../../../src/api/nfv-node.js';
import { allocation } from '../../fixtures/placement.js';
import { goldPool } from '../../fixtures/vnf.js';

const now = new Date('2026-11-29T10:00:00Z');
const reservation = (numaNode: number, requested: number, allocated: number, reason?: string) => ({
  pool: 'gold',
  pageSize: '1Gi' as const,
  numaNode,
  requested,
  allocated,
  ...(reason ? { reason, message: `only ${allocated} contiguous 1Gi blocks` } : {}),
});
const view = (name: string, status?: NfvNodeStatus, labels: Record<string, string> = {}): PoolNodeView => ({ name, labels, nfvNode: status });

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
});
