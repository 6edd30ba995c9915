/**
 * Proves the shared e2e cluster is a real control plane: the pinned kube-apiserver answers, the
 * controller-manager turns a Deployment into a pod and garbage-collects it, the scheduler binds it,
 * KWOK runs it, the namespace controller empties a deleted namespace, and everything keeps
 * working across an API server restart.
 */
import { randomBytes } from 'node:crypto';
import { AppsV1Api, CoreV1Api, VersionApi, type V1Deployment, type V1Pod } from '@kubernetes/client-node';
import { createTestNamespace, e2eCluster, e2eKubeConfig, restartE2eApiServer, type TestNamespace } from '../cluster/e2e-env.js';
import { createKwokNodes, deleteKwokNodes } from '../cluster/kwok-nodes.js';
import { readPinnedVersions } from '../cluster/tools.js';
import { waitUntil } from '../cluster/wait-until.js';

const kc = e2eKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const apps = kc.makeApiClient(AppsV1Api);

/** A node of this file only, so other files' nodes (taints, labels) cannot change the outcome. */
const nodeName = `cluster-test-${randomBytes(3).toString('hex')}`;
const NODE_LABEL = 'nfv.dev/e2e-cluster-test';

/** The project's testTimeout is not applied per project by Jest 30, so each test says its own. */
const TIMEOUT_MS = 120_000;

let ns: TestNamespace;

beforeAll(async () => {
  ns = await createTestNamespace('cluster');
  await createKwokNodes(kc, [{ name: nodeName, labels: { [NODE_LABEL]: nodeName } }]);
}, TIMEOUT_MS);

afterAll(async () => {
  await ns?.delete();
  await deleteKwokNodes(kc, [nodeName]);
}, TIMEOUT_MS);

function deployment(name: string): V1Deployment {
  const labels = { app: name };
  return {
    metadata: { name, labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          nodeSelector: { [NODE_LABEL]: nodeName },
          // Never pulled: KWOK plays the kubelet.
          containers: [{ name: 'main', image: 'registry.k8s.io/pause:3.10' }],
        },
      },
    },
  };
}

async function podsOf(app: string): Promise<V1Pod[]> {
  return (await core.listNamespacedPod({ namespace: ns.name, labelSelector: `app=${app}` })).items;
}

function isReady(pod: V1Pod): boolean {
  return pod.status?.phase === 'Running' && (pod.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

/** Creates the Deployment and returns its pod once scheduled onto our node and Running/Ready. */
async function runDeployment(name: string, timeoutMs = 60_000): Promise<V1Pod> {
  await apps.createNamespacedDeployment({ namespace: ns.name, body: deployment(name) });
  try {
    return await waitUntil(
      `a Running pod of deployment ${ns.name}/${name} on node ${nodeName}`,
      async () => (await podsOf(name)).find((pod) => pod.spec?.nodeName === nodeName && isReady(pod)),
      { timeoutMs, intervalMs: 200 },
    );
  } catch (error) {
    // Name the component that stalled: no ReplicaSet is the controller-manager, an unbound pod
    // the scheduler, a bound pod that never runs KWOK.
    const replicaSets = await apps.listNamespacedReplicaSet({ namespace: ns.name, labelSelector: `app=${name}` });
    const pods = (await podsOf(name)).map((pod) => `${pod.metadata?.name} node=${pod.spec?.nodeName ?? '-'} phase=${pod.status?.phase} ready=${isReady(pod)}`);
    throw new Error(`${(error as Error).message}; ReplicaSets: ${replicaSets.items.length}; pods: ${pods.join(', ') || 'none'}`, { cause: error });
  }
}

describe('the local e2e cluster', () => {
  it('serves the pinned Kubernetes version', async () => {
    const version = await kc.makeApiClient(VersionApi).getCode();
    expect(version.gitVersion).toBe('v1.37.2');
    expect(version.gitVersion).toBe((await readPinnedVersions()).kubernetes);
    expect(e2eCluster().kubernetesVersion).toBe(version.gitVersion);
  }, TIMEOUT_MS);

  it('has Ready KWOK nodes, the shared ones and this file’s', async () => {
    for (const name of [...e2eCluster().nodeNames, nodeName]) {
      const node = await core.readNode({ name });
      expect(node.metadata?.annotations?.['kwok.x-k8s.io/node']).toBe('fake');
      expect(node.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
      expect(node.status?.allocatable?.['hugepages-1Gi']).toBe('16Gi');
    }
  }, TIMEOUT_MS);

  it('schedules a Deployment’s pod onto the KWOK node, runs it, and garbage-collects it', async () => {
    const pod = await runDeployment('web');
    // Created by the ReplicaSet controller, which the Deployment controller created.
    const owner = pod.metadata?.ownerReferences?.[0];
    expect(owner?.kind).toBe('ReplicaSet');
    expect(owner?.name).toMatch(/^web-/);
    expect(pod.status?.podIP).toMatch(/^10\.244\./);

    await apps.deleteNamespacedDeployment({ name: 'web', namespace: ns.name });
    await waitUntil('the garbage collector to remove the pods of deployment web', async () => (await podsOf('web')).length === 0, {
      timeoutMs: 60_000,
      intervalMs: 200,
    });
    const replicaSets = await apps.listNamespacedReplicaSet({ namespace: ns.name, labelSelector: 'app=web' });
    expect(replicaSets.items).toHaveLength(0);
  }, TIMEOUT_MS);

  it('deletes a namespace with its contents', async () => {
    const doomed = await createTestNamespace('cluster-doomed');
    await core.createNamespacedConfigMap({ namespace: doomed.name, body: { metadata: { name: 'data' }, data: { k: 'v' } } });
    await doomed.delete({ wait: true });
    await expect(core.readNamespace({ name: doomed.name })).rejects.toMatchObject({ code: 404 });
  }, TIMEOUT_MS);

  it('keeps scheduling and running pods after a kube-apiserver restart', async () => {
    await restartE2eApiServer();
    const version = await kc.makeApiClient(VersionApi).getCode();
    expect(version.gitVersion).toBe(e2eCluster().kubernetesVersion);
    // Controller-manager, scheduler and KWOK must all have reconnected for this pod to run. Their
    // watches come back with client-go's backoff; on a loaded 2-core machine that once took
    // longer than a minute, so this one waits up to two.
    const pod = await runDeployment('after-restart', 120_000);
    expect(pod.spec?.nodeName).toBe(nodeName);
  }, TIMEOUT_MS + 60_000);
});
