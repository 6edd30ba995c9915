import { existsSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import pino from 'pino';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { READY_FILE } from '../../src/api/host-paths.js';
import type { HugepagePool } from '../../src/api/hugepage-pool.js';
import type { NfvNode } from '../../src/api/nfv-node.js';
import type { VirtualNetworkFunction } from '../../src/api/virtual-network-function.js';
import type { ReconcileContext } from '../../src/runtime/controller.js';
import { StalledError, WaitingError } from '../../src/runtime/errors.js';
import type { KubeObject } from '../../src/runtime/kube-object.js';
import { createNodeHost, type NodeHost } from '../../node-agent/host/node-host.js';
import { HugepageReservation } from '../../node-agent/host/hugepage-reservation.js';
import { JournalStore } from '../../node-agent/journal.js';
import { nodeReconciler } from '../../node-agent/node-reconciler.js';
import { decideVnf, vnfReconciler } from '../../node-agent/vnf-reconciler.js';
import { FakePciKernel } from './helpers/fake-pci-kernel.js';
import { buildFakeMachine } from './helpers/fake-sysfs.js';
import { FakeKubeletPod, makeVfioNodes, mountPointsUnder, requireRoot, TempTree } from './helpers/host-fixtures.js';
import { placedVnf } from './helpers/vnf-fixture.js';

const VNF_CPU = readFileSync('/sys/devices/system/cpu/online', 'utf8').trim() === '0' ? 0 : 1;

interface Applied {
  plural: string;
  subresource?: string;
  fieldManager: string;
  body: KubeObject & { status?: Record<string, unknown> };
}

/** A client that records server-side applies. */
function recordingClient(applied: Applied[]) {
  return {
    async apply<T extends KubeObject>(ref: { plural: string }, obj: T, options: { fieldManager: string; subresource?: string }): Promise<T> {
      applied.push({ plural: ref.plural, subresource: options.subresource, fieldManager: options.fieldManager, body: structuredClone(obj) as Applied['body'] });
      return obj;
    },
  };
}

function context(key: string): ReconcileContext {
  return { key, name: key, reconcileId: 'test', logger: pino({ level: 'silent' }), signal: new AbortController().signal, failures: 0 };
}

const clock = { now: () => Date.parse('2025-01-01T00:00:00Z'), setTimer: () => ({ cancel: () => undefined }) };

function pod(name: string, uid: string, extra: Partial<V1Pod['metadata']> = {}): V1Pod {
  return { metadata: { name, namespace: 'edge', uid, labels: { 'nfv.dev/vnf': 'fw' }, ...extra }, spec: { nodeName: 'worker-1', containers: [] } };
}

describe('decideVnf', () => {
  const vnf = placedVnf({ stateRoot: '/var/lib/nfv-operator', uid: '11111111-1111-4111-8111-111111111111' });
  const deleting = { ...vnf, metadata: { ...vnf.metadata, deletionTimestamp: new Date() } } as VirtualNetworkFunction;
  const runningPod = pod('fw-pod', '22222222-2222-4222-8222-222222222222');
  it.each<[string, Parameters<typeof decideVnf>[0], ReturnType<typeof decideVnf>]>([
    ['placed, no pod yet: host side', { nodeName: 'worker-1', vnf, pods: [], journaled: [] }, { teardown: [], next: { type: 'prepare' } }],
    ['placed, pod here: pod side too', { nodeName: 'worker-1', vnf, pods: [runningPod], journaled: [vnf.metadata.uid!] }, { teardown: [], next: { type: 'prepare', podUid: runningPod.metadata!.uid } }],
    ['placed, pod terminating: host side only', { nodeName: 'worker-1', vnf, pods: [pod('fw-pod', 'x', { deletionTimestamp: new Date() })], journaled: [] }, { teardown: [], next: { type: 'prepare' } }],
    ['deleting with its pod still there: wait', { nodeName: 'worker-1', vnf: deleting, pods: [runningPod], journaled: [vnf.metadata.uid!] }, { teardown: [], next: { type: 'waitForPods', pods: ['fw-pod'] } }],
    ['deleting, pod gone: tear down and report', { nodeName: 'worker-1', vnf: deleting, pods: [], journaled: [vnf.metadata.uid!] }, { teardown: [vnf.metadata.uid!], next: { type: 'reportTornDown' } }],
    ['deleting, never prepared: report', { nodeName: 'worker-1', vnf: deleting, pods: [], journaled: [] }, { teardown: [], next: { type: 'reportTornDown' } }],
    ['gone while the agent was down: tear down', { nodeName: 'worker-1', pods: [], journaled: ['33333333-3333-4333-8333-333333333333'] }, { teardown: ['33333333-3333-4333-8333-333333333333'], next: { type: 'nothing' } }],
    [
      'recreated under the same name: the old one goes once its pod is gone',
      { nodeName: 'worker-1', vnf, pods: [pod('fw-pod', 'p', { ownerReferences: [{ apiVersion: 'nfv.dev/v1alpha1', kind: 'VirtualNetworkFunction', name: 'fw', uid: 'old' }] })], journaled: ['old', vnf.metadata.uid!] },
      { teardown: [], next: { type: 'prepare' } },
    ],
  ])('%s', (_name, observation, decision) => {
    expect(decideVnf(observation)).toEqual(decision);
  });
});

describe('vnfReconciler on the real kernel with a recording API client', () => {
  let tree: TempTree;
  let kernel: FakePciKernel;
  let host: NodeHost;
  let kubeletPod: FakeKubeletPod | undefined;

  beforeAll(async () => {
    requireRoot();
    tree = new TempTree('nfv-agent-reconcile');
    kernel = new FakePciKernel(tree.path('sys'));
    kernel.addDriver('vfio-pci');
    kernel.addDevice({ address: '0000:3b:00.0', vendor: '8086', device: '159b', pciClass: '0x020000', numaNode: 0, iommuGroup: 40, driver: 'ice' });
    const dev = tree.path('dev');
    await makeVfioNodes(dev, [40]);
    host = createNodeHost({ sysfs: kernel.sysfs, dev }, { hostMountInfo: '/dev/null' });
  });

  afterAll(async () => {
    await kubeletPod?.destroy();
    kernel?.destroy();
    await tree?.cleanup();
  });

  it('reports Preparing, then Prepared with the pod, then TornDown after deletion, with only NodePrepared and the agent field manager', async () => {
    const stateRoot = tree.path('state');
    kubeletPod = await FakeKubeletPod.create('cgroupfs');
    let vnf: VirtualNetworkFunction = placedVnf({ stateRoot, cpus: String(VNF_CPU), devices: [{ interface: 'up', pciAddress: '0000:3b:00.0', iommuGroup: 40, driver: 'vfio-pci' }] });
    let pods: V1Pod[] = [];
    const applied: Applied[] = [];
    const journals = new JournalStore(stateRoot);
    let hostChanges = 0;
    let nriMissing: string | undefined = 'the NRI plugin is not registered';
    const reconcile = vnfReconciler({
      nodeName: 'worker-1',
      stateRoot,
      host,
      journals,
      getVnf: () => vnf,
      podsOf: () => pods,
      client: recordingClient(applied),
      clock,
      hostFacts: async () => ({ cpus: new Set([0, 1]), numaNodes: new Set([0]) }),
      onHostChanged: () => hostChanges++,
      containerLimitsMissing: async () => nriMissing,
    });
    const conditions = () => applied.map((a) => a.body.status!.conditions as { type: string; status: string; reason: string }[]).map(([c]) => `${c!.status} ${c!.reason}`);

    await reconcile('edge/fw', context('edge/fw'));
    expect(conditions()).toEqual(['False Preparing', 'False Preparing']);
    expect(kernel.driverOf('0000:3b:00.0')).toBe('vfio-pci');

    pods = [pod('fw-pod', kubeletPod.podUid)];
    const readySignal = posix.join(vnf.status!.placement!.hostPaths.readySignal, READY_FILE);
    // Without the NRI plugin the container would start with hugetlb limit 0: the gate stays shut.
    await expect(reconcile('edge/fw', context('edge/fw'))).rejects.toMatchObject({ name: 'WaitingError', reason: 'WaitingForNriPlugin' });
    expect(conditions().at(-1)).toBe('False WaitingForNriPlugin');
    expect(existsSync(readySignal)).toBe(false);

    nriMissing = undefined;
    await reconcile('edge/fw', context('edge/fw'));
    expect(conditions().at(-1)).toBe('True Prepared');
    // Once given, the signal stays even if the plugin drops out.
    nriMissing = 'the NRI plugin is not registered';
    await reconcile('edge/fw', context('edge/fw'));
    expect(conditions().at(-1)).toBe('True Prepared');
    expect(readFileSync(posix.join(vnf.status!.placement!.hostPaths.readySignal, READY_FILE), 'utf8')).toBe(kubeletPod.podUid);
    for (const a of applied) {
      expect(a).toMatchObject({ plural: 'virtualnetworkfunctions', subresource: 'status', fieldManager: 'nfv-node-agent' });
      expect(a.body.metadata).toEqual({ name: 'fw', namespace: 'edge' });
      expect(Object.keys(a.body.status!)).toEqual(['conditions']);
      expect((a.body.status!.conditions as unknown[]).length).toBe(1);
    }

    // Deleted: while the pod is there nothing is undone.
    vnf = { ...vnf, metadata: { ...vnf.metadata, deletionTimestamp: new Date() } } as VirtualNetworkFunction;
    const before = applied.length;
    await reconcile('edge/fw', context('edge/fw'));
    expect(applied.length).toBe(before);
    expect(mountPointsUnder(stateRoot)).toHaveLength(1);

    pods = [];
    await kubeletPod.destroy();
    kubeletPod = undefined;
    await reconcile('edge/fw', context('edge/fw'));
    expect(conditions().at(-1)).toBe('False TornDown');
    expect(mountPointsUnder(stateRoot)).toEqual([]);
    expect(existsSync(vnf.status!.placement!.hostPaths.root)).toBe(false);
    expect(await journals.uids()).toEqual([]);
    expect(kernel.driverOf('0000:3b:00.0')).toBe('ice');
    expect(hostChanges).toBeGreaterThan(0);
  });

  it('refuses a placement that does not validate, names the field, and touches nothing', async () => {
    const stateRoot = tree.path('state-invalid');
    const vnf = placedVnf({ stateRoot, cpus: '0-64' });
    const applied: Applied[] = [];
    const reconcile = vnfReconciler({
      nodeName: 'worker-1',
      stateRoot,
      host,
      journals: new JournalStore(stateRoot),
      getVnf: () => vnf,
      podsOf: () => [],
      client: recordingClient(applied),
      clock,
      hostFacts: async () => ({ cpus: new Set([0, 1]), numaNodes: new Set([0]) }),
      onHostChanged: () => undefined,
    });
    await expect(reconcile('edge/fw', context('edge/fw'))).rejects.toBeInstanceOf(StalledError);
    expect(applied).toHaveLength(1);
    expect(applied[0]!.body.status!.conditions).toEqual([
      expect.objectContaining({ type: 'NodePrepared', status: 'False', reason: 'InvalidPlacement', message: expect.stringContaining('status.placement.cpus: CPU 2 is not an online CPU') }),
    ]);
    expect(existsSync(stateRoot)).toBe(false);
  });
});

describe('nodeReconciler on a built node with a recording API client', () => {
  let tree: TempTree;
  beforeAll(() => {
    tree = new TempTree('nfv-node-reconcile');
    buildFakeMachine(tree.path('sys'), tree.path('proc'), { numaNodes: 2, coresPerNode: 2, threadsPerCore: 2, isolated: [1, 3, 5, 7] });
  });
  afterAll(() => tree.cleanup());

  it('creates the NfvNode owned by its Node and publishes inventory and pool reservations, never allocations', async () => {
    const applied: Applied[] = [];
    // A "kernel" that gives at most 3 1Gi pages per NUMA node.
    const reservation = new HugepageReservation(tree.path('sys'), {
      procRoot: tree.path('proc'),
      attempts: 2,
      retryDelayMs: 1,
      writeAttribute: async (path, value) => {
        if (!path.endsWith('nr_hugepages')) return;
        const { writeFileSync } = await import('node:fs');
        writeFileSync(path, `${path.includes('1048576kB') ? Math.min(Number(value), 3) : Number(value)}\n`);
      },
    });
    const host = createNodeHost({ sysfs: tree.path('sys'), proc: tree.path('proc') }, { overrides: { reservation } });
    const node: V1Node = { metadata: { name: 'worker-1', uid: 'node-uid-1', labels: { tier: 'edge' } } };
    const pools: HugepagePool[] = [
      { apiVersion: 'nfv.dev/v1alpha1', kind: 'HugepagePool', metadata: { name: 'small' }, spec: { pageSize: '2Mi', totalPages: 9 } },
      { apiVersion: 'nfv.dev/v1alpha1', kind: 'HugepagePool', metadata: { name: 'big' }, spec: { pageSize: '1Gi', pagesPerNumaNode: 4, nodeSelector: { tier: 'edge' } } },
      { apiVersion: 'nfv.dev/v1alpha1', kind: 'HugepagePool', metadata: { name: 'other' }, spec: { pageSize: '2Mi', pagesPerNumaNode: 4, nodeSelector: { tier: 'core' } } },
    ];
    let nfvNode: NfvNode | undefined = undefined;
    const reconcile = nodeReconciler({
      nodeName: 'worker-1',
      stateRoot: tree.path('state'),
      host,
      journals: new JournalStore(tree.path('state')),
      agentVersion: '0.1.0',
      nicPools: [],
      clock,
      client: recordingClient(applied),
      getNode: () => node,
      getNfvNode: () => nfvNode,
      listPools: () => pools,
      onInventory: () => undefined,
      recheckMs: 60_000,
    });
    expect(await reconcile('worker-1', context('worker-1'))).toEqual({ requeueAfterMs: 60_000 });
    expect(applied.map((a) => `${a.plural}/${a.subresource ?? ''} ${a.fieldManager}`)).toEqual(['nfvnodes/ nfv-node-agent', 'nfvnodes/status nfv-node-agent']);
    expect(applied[0]!.body.metadata).toEqual({ name: 'worker-1', ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: 'worker-1', uid: 'node-uid-1' }] });
    const status = applied[1]!.body.status as NfvNode['status'] & object;
    expect(applied[1]!.body.metadata).toEqual({ name: 'worker-1' });
    expect(status).not.toHaveProperty('allocations');
    expect(status.agentVersion).toBe('0.1.0');
    expect(status.inventory!.cpus.filter((c) => c.isolated).map((c) => c.id)).toEqual([1, 3, 5, 7]);
    expect(status.inventory!.numaNodes.map((n) => n.hugepages)).toEqual([
      [{ pageSize: '1Gi', total: 3, free: 0 }, { pageSize: '2Mi', total: 5, free: 0 }],
      [{ pageSize: '1Gi', total: 3, free: 0 }, { pageSize: '2Mi', total: 4, free: 0 }],
    ]);
    expect(status.hugepagePools).toEqual([
      { pool: 'big', pageSize: '1Gi', numaNode: 0, requested: 4, allocated: 3, reason: 'KernelFragmentation', message: expect.stringContaining('gave 3 of 4 1Gi pages on NUMA node 0') },
      { pool: 'big', pageSize: '1Gi', numaNode: 1, requested: 4, allocated: 3, reason: 'KernelFragmentation', message: expect.any(String) },
      { pool: 'small', pageSize: '2Mi', numaNode: 0, requested: 5, allocated: 5 },
      { pool: 'small', pageSize: '2Mi', numaNode: 1, requested: 4, allocated: 4 },
    ]);
    expect(status.conditions).toEqual([expect.objectContaining({ type: 'Ready', status: 'True', reason: 'InventoryCurrent' })]);

    // Nothing changed: nothing is written.
    nfvNode = { apiVersion: 'nfv.dev/v1alpha1', kind: 'NfvNode', metadata: { name: 'worker-1', ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: 'worker-1', uid: 'node-uid-1' }] }, spec: undefined, status };
    await reconcile('worker-1', context('worker-1'));
    expect(applied).toHaveLength(2);
  });

  it('waits for its Node', async () => {
    const reconcile = nodeReconciler({
      nodeName: 'worker-1',
      stateRoot: tree.path('state2'),
      host: createNodeHost({ sysfs: tree.path('sys'), proc: tree.path('proc') }),
      journals: new JournalStore(tree.path('state2')),
      agentVersion: '0.1.0',
      nicPools: [],
      clock,
      client: recordingClient([]),
      getNode: () => undefined,
      getNfvNode: () => undefined,
      listPools: () => [],
      onInventory: () => undefined,
      recheckMs: 60_000,
    });
    await expect(reconcile('worker-1', context('worker-1'))).rejects.toBeInstanceOf(WaitingError);
  });
});
