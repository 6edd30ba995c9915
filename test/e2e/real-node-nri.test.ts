/**
 * The node agent's NRI plugin (node-agent/nri/) against the REAL containerd 2.4 of the real node
 * (test/cluster/real-node.ts, NRI on with its socket in the node's dir): the plugin runs in this
 * test's process with a test source ("the `vnf` container of pods labelled
 * nfv.dev/e2e-nri=hugepages gets 4Mi of 2Mi pages"), kubelet creates plain pods that request no
 * hugepages, and containerd's OCI spec of each container (`crictl inspect`,
 * info.runtimeSpec.linux.resources.hugepageLimits) shows what the plugin changed.
 *
 * The OCI spec is what this machine lets us observe: it is a hybrid cgroup host where kubelet runs
 * in v1 mode and the hugetlb controller exists only in the unified (v2) hierarchy, so kubelet sets
 * no hugetlb limit at all (containerd drops kubelet's limits: no v1 hugetlb hierarchy), and runc's
 * v1 manager cannot apply a limit in a hierarchy it does not use: it refuses to start the
 * container ("cannot set hugetlb limit: container could not join or create cgroup"), which is why
 * the agent's own source sets no limit on such hosts (runtimeSetsContainerHugetlb). On a pure v2
 * host kubelet's limits (0 for every size not requested) are in the spec too, runc writes the
 * spec's values to the container's hugetlb.<size>.max and the container runs; the expectations
 * below hold on both.
 *
 * Also: the plugin registers again when its connection is cut, and when containerd restarts; and
 * the agent process itself (node-agent/main.ts on this host, no VNF, no device plugins) registers
 * its plugin with the node's containerd, says so on /readyz and /metrics, and stops cleanly.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { CoreV1Api, type V1Container, type V1ContainerStatus, type V1Pod } from '@kubernetes/client-node';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { detectCgroupLayout } from '../../node-agent/host/cgroup-layout.js';
import { runtimeSetsContainerHugetlb, type NriContainerTarget } from '../../node-agent/nri/hugepage-adjustment.js';
import { NriPlugin } from '../../node-agent/nri/nri-plugin.js';
import { connectUnixSocket } from '../../node-agent/nri/plugin-session.js';
import { resources } from '../../src/controllers/resources.js';
import { KubeClient } from '../../src/runtime/kube-client.js';
import { CleanupSteps } from '../cluster/cleanup-steps.js';
import { installCrds } from '../cluster/install-crds.js';
import { createTestNamespace, e2eCluster, e2eKubeConfig, type TestNamespace } from '../cluster/e2e-env.js';
import { freeLoopbackPortsNamed } from '../cluster/loopback-ports.js';
import { ManagedProcess } from '../cluster/managed-process.js';
import { RealNode } from '../cluster/real-node.js';
import { repoRoot } from '../cluster/tools.js';
import { waitUntil } from '../cluster/wait-until.js';

const execFileAsync = promisify(execFile);
const IMAGE = 'nfv-operator/debian:bookworm';
const SELECT_LABEL = 'nfv.dev/e2e-nri';
const MI = 2 ** 20;
const LIMIT_2MB = 4 * MI;
const CGROUP_ROOT = '/sys/fs/cgroup';

const kc = e2eKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const logger = pino({ name: 'real-node-nri', level: process.env['NFV_CLUSTER_LOG_LEVEL'] ?? 'warn' }, pino.destination(2));

let node: RealNode;
let ns: TestNamespace;
let plugin: NriPlugin;
let agent: ManagedProcess | undefined;
let agentStateRoot: string | undefined;
/** The plugin's connections to containerd, newest last: the test cuts them. */
const connections: Socket[] = [];
/** What the source was asked, to tell the runtime called the plugin for every container. */
const asked: NriContainerTarget[] = [];

beforeAll(async () => {
  await execFileAsync('bash', [path.join(repoRoot(), 'hack', 'build-images.sh'), 'pause'], { timeout: 30 * 60_000 });
  const cluster = e2eCluster();
  node = await RealNode.start({ server: cluster.server, pkiDir: path.join(cluster.tmpDir, 'pki'), kubeConfig: kc, images: [IMAGE], logger });
  ns = await createTestNamespace('real-node-nri');
  plugin = new NriPlugin({
    socketPath: node.nriSocket,
    name: 'nfv-e2e',
    source: {
      hugepageLimits: (target) => {
        asked.push(target);
        const selected = target.podLabels[SELECT_LABEL] === 'hugepages' && target.containerName === 'vnf';
        return selected ? [{ pageSize: '2Mi', bytes: LIMIT_2MB }] : [];
      },
    },
    logger,
    // Reconnection is what is tested: no need to wait seconds between attempts.
    backoff: { baseMs: 100, maxMs: 1000, jitter: 0 },
    dial: async (socketPath) => {
      const socket = await connectUnixSocket(socketPath);
      connections.push(socket);
      return socket;
    },
  });
  plugin.start();
  await waitUntil('the NRI plugin to register with containerd', () => plugin.status().registered, { timeoutMs: 30_000 });
}, 10 * 60_000);

afterAll(async () => {
  const cleanup = new CleanupSteps();
  await cleanup.run('stop the NRI plugin', () => plugin?.stop());
  await cleanup.run('stop the agent process', () => agent?.stop(10_000));
  await cleanup.run('remove its state root', () => agentStateRoot && rm(agentStateRoot, { recursive: true, force: true }));
  await cleanup.run('stop the real node', () => node?.stop());
  await cleanup.run('delete the agent\'s NfvNode', async () => {
    const client = new KubeClient(kc, { userAgent: 'nfv-e2e-nri' });
    await client.delete(resources.nfvNodes, node.name).catch(() => undefined);
    client.close();
  });
  await cleanup.run('delete the namespace', () => ns?.delete({ wait: false }));
  cleanup.throwIfFailed();
}, 5 * 60_000);

describe('the node agent\'s NRI plugin on the real containerd', () => {
  test('registers with containerd 2.4, which names itself when it configures the plugin', () => {
    expect(plugin.status()).toMatchObject({ registered: true, registrations: 1, runtime: { name: 'containerd', version: expect.stringMatching(/^v?2\.4\./) } });
  });

  test('sets the selected container\'s 2MB limit to exactly 4Mi at creation; every other container keeps kubelet\'s limits', async () => {
    const selected = await createPod('selected', { [SELECT_LABEL]: 'hugepages' }, ['vnf', 'sidecar']);
    const unlabelled = await createPod('unlabelled', {}, ['vnf']);

    const kubelets = await hugepageLimitsOf(selected, 'sidecar');
    expect(byPageSize(await hugepageLimitsOf(selected, 'vnf'))).toEqual(byPageSize([...kubelets.filter((l) => l.pageSize !== '2MB'), { pageSize: '2MB', limit: LIMIT_2MB }]));
    expect(byPageSize(await hugepageLimitsOf(unlabelled, 'vnf'))).toEqual(byPageSize(kubelets));
    // The runtime asked about every container (the pause sandboxes are no containers to NRI).
    const podsAsked = asked.map((t) => `${t.podName}/${t.containerName}`);
    expect(podsAsked).toEqual(expect.arrayContaining(['selected/vnf', 'selected/sidecar', 'unlabelled/vnf']));
    expect(sample('nfv_agent_nri_adjusted_containers_total')).toBeGreaterThanOrEqual(1);

    // What runc does with the limit.
    const started = await waitForContainers(unlabelled.metadata!.name!, (statuses) => statuses.every((c) => c.state?.running));
    expect(started.status?.containerStatuses?.map((c) => c.restartCount)).toEqual([0]);
    if (runtimeSetsContainerHugetlb(await detectCgroupLayout(CGROUP_ROOT), CGROUP_ROOT)) {
      await waitForContainers('selected', (statuses) => statuses.every((c) => c.state?.running));
    } else {
      const refused = await waitForContainers('selected', (statuses) => Boolean(statuses.find((c) => c.name === 'vnf')?.lastState?.terminated));
      expect(refused.status?.containerStatuses?.find((c) => c.name === 'vnf')?.lastState?.terminated?.message).toContain('cannot set hugetlb limit');
    }
  }, 180_000);

  test('registers again when its connection is cut, and adjusts the containers created after', async () => {
    connections.at(-1)!.destroy();
    await waitUntil('the plugin to notice', () => !plugin.status().registered || plugin.status().registrations > 1, { timeoutMs: 10_000 });
    await waitUntil('the plugin to register again', () => plugin.status().registered && plugin.status().registrations === 2, { timeoutMs: 30_000 });
    const pod = await createPod('after-reconnect', { [SELECT_LABEL]: 'hugepages' }, ['vnf']);
    expect(await hugepageLimitsOf(pod, 'vnf')).toContainEqual({ pageSize: '2MB', limit: LIMIT_2MB });
  }, 180_000);

  test('registers again when containerd restarts (a runtime upgrade), while the pods keep running', async () => {
    const before = plugin.status().registrations;
    await node.restartContainerd();
    await waitUntil('the plugin to register with the new containerd', () => plugin.status().registered && plugin.status().registrations === before + 1, { timeoutMs: 60_000 });
    const pod = await createPod('after-restart', { [SELECT_LABEL]: 'hugepages' }, ['vnf']);
    expect(await hugepageLimitsOf(pod, 'vnf')).toContainEqual({ pageSize: '2MB', limit: LIMIT_2MB });
    const survivor = await core.readNamespacedPod({ name: 'unlabelled', namespace: ns.name });
    expect(survivor.status?.containerStatuses?.map((c) => [c.name, c.restartCount, Boolean(c.state?.running)])).toEqual([['vnf', 0, true]]);
  }, 240_000);
});

describe('the node agent process', () => {
  test('registers its NRI plugin once its caches are loaded, reports it on /readyz and /metrics, and stops cleanly', async () => {
    const client = new KubeClient(kc, { userAgent: 'nfv-e2e-nri' });
    await installCrds(client).finally(() => client.close());
    const { metrics } = await freeLoopbackPortsNamed(['metrics'] as const);
    agentStateRoot = await mkdtemp(path.join(tmpdir(), 'nfv-e2e-nri-agent-'));
    agent = ManagedProcess.start({
      name: 'node-agent',
      command: process.execPath,
      args: ['--import', 'tsx', path.join(repoRoot(), 'node-agent', 'main.ts')],
      logFile: path.join(agentStateRoot, 'agent.log'),
      env: {
        ...process.env,
        NODE_NAME: node.name,
        KUBECONFIG: e2eCluster().kubeconfigPath,
        NFV_STATE_ROOT: agentStateRoot,
        NFV_DEVICE_PLUGIN_DIR: 'none',
        NFV_NRI_SOCKET: node.nriSocket,
        NFV_METRICS_ADDRESS: `127.0.0.1:${metrics}`,
      },
    });
    const base = `http://127.0.0.1:${metrics}`;
    let lastReadiness = '(not asked)';
    const ready = await waitUntil(
      'the agent to be ready',
      async () => {
        if (agent!.exitStatus) throw agent!.exitedError('before it was ready');
        const response = await fetch(`${base}/readyz`).catch(() => undefined);
        lastReadiness = response ? await response.text() : '(no answer)';
        return response?.status === 200 ? lastReadiness : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    ).catch((err: Error) => Promise.reject(new Error(`${err.message}; /readyz said: ${lastReadiness}; agent log:\n${agent!.logTail(40)}`)));
    expect(ready).toContain('node agent running');
    const exposition = await (await fetch(`${base}/metrics`)).text();
    expect(exposition).toContain(`nfv_agent_nri_registered{socket="${node.nriSocket}"} 1`);
    expect(agent.logTail(200)).toContain('NRI plugin registered');

    await agent.stop(10_000);
    expect(agent.exitStatus).toEqual({ code: 0, signal: null });
  }, 120_000);
});

/**
 * A pod on the real node whose containers sleep; it requests no hugepages. Resolves once the
 * runtime has created every container (whether runc then starts it is another matter).
 */
async function createPod(name: string, labels: Record<string, string>, containers: string[]): Promise<V1Pod> {
  const sleeper = (container: string): V1Container => ({
    name: container,
    image: IMAGE,
    imagePullPolicy: 'Never',
    command: ['sleep', 'infinity'],
    resources: { limits: { cpu: '50m', memory: '32Mi' } },
  });
  await core.createNamespacedPod({
    namespace: ns.name,
    body: {
      metadata: { name, namespace: ns.name, labels },
      spec: {
        nodeName: node.name,
        hostNetwork: true,
        tolerations: [node.toleration],
        terminationGracePeriodSeconds: 1,
        containers: containers.map(sleeper),
      },
    },
  });
  return waitForContainers(name, (statuses) => statuses.length === containers.length && statuses.every((c) => c.containerID));
}

async function waitForContainers(name: string, done: (statuses: V1ContainerStatus[]) => boolean): Promise<V1Pod> {
  let last: V1Pod | undefined;
  try {
    return await waitUntil(
      `the containers of pod ${name}`,
      async () => {
        last = await core.readNamespacedPod({ name, namespace: ns.name });
        return done(last.status?.containerStatuses ?? []) ? last : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 250 },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last status: ${JSON.stringify(last?.status)}`);
  }
}

/**
 * The hugetlb limits of the OCI spec containerd gave runc for `container` of `pod`. A container
 * that runc refuses is created again by kubelet, which removes the one before: the id is read again
 * until one is there to inspect.
 */
async function hugepageLimitsOf(pod: V1Pod, container: string): Promise<Array<{ pageSize: string; limit: number }>> {
  const name = pod.metadata!.name!;
  const inspected = await waitUntil(
    `container ${container} of pod ${name} to inspect`,
    async () => {
      const current = await core.readNamespacedPod({ name, namespace: ns.name });
      const id = current.status?.containerStatuses?.find((c) => c.name === container)?.containerID?.replace(/^containerd:\/\//, '');
      return id ? node.inspectContainer(id).catch(() => undefined) : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 250 },
  );
  return inspected.info?.runtimeSpec?.linux?.resources?.hugepageLimits ?? [];
}

function byPageSize(limits: Array<{ pageSize: string; limit: number }>): Array<{ pageSize: string; limit: number }> {
  return [...limits].sort((a, b) => a.pageSize.localeCompare(b.pageSize));
}

function sample(name: string): number | undefined {
  const family = plugin.families().find((f) => f.name === name);
  return family?.type === 'histogram' ? undefined : family?.samples[0]?.value;
}
