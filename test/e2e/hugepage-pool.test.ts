/**
 * HugepagePools on the real API server and scheduler, with no kubelet restart anywhere: VNF pods
 * request the node agent's `nfv.dev/hugepages-<size>`, whose device plugin lists the pool pages as
 * the agent reserves them, and kubelet (here the simulated one) reports them in the Node. A pool
 * created after the nodes joined is advertised at once and grows the same way, and a VNF on its
 * pages is scheduled and runs. A node whose agent's device plugins are not registered with kubelet
 * shows in KubeletAdvertised (WaitingForNodeStatus), its VNF pod waits Pending, and both clear once
 * they register, through the Node watch (the controller's resync is 10 minutes away).
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { API_VERSION, NFV_NODE_LABEL } from '../../src/api/group.js';
import type { HugepagePool } from '../../src/api/hugepage-pool.js';
import { resources } from '../../src/controllers/resources.js';
import { vnfPodName } from '../../src/controllers/vnf/render-pod.js';
import { findCondition, type Condition } from '../../src/runtime/conditions.js';
import { e2eCluster } from '../cluster/e2e-env.js';
import { createKwokNodes } from '../cluster/kwok-nodes.js';
import { SUITE_LABEL, startNfvFixture, type NfvFixture } from '../cluster/nfv-fixture.js';
import { resolveClusterTools } from '../cluster/tools.js';
import { waitUntil } from '../cluster/wait-until.js';

const SUITE = 'hpp-kubelet';
const SHAPE = { numaNodes: 2 };
/** The fixture's pool gold reserves 4 1Gi pages on each NUMA node of both nodes. */
const REGISTERED = `${SUITE}-node-0`;
const UNREGISTERED = `${SUITE}-node-1`;
const LATE_POOL = `${SUITE}-late`;
const PAGES_1GI = 'nfv.dev/hugepages-1Gi';

let f: NfvFixture;

async function poolWith(name: string, description: string, accept: (conditions: readonly Condition[]) => boolean): Promise<HugepagePool> {
  return waitUntil(
    description,
    async () => {
      const pool = await f.client.get<HugepagePool>(resources.hugepagePools, name);
      return accept(pool.status?.conditions ?? []) ? pool : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 200 },
  );
}

const has = (type: string, status: string, reason: string) => (conditions: readonly Condition[]) =>
  findCondition(conditions, type)?.status === status && findCondition(conditions, type)?.reason === reason;

async function allocatablePages(node: string): Promise<string | undefined> {
  return (await f.client.get<V1Node>(resources.nodes, node)).status?.allocatable?.[PAGES_1GI];
}

async function applyLatePool(pagesPerNumaNode: number): Promise<void> {
  await f.client.apply<HugepagePool>(
    resources.hugepagePools,
    {
      apiVersion: API_VERSION,
      kind: 'HugepagePool',
      metadata: { name: LATE_POOL },
      spec: { nodeSelector: { [SUITE_LABEL]: SUITE, 'kubernetes.io/hostname': REGISTERED }, pageSize: '1Gi', pagesPerNumaNode },
    },
    { fieldManager: 'nfv-e2e', force: true },
  );
}

beforeAll(async () => {
  f = await startNfvFixture(SUITE, { nodes: 1, shape: SHAPE });
  await createKwokNodes(f.kc, [{ name: UNREGISTERED, labels: { [SUITE_LABEL]: SUITE, [NFV_NODE_LABEL]: 'true' } }]);
  f.nodeNames.push(UNREGISTERED);
  f.agent.addNodes([{ name: UNREGISTERED, shape: SHAPE, devicePluginsRegistered: false }]);
});

afterAll(async () => {
  await f?.close();
  await f?.client.delete(resources.hugepagePools, LATE_POOL).catch(() => undefined);
});

describe('HugepagePools are schedulable as they are reserved, without a kubelet restart', () => {
  test('a pool created after the nodes joined is advertised at once, and the Node follows it as it grows', async () => {
    await waitUntil('the fixture pool on the registered node', async () => (await allocatablePages(REGISTERED)) === '8');
    await applyLatePool(2);
    await waitUntil('the late pool in the Node allocatable', async () => (await allocatablePages(REGISTERED)) === '12');
    const pool = await poolWith(LATE_POOL, 'the late pool advertised', has('KubeletAdvertised', 'True', 'PagesAdvertised'));
    expect(pool.status).toMatchObject({ requested: 4, allocated: 4, free: 4 });
    expect(findCondition(pool.status!.conditions, 'Ready')).toMatchObject({ status: 'True', reason: 'Reserved' });

    await applyLatePool(3);
    await waitUntil('the grown pool in the Node allocatable', async () => (await allocatablePages(REGISTERED)) === '14');
    const grown = await f.client.get<HugepagePool>(resources.hugepagePools, LATE_POOL);
    expect(grown.status).toMatchObject({ requested: 6, allocated: 6 });
    expect(findCondition(grown.status!.conditions, 'KubeletAdvertised')).toMatchObject({ status: 'True', reason: 'PagesAdvertised' });
  });

  test("a VNF on the late pool's pages is scheduled and runs, requesting them in pages, not native hugepages", async () => {
    await f.create(
      f.vnf('late', { hugepages: { pageSize: '1Gi', amount: '3Gi', pool: LATE_POOL }, nodeSelector: { [SUITE_LABEL]: SUITE, 'kubernetes.io/hostname': REGISTERED } }),
    );
    const ready = await f.waitForCondition('late', 'Ready', 'True', 'Running');
    const pod = await f.client.get<V1Pod>(resources.pods, ready.status!.podName!, { namespace: f.ns.name });
    expect(pod.spec!.nodeName).toBe(REGISTERED);
    expect(pod.spec!.containers[0]!.resources).toEqual({ requests: { cpu: '2', [PAGES_1GI]: '3' }, limits: { [PAGES_1GI]: '3' } });
  });

  test('a node whose device plugins are not registered: KubeletAdvertised is False (WaitingForNodeStatus) naming it only, Ready is not', async () => {
    const pool = await poolWith(f.pool, 'the pool to name the node without plugins', has('KubeletAdvertised', 'False', 'WaitingForNodeStatus'));
    expect(pool.status).toMatchObject({ requested: 16, allocated: 16 });
    const advertised = findCondition(pool.status!.conditions, 'KubeletAdvertised')!;
    expect(advertised.message).toMatch(new RegExp(`^${UNREGISTERED} has no nfv\\.dev/hugepages-1Gi in its Node allocatable yet \\(its agent offers 8\\)\\. .*see its log on ${UNREGISTERED}$`));
    expect(advertised.message).not.toContain(REGISTERED);
    expect(advertised.observedGeneration).toBe(pool.metadata.generation);
    expect(findCondition(pool.status!.conditions, 'Ready')).toMatchObject({ status: 'True', reason: 'Reserved' });
    expect(await allocatablePages(UNREGISTERED)).toBeUndefined();
  });

  test('kubectl get hpp -o wide shows Ready and its reason', async () => {
    const { kubectl } = await resolveClusterTools();
    const { stdout } = await promisify(execFile)(kubectl, ['--kubeconfig', e2eCluster().kubeconfigPath, 'get', 'hpp', f.pool, '-o', 'wide'], { timeout: 90_000 });
    const [header, row] = stdout.trim().split('\n').map((line) => line.trim().split(/\s{2,}/));
    expect(header).toEqual(['NAME', 'PAGE SIZE', 'REQUESTED', 'ALLOCATED', 'CLAIMED', 'FREE', 'DEGRADED', 'READY', 'REASON', 'AGE']);
    expect(row!.slice(0, 9)).toEqual([f.pool, '1Gi', '16', '16', '0', '16', 'False', 'True', 'Reserved']);
  });

  test('a VNF placed there waits Pending for the pages, and runs once the plugins register: no kubelet restart', async () => {
    await f.create(f.vnf('waits', { nodeSelector: { [SUITE_LABEL]: SUITE, 'kubernetes.io/hostname': UNREGISTERED } }));
    await f.waitForCondition('waits', 'Placed', 'True');
    const unschedulable = await waitUntil('the scheduler to refuse the pod', async () => {
      const pod = await f.client.get<V1Pod>(resources.pods, vnfPodName('waits'), { namespace: f.ns.name }).catch(() => undefined);
      const scheduled = pod?.status?.conditions?.find((c) => c.type === 'PodScheduled');
      return scheduled?.status === 'False' ? { pod: pod!, message: scheduled.message ?? '' } : undefined;
    });
    expect(unschedulable.pod.spec!.nodeName).toBeUndefined();
    expect(unschedulable.message).toContain(`Insufficient ${PAGES_1GI}`);

    f.agent.registerDevicePlugins(UNREGISTERED);
    await poolWith(f.pool, 'the pool to see the registered plugins', has('KubeletAdvertised', 'True', 'PagesAdvertised'));
    expect(await allocatablePages(UNREGISTERED)).toBe('8');
    const ready = await f.waitForCondition('waits', 'Ready', 'True', 'Running', 120_000);
    expect(ready.status!.placement!.node).toBe(UNREGISTERED);
  });
});
