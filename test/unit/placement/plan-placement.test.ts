import { describe, expect, test } from '@jest/globals';
import { planPlacement, type PlacementRequest } from '../../../src/controllers/placement/plan-placement.js';
import type { HugepagePoolSpec } from '../../../src/api/hugepage-pool.js';
import type { CandidateNode } from '../../../src/controllers/placement/candidate-node.js';
import type { VnfSpec } from '../../../src/api/virtual-network-function.js';
import { allocation, candidate, vnfSpec } from '../../fixtures/placement.js';

const gold: HugepagePoolSpec = { pageSize: '1Gi', pagesPerNumaNode: 4 };
const request = (spec: VnfSpec, extra: Partial<PlacementRequest> = {}): PlacementRequest => ({ spec, poolSpec: gold, ...extra });

// Default shape: 2 NUMA nodes x 8 cores x 2 threads; cpu N and N+16 are siblings; NUMA 0 holds
// cores 0-7 (CPUs 0-7,16-23), core 0 (CPUs 0,16) is the host's.
interface Case {
  name: string;
  spec: VnfSpec;
  nodes: CandidateNode[];
  extra?: Partial<PlacementRequest>;
  want: { node: string; numaNode: number; cpus: number[]; devices?: string[] } | RegExp;
}

const cases: Case[] = [
  {
    name: 'whole cores: siblings are taken together, housekeeping core left alone',
    spec: vnfSpec({ cpus: { count: 4 } }),
    nodes: [candidate('n1')],
    want: { node: 'n1', numaNode: 0, cpus: [1, 2, 17, 18] },
  },
  {
    name: 'without fullCores, a half-used core is filled first',
    spec: vnfSpec({ cpus: { count: 1, fullCores: false } }),
    nodes: [candidate('n1', { allocations: [allocation('a', 0, '1', 0)] })],
    want: { node: 'n1', numaNode: 0, cpus: [17] },
  },
  {
    name: 'fullCores skips cores with one sibling taken (fragmentation)',
    spec: vnfSpec({ cpus: { count: 2 } }),
    nodes: [candidate('n1', { allocations: [allocation('a', 0, '1,18,3', 0)] })],
    want: { node: 'n1', numaNode: 0, cpus: [4, 20] },
  },
  {
    name: 'NUMA split: CPUs free on NUMA 0, hugepages only on NUMA 1 -> NUMA 1',
    spec: vnfSpec({ cpus: { count: 2 }, hugepages: { pageSize: '1Gi', amount: '2Gi', pool: 'gold' } }),
    nodes: [candidate('n1', { allocations: [allocation('a', 0, '', 3)] })],
    want: { node: 'n1', numaNode: 1, cpus: [9, 25] },
  },
  {
    name: 'NUMA split: enough CPUs in total but not on one NUMA node -> unschedulable',
    spec: vnfSpec({ cpus: { count: 10 } }),
    nodes: [candidate('n1', { allocations: [allocation('a', 0, '1-4,17-20', 0), allocation('b', 1, '9-12,25-28', 0)] })],
    want: /no node has 10 free isolated CPUs on whole cores.*closest: n1 NUMA 0 has 6 free CPUs/,
  },
  {
    name: 'best fit: the fuller node wins so the empty one stays whole',
    spec: vnfSpec({ cpus: { count: 2 } }),
    nodes: [candidate('empty'), candidate('busy', { allocations: [allocation('a', 0, '1-5,17-21', 1)] })],
    want: { node: 'busy', numaNode: 0, cpus: [6, 22] },
  },
  {
    name: 'pinned NUMA node is honoured',
    spec: vnfSpec({ cpus: { count: 2, numaNode: 1 } }),
    nodes: [candidate('n1')],
    want: { node: 'n1', numaNode: 1, cpus: [9, 25] },
  },
  {
    name: 'odd count with whole cores on SMT2 names the fix',
    spec: vnfSpec({ cpus: { count: 3 } }),
    nodes: [candidate('n1')],
    want: /n1: fullCores needs a multiple of its 2 threads per core/,
  },
  {
    name: 'exhaustion: hugepages all claimed',
    spec: vnfSpec(),
    nodes: [candidate('n1', { poolPages: 1, allocations: [allocation('a', 0, '1,17', 1), allocation('b', 1, '9,25', 1)] })],
    want: /1Gi of 1Gi hugepages from pool gold.*closest: n1 NUMA 0 has 12 free CPUs and 0 free in pool gold/,
  },
  {
    name: 'NIC by pool on the same NUMA node, lowest address first',
    spec: vnfSpec({ interfaces: [{ name: 'uplink', device: { pool: 'fast' } }] }),
    nodes: [candidate('n1')],
    want: { node: 'n1', numaNode: 0, cpus: [1, 17], devices: ['0000:18:00.0'] },
  },
  {
    name: 'NIC by address pulls the VNF to the NIC NUMA node',
    spec: vnfSpec({ interfaces: [{ name: 'uplink', device: { pciAddress: '0000:59:00.0' } }] }),
    nodes: [candidate('n1')],
    want: { node: 'n1', numaNode: 1, cpus: [9, 25], devices: ['0000:59:00.0'] },
  },
  {
    name: 'narrow selector first: pool interface does not steal the addressed NIC',
    spec: vnfSpec({
      interfaces: [
        { name: 'any', device: { pool: 'fast' } },
        { name: 'exact', device: { pciAddress: '0000:18:00.0' } },
      ],
    }),
    nodes: [candidate('n1')],
    want: { node: 'n1', numaNode: 0, cpus: [1, 17], devices: ['0000:19:00.0', '0000:18:00.0'] },
  },
  {
    name: 'an IOMMU group held by another VNF is not split',
    spec: vnfSpec({ interfaces: [{ name: 'uplink', device: { pciAddress: '0000:19:00.0' } }] }),
    nodes: [
      candidate('n1', {
        shape: {},
        allocations: [allocation('a', 0, '1,17', 1, [{ pciAddress: '0000:18:00.0', iommuGroup: 21, driver: 'vfio-pci' }])],
      }),
    ],
    want: /no free NIC for uplink/,
  },
  {
    name: 'a NIC the host uses is never handed out',
    spec: vnfSpec({ interfaces: [{ name: 'uplink', device: { pciAddress: '0000:18:00.0' } }] }),
    nodes: [
      (() => {
        const node = candidate('n1');
        node.inventory.nics[0]!.hostUse = 'interface ens0f0 is up with addresses';
        return node;
      })(),
    ],
    want: /closest: n1 NUMA 0 has 14 free CPUs and no free NIC for uplink/,
  },
  {
    name: 'nodeSelector, cordon, taints and readiness filter nodes, and are reported',
    spec: vnfSpec({ nodeSelector: { tier: 'edge' } }),
    nodes: [
      candidate('a', { labels: { tier: 'core' } }),
      candidate('b', { labels: { tier: 'edge' }, unschedulable: true }),
      candidate('c', { labels: { tier: 'edge' }, taints: [{ key: 'nfv', effect: 'NoSchedule' }] }),
      candidate('d', { labels: { tier: 'edge' }, ready: false }),
    ],
    want: /skipped a: not matching spec.nodeSelector; b: cordoned; c: tainted nfv:NoSchedule; d: not Ready/,
  },
  {
    name: 'a tolerated taint is fine',
    spec: vnfSpec({ tolerations: [{ key: 'nfv', operator: 'Exists' }] }),
    nodes: [candidate('c', { taints: [{ key: 'nfv', effect: 'NoSchedule' }] })],
    want: { node: 'c', numaNode: 0, cpus: [1, 17] },
  },
  {
    name: 'a linked VNF goes to its peer node',
    spec: vnfSpec(),
    nodes: [candidate('a'), candidate('b', { allocations: [allocation('x', 0, '1-6,17-22', 0)] })],
    extra: { peer: { name: 'upstream', node: 'a' } },
    want: { node: 'a', numaNode: 0, cpus: [1, 17] },
  },
  {
    name: 'pool page size mismatch is reported per node',
    spec: vnfSpec({ hugepages: { pageSize: '2Mi', amount: '2Mi', pool: 'gold' } }),
    nodes: [candidate('a')],
    want: /HugepagePool gold has 1Gi pages, not 2Mi/,
  },
  {
    name: 'no inventory at all points at the agent',
    spec: vnfSpec(),
    nodes: [],
    want: /no NfvNode inventory is published yet/,
  },
];

describe('planPlacement', () => {
  test.each(cases)('$name', ({ spec, nodes, extra, want }) => {
    const plan = planPlacement(request(spec, extra), nodes);
    if (want instanceof RegExp) {
      expect(plan.placed).toBe(false);
      if (!plan.placed) expect(plan.message).toMatch(want);
      return;
    }
    expect(plan.placed).toBe(true);
    if (!plan.placed) return;
    expect({ node: plan.decision.node, numaNode: plan.decision.numaNode, cpus: plan.decision.cpus }).toEqual({
      node: want.node,
      numaNode: want.numaNode,
      cpus: want.cpus,
    });
    if (want.devices) expect(plan.decision.devices.map((d) => d.pciAddress)).toEqual(want.devices);
  });

  test('is deterministic whatever the order of nodes', () => {
    const nodes = ['c', 'a', 'b'].map((name) => candidate(name));
    const first = planPlacement(request(vnfSpec()), nodes);
    const second = planPlacement(request(vnfSpec()), [...nodes].reverse());
    expect(second).toEqual(first);
  });

  test('racing requests planned from one snapshot collide, and the second replans disjoint', () => {
    const node = candidate('n1', { shape: { numaNodes: 1, coresPerNuma: 3 } });
    const a = planPlacement(request(vnfSpec()), [node]);
    const b = planPlacement(request(vnfSpec()), [node]);
    expect(a).toEqual(b); // same snapshot, same answer: the ledger precondition must refuse one of them
    if (!a.placed) throw new Error('a not placed');
    const afterA = { ...node, allocations: [allocation('a', 0, a.decision.cpus.join(','), 1)] };
    const replanned = planPlacement(request(vnfSpec()), [afterA]);
    expect(replanned.placed && replanned.decision.cpus).toEqual([2, 5]);
    const afterB = { ...node, allocations: [...afterA.allocations, allocation('b', 0, '2,5', 1)] };
    const third = planPlacement(request(vnfSpec()), [afterB]);
    expect(third.placed).toBe(false);
    if (!third.placed) expect(third.message).toMatch(/closest: n1 NUMA 0 has 0 free CPUs/);
  });
});
