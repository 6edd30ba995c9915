import { describe, expect, test } from '@jest/globals';
import { chainOf } from '../../../src/controllers/vnf/links.js';
import { planVnf, POD_HASH_ANNOTATION, type VnfPlan } from '../../../src/controllers/vnf/plan.js';
import type { VnfObservation } from '../../../src/controllers/vnf/observation.js';
import type { VirtualNetworkFunction } from '../../../src/api/virtual-network-function.js';
import { allocation, candidate } from '../../fixtures/placement.js';
import { observation, pod, vnf } from '../../fixtures/vnf.js';

const now = new Date('2026-11-29T10:00:00Z');
const types = (plan: VnfPlan) => plan.actions.map((a) => a.type);
const condition = (plan: VnfPlan, type: string) => plan.status?.conditions?.find((c) => c.type === type);

/** A VNF whose ledger entry exists, with the agent's NodePrepared condition. */
function placedVnf(prepared?: { status: 'True' | 'False'; reason: string; message?: string }, extra: Parameters<typeof vnf>[1] = {}) {
  const subject = vnf('fwd', {
    ...extra,
    status: prepared
      ? { conditions: [{ type: 'NodePrepared', lastTransitionTime: '2026-11-29T09:00:00Z', message: prepared.message ?? '', ...prepared }] }
      : {},
  });
  const entry = { node: 'n1', allocation: allocation(subject.metadata.uid!, 0, '1,17', 1) };
  return { subject, ledger: entry };
}

/** Plans twice: the second time with the pod the first plan rendered, as the API would return it. */
function renderedPodHash(obs: VnfObservation): string {
  const first = planVnf({ ...obs, pod: undefined }, now);
  const apply = first.actions.find((a) => a.type === 'ApplyPod');
  if (apply?.type !== 'ApplyPod') throw new Error('no pod rendered');
  return apply.pod.metadata!.annotations![POD_HASH_ANNOTATION]!;
}

describe('planVnf', () => {
  test('adds the finalizer first and does nothing else', () => {
    const plan = planVnf(observation(vnf('fwd', { finalizer: false })), now);
    expect(types(plan)).toEqual(['AddFinalizer']);
    expect(plan.status).toBeUndefined();
  });

  test('places a new VNF: ledger commit, pod, Placed=True, Ready=False while the pod is created', () => {
    const plan = planVnf(observation(vnf('fwd')), now);
    expect(types(plan)).toEqual(['CommitAllocation', 'ApplyPod']);
    const commit = plan.actions[0]!;
    expect(commit.type === 'CommitAllocation' && commit.allocation.cpus).toBe('1,17');
    expect(condition(plan, 'Placed')).toMatchObject({ status: 'True', reason: 'Allocated', observedGeneration: 1 });
    expect(condition(plan, 'Ready')).toMatchObject({ status: 'False', reason: 'PodCreating' });
    expect(condition(plan, 'Reconciling')).toMatchObject({ status: 'True' });
    expect(plan.status).toMatchObject({ phase: 'Placed', podName: 'fwd', placement: { node: 'n1', numaNode: 0, cpus: '1,17' } });
    expect(plan.events.map((e) => `${e.type}/${e.reason}`)).toEqual(['Normal/Allocated']);
  });

  test.each<{ name: string; obs: () => VnfObservation; reason: string; stalled?: boolean; message: RegExp }>([
    { name: 'pool missing', obs: () => observation(vnf('fwd'), { pool: undefined }), reason: 'PoolNotFound', message: /spec.hugepages.pool: HugepagePool gold does not exist/ },
    {
      name: 'pool of another page size',
      obs: () => observation(vnf('fwd', { spec: { hugepages: { pageSize: '2Mi', amount: '2Mi', pool: 'gold' } } })),
      reason: 'PageSizeMismatch',
      stalled: true,
      message: /spec.hugepages.pageSize is 2Mi but HugepagePool gold has 1Gi pages/,
    },
    {
      name: 'nothing fits',
      obs: () => observation(vnf('fwd', { spec: { cpus: { count: 30 } } })),
      reason: 'Unschedulable',
      message: /no node has 30 free isolated CPUs on whole cores and 1Gi of 1Gi hugepages from pool gold on one NUMA node; closest: n1 NUMA 0 has 14 free CPUs/,
    },
    {
      name: 'peer missing',
      obs: () => observation(vnf('b', { spec: { links: [{ name: 'up', peer: 'a', role: 'client' }] } })),
      reason: 'PeerNotFound',
      message: /VNF a does not exist/,
    },
    {
      name: 'peer does not link back',
      obs: () => observation(vnf('b', { spec: { links: [{ name: 'up', peer: 'a', role: 'client' }] } }), { peers: new Map([['a', vnf('a')]]) }),
      reason: 'LinkMismatch',
      stalled: true,
      message: /VNF a has no link back; add to VNF a spec.links an entry \{peer: b, role: server, id: 0\}/,
    },
    {
      name: 'the peer that sorts first is placed first',
      obs: () =>
        observation(vnf('b', { spec: { links: [{ name: 'up', peer: 'a', role: 'client' }] } }), {
          peers: new Map([['a', vnf('a', { spec: { links: [{ name: 'down', peer: 'b', role: 'server' }] } })]]),
        }),
      reason: 'WaitingForPeer',
      message: /waiting for VNF a, first of this memif chain, to be placed/,
    },
  ])('not placed: $name', ({ obs, reason, stalled, message }) => {
    const plan = planVnf(obs(), now);
    expect(types(plan)).toEqual([]);
    expect(condition(plan, 'Placed')).toMatchObject({ status: 'False', reason });
    expect(condition(plan, 'Placed')!.message).toMatch(message);
    expect(condition(plan, 'Ready')).toMatchObject({ status: 'False', reason });
    expect(plan.status!.phase).toBe(stalled ? 'Failed' : 'Pending');
    expect(condition(plan, 'Stalled')?.status).toBe(stalled ? 'True' : undefined);
    expect(condition(plan, 'Reconciling')?.status).toBe(stalled ? undefined : 'True');
  });

  test('a linked VNF whose peer is placed goes to the same node', () => {
    const a = vnf('a', { spec: { links: [{ name: 'down', peer: 'b', role: 'server' }] } });
    a.status = { placement: { node: 'n2' } as never };
    const obs = observation(vnf('b', { spec: { links: [{ name: 'up', peer: 'a', role: 'client' }] } }), {
      peers: new Map([['a', a]]),
      nodes: [candidate('n1'), candidate('n2')],
    });
    const plan = planVnf(obs, now);
    expect(plan.status!.placement!.node).toBe('n2');
  });

  test('a chain a-c-b is placed as one: b waits for a although it links only to c, then all share a node', () => {
    const links = {
      a: [{ name: 'to-c', peer: 'c', role: 'server' }],
      c: [
        { name: 'from-a', peer: 'a', role: 'client' },
        { name: 'to-b', peer: 'b', role: 'server' },
      ],
      b: [{ name: 'from-c', peer: 'c', role: 'client' }],
    };
    const chain = { a: vnf('a', { spec: { links: links.a } }), b: vnf('b', { spec: { links: links.b } }), c: vnf('c', { spec: { links: links.c } }) };
    const byName = (name: string) => chain[name as keyof typeof chain];
    const nodes = [candidate('n1'), candidate('n2')];
    const observe = (name: keyof typeof chain) => observation(chain[name], { peers: chainOf(chain[name], byName), nodes });

    expect(condition(planVnf(observe('b'), now), 'Placed')).toMatchObject({ reason: 'WaitingForPeer', message: expect.stringContaining('VNF a, first of this memif chain') });
    expect(condition(planVnf(observe('c'), now), 'Placed')).toMatchObject({ reason: 'WaitingForPeer' });
    const first = planVnf(observe('a'), now);
    expect(first.status!.placement!.node).toBe('n1');
    chain.a.status = first.status;
    expect(planVnf(observe('b'), now).status!.placement!.node).toBe('n1');
    expect(planVnf(observe('c'), now).status!.placement!.node).toBe('n1');
  });

  test('adopts a ledger entry written before a crash instead of placing again', () => {
    const { subject, ledger } = placedVnf();
    const plan = planVnf(observation(subject, { ledger }), now);
    expect(types(plan)).toEqual(['ApplyPod']);
    expect(plan.status!.placement).toMatchObject({ node: 'n1', cpus: '1,17', hostPaths: { hugepages: `/var/lib/nfv-operator/vnfs/${subject.metadata.uid}/hugepages` } });
  });

  test.each<{ name: string; prepared?: Parameters<typeof placedVnf>[0]; podReady: boolean; reason: string; ready: string; phase: string }>([
    { name: 'agent not done', podReady: false, reason: 'WaitingForNodeAgent', ready: 'False', phase: 'Starting' },
    { name: 'agent preparing', prepared: { status: 'False', reason: 'Preparing' }, podReady: false, reason: 'WaitingForNodeAgent', ready: 'False', phase: 'Starting' },
    {
      name: 'agent failed',
      prepared: { status: 'False', reason: 'DeviceInUse', message: '0000:18:00.0 carries the host route' },
      podReady: false,
      reason: 'NodePreparationFailed',
      ready: 'False',
      phase: 'Starting',
    },
    { name: 'prepared, pod starting', prepared: { status: 'True', reason: 'Prepared' }, podReady: false, reason: 'PodNotReady', ready: 'False', phase: 'Starting' },
    { name: 'prepared and pod ready', prepared: { status: 'True', reason: 'Prepared' }, podReady: true, reason: 'Running', ready: 'True', phase: 'Running' },
  ])('readiness: $name', ({ prepared, podReady, reason, ready, phase }) => {
    const { subject, ledger } = placedVnf(prepared);
    const obs = observation(subject, { ledger });
    const plan = planVnf({ ...obs, pod: pod('fwd', { ready: podReady, hash: renderedPodHash(obs) }) }, now);
    expect(types(plan)).toEqual([]);
    expect(condition(plan, 'Ready')).toMatchObject({ status: ready, reason });
    expect(plan.status!.phase).toBe(phase);
    expect(condition(plan, 'Reconciling')?.status).toBe(ready === 'True' ? undefined : 'True');
    expect(plan.status!.conditions!.some((c) => c.type === 'NodePrepared')).toBe(false);
  });

  test('a pod rendered from an older spec, or a failed pod, is replaced', () => {
    const { subject, ledger } = placedVnf({ status: 'True', reason: 'Prepared' });
    const obs = observation(subject, { ledger });
    expect(types(planVnf({ ...obs, pod: pod('fwd', { hash: 'stale' }) }, now))).toEqual(['DeletePod']);
    expect(types(planVnf({ ...obs, pod: pod('fwd', { hash: renderedPodHash(obs), phase: 'Failed' }) }, now))).toEqual(['DeletePod']);
    expect(types(planVnf({ ...obs, pod: pod('fwd', { hash: 'stale', deleting: true }) }, now))).toEqual([]);
  });

  test('lastTransitionTime moves only when a status flips', () => {
    const { subject, ledger } = placedVnf({ status: 'True', reason: 'Prepared' });
    const obs = observation(subject, { ledger });
    const hash = renderedPodHash(obs);
    const first = planVnf({ ...obs, pod: pod('fwd', { hash }) }, now);
    const later = new Date(now.getTime() + 60_000);
    const again: VirtualNetworkFunction = { ...subject, status: { ...first.status, conditions: [...subject.status!.conditions!, ...first.status!.conditions!] } };
    const second = planVnf({ ...obs, vnf: again, pod: pod('fwd', { hash, phase: 'Pending' }) }, later);
    expect(condition(second, 'Ready')!.lastTransitionTime).toBe(condition(first, 'Ready')!.lastTransitionTime);
    expect(second.events).toEqual([]);
    const third = planVnf({ ...obs, vnf: again, pod: pod('fwd', { hash, ready: true }) }, later);
    expect(condition(third, 'Ready')!.lastTransitionTime).toBe('2026-11-29T10:01:00Z');
    expect(third.events.map((e) => e.reason)).toEqual(['Running']);
  });

  describe('deletion', () => {
    test('deletes the pod first and waits for it', () => {
      const { subject, ledger } = placedVnf(undefined, { deleting: true });
      const plan = planVnf(observation(subject, { ledger, pod: pod('fwd') }), now);
      expect(types(plan)).toEqual(['DeletePod']);
      expect(plan.status!.phase).toBe('Terminating');
      expect(condition(plan, 'Ready')).toMatchObject({ reason: 'WaitingForPodDeletion' });
    });

    test('keeps the finalizer until the agent reports TornDown', () => {
      const { subject, ledger } = placedVnf({ status: 'True', reason: 'Prepared' }, { deleting: true });
      const plan = planVnf(observation(subject, { ledger }), now);
      expect(types(plan)).toEqual([]);
      expect(condition(plan, 'Ready')).toMatchObject({ reason: 'WaitingForNodeTeardown' });
    });

    test('releases the ledger entry and the finalizer once torn down', () => {
      const { subject, ledger } = placedVnf({ status: 'False', reason: 'TornDown' }, { deleting: true });
      const plan = planVnf(observation(subject, { ledger }), now);
      expect(plan.actions).toEqual([
        { type: 'ReleaseAllocation', node: 'n1', uid: subject.metadata.uid },
        { type: 'RemoveFinalizer' },
      ]);
      expect(plan.events[0]).toMatchObject({ reason: 'Released' });
    });

    test('a VNF whose node is gone, or that never held anything, is released at once', () => {
      const { subject, ledger } = placedVnf(undefined, { deleting: true });
      expect(types(planVnf(observation(subject, { ledger, ledgerNodeExists: false }), now))).toEqual(['ReleaseAllocation', 'RemoveFinalizer']);
      expect(types(planVnf(observation(vnf('x', { deleting: true })), now))).toEqual(['RemoveFinalizer']);
    });
  });
});
