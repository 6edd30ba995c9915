/**
 * A VNF's devices and hugepages through a REAL kubelet (test/cluster/real-node.ts: kubelet v1.37,
 * containerd 2.4, runc): the real controller places a VNF on `nfv-real-0`, the real node agent
 * (a host process, on a built sysfs/dev tree with one fake NIC in IOMMU group 40) binds the NIC to
 * vfio-pci and serves `nfv.dev/vfio-group-40` to kubelet as a device plugin, and kubelet and
 * containerd give the container exactly those device nodes.
 *
 * The group nodes carry the numbers of /dev/kvm (group) and /dev/loop-control (container), which
 * no default device rule of containerd or runc allows: a successful open() in the container
 * proves the rule came from the device plugin's answer. The tree's `dev/vfio` is bind-mounted at
 * the host's /dev/vfio (this host has no vfio module), because the plugin hands kubelet the host's
 * paths, as it must in production.
 *
 * The HugepagePool is created after kubelet started, and kubelet is never restarted: the pod
 * requests its pages as `nfv.dev/hugepages-2Mi`, which the agent's device plugin lists from the
 * pool's reservation at runtime (kubelet reads its native `hugepages-2Mi` capacity only once, at
 * its start). The agent's reservation is on the tree's counters only, so this file never sets the
 * machine's nr_hugepages to a value it read earlier and needs not wait for the machine-wide
 * hugepage lock that benchmarks hold for minutes (Part B, the DaemonSet, proves real reservation);
 * the real 2Mi pages the container touches are added to the machine (and exactly those taken back).
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { CoreV1Api, type V1Node, type V1Pod } from '@kubernetes/client-node';
import { existsSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { pino } from 'pino';
import { API_VERSION, NFV_NODE_LABEL, VNF_NAME_LABEL } from '../../src/api/group.js';
import type { NfvNode } from '../../src/api/nfv-node.js';
import type { VirtualNetworkFunction } from '../../src/api/virtual-network-function.js';
import { resources } from '../../src/controllers/resources.js';
import { KubeClient } from '../../src/runtime/kube-client.js';
import { coreResources } from '../../src/runtime/kube-object.js';
import { detectCgroupLayout, findPodCgroup } from '../../node-agent/host/cgroup-layout.js';
import { mountAt, parseMountInfo } from '../../node-agent/host/mounts.js';
import { CleanupSteps } from '../cluster/cleanup-steps.js';
import { createTestNamespace, e2eCluster, e2eKubeConfig, type TestNamespace } from '../cluster/e2e-env.js';
import { installCrds } from '../cluster/install-crds.js';
import { startOperator, SUITE_LABEL, waitForVnfCondition, type OperatorReplica } from '../cluster/nfv-fixture.js';
import { AgentProcess, NfvHostTree, TREE_NIC_POOLS, type TreeNic } from '../cluster/real-agent-fixture.js';
import { RealNode, REAL_NODE_TAINT } from '../cluster/real-node.js';
import { applyNodeHugepagePool, charDeviceNumbers, HostVfioDir, mknod, VfioGroupNodes, type DeviceNumbers } from '../cluster/real-node-fixture.js';
import { waitUntil } from '../cluster/wait-until.js';
import { ExtraHugepages, mountPointsUnder } from '../host/helpers/host-fixtures.js';

const SUITE = 'real-node-vnf';
const IMAGE = 'nfv-operator/debian:bookworm';
const MiB = 2 ** 20;
const VNF_PAGES = 4;
const POOL_PAGES = 4;
const NIC: TreeNic = { address: '0000:3b:00.0', numaNode: 0, iommuGroup: 40, driver: 'ice' };
const GROUP_RESOURCE = `nfv.dev/vfio-group-${NIC.iommuGroup}`;
const PAGES_RESOURCE = 'nfv.dev/hugepages-2Mi';
const GROUP_NODE = `/dev/vfio/${NIC.iommuGroup}`;
/** Device numbers no default rule allows (see the file comment). */
const GROUP_NUMBERS: DeviceNumbers = charDeviceNumbers('/dev/kvm');
const CONTAINER_NUMBERS: DeviceNumbers = charDeviceNumbers('/dev/loop-control');

/** Opens a device read-write and prints `open <path>: ok` or the error. */
const PROBE = `probe() { if out=$(perl -e 'sysopen(my $f, $ARGV[0], 2) or die "$!\\n"' "$1" 2>&1); then echo "open $1: ok"; else echo "open $1: $out"; fi; }`;
/** What the VNF's container runs: its devices, then its hugepages within and beyond its allocation. */
const VNF_SCRIPT = [
  PROBE,
  `for n in /dev/vfio/vfio ${GROUP_NODE}; do echo "node $n: $(stat -c '%F %t:%T' $n 2>&1)"; probe $n; done`,
  `if out=$(fallocate -l ${VNF_PAGES * 2}M "$NFV_HUGEPAGE_DIR/within" 2>&1); then echo "within: ok"; else echo "within: $out"; fi`,
  `if out=$(fallocate -l 2M "$NFV_HUGEPAGE_DIR/beyond" 2>&1); then echo "beyond: ok"; else echo "beyond: $out"; fi`,
  'echo probed',
  'exec sleep infinity',
].join('\n');

const kc = e2eKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const client = new KubeClient(kc, { userAgent: 'nfv-e2e-real-node-vnf' });
const logger = pino({ name: SUITE, level: process.env['NFV_CLUSTER_LOG_LEVEL'] ?? 'warn' }, pino.destination(2));

let ns: TestNamespace;
let node: RealNode;
let tree: NfvHostTree;
let hostVfio: HostVfioDir | undefined;
let groupNodes: VfioGroupNodes | undefined;
let agent: AgentProcess | undefined;
let operator: OperatorReplica | undefined;
let poolName: string;
let kubeletPid: number | undefined;
const hugepages = new ExtraHugepages();

beforeAll(async () => {
  await installCrds(client);
  ns = await createTestNamespace(SUITE, kc);
  poolName = `${ns.name}-2mi`;

  // One NUMA node of 2 CPUs like this machine, so the masks the pod mounts over sysfs exist here.
  tree = await NfvHostTree.build('nfv-e2e-real-node', { numaNodes: 1, nics: [NIC], vfioPci: false, realHugepages: false });
  groupNodes = new VfioGroupNodes(tree, NIC, GROUP_NUMBERS);
  hostVfio = await HostVfioDir.mount(tree);

  hugepages.ensureFree(VNF_PAGES);
  const cluster = e2eCluster();
  node = await RealNode.start({ server: cluster.server, pkiDir: posix.join(cluster.tmpDir, 'pki'), kubeConfig: kc, images: [IMAGE], logger });
  kubeletPid = node.kubeletPid;
  await client.mergePatch(coreResources.nodes, node.name, { metadata: { labels: { [SUITE_LABEL]: SUITE, [NFV_NODE_LABEL]: 'true' } } });

  await applyNodeHugepagePool(client, poolName, node.name, POOL_PAGES);
  agent = AgentProcess.start({
    nodeName: node.name,
    kubeconfigPath: cluster.kubeconfigPath,
    stateRoot: tree.stateRoot,
    roots: tree.roots,
    nicPools: TREE_NIC_POOLS,
    logFile: tree.path('agent.log'),
    devicePluginDir: node.devicePluginDir,
    nriSocket: node.nriSocket,
    metricsAddress: '0',
  });
  operator = startOperator(kc, `${SUITE}-operator`, { stateRoot: tree.stateRoot });
}, 10 * 60_000);

afterAll(async () => {
  const cleanup = new CleanupSteps();
  const step = (what: string, action: () => unknown) => cleanup.run(what, action);
  await step('release VNFs left behind', async () => {
    if (!ns) return;
    const { items } = await client.list<VirtualNetworkFunction>(resources.vnfs, { namespace: ns.name });
    for (const vnf of items) await client.delete(resources.vnfs, vnf.metadata.name!, { namespace: ns.name });
    await waitUntil('VNFs to be torn down', async () => (await client.list(resources.vnfs, { namespace: ns.name })).items.length === 0, { timeoutMs: 60_000 });
  });
  await step('stop the agent', async () => {
    if (!agent) return;
    // SIGTERM: the agent stops its device plugins and removes their sockets from kubelet's directory.
    agent.kill('SIGTERM');
    const timer = setTimeout(() => agent?.kill('SIGKILL'), 10_000);
    await agent.exited;
    clearTimeout(timer);
  });
  await step('stop the operator', () => operator?.stop());
  await step('stop the real node', () => node?.stop());
  groupNodes?.stop();
  await step('unmount /dev/vfio', () => hostVfio?.unmount());
  // The agent's log is in the tree.
  const agentLog = agent ? `\nagent log:\n${agent.logTail()}` : '';
  await step('delete the host tree', () => tree?.cleanup());
  await step('delete the pool', () => poolName && client.delete(resources.hugepagePools, poolName).catch(() => undefined));
  await step('delete the NfvNode', () => node && client.delete(resources.nfvNodes, node.name).catch(() => undefined));
  await step('give back the hugepages added', () => hugepages.cleanup());
  await step('delete the namespace', () => ns?.delete({ wait: false }));
  client.close();
  cleanup.throwIfFailed(agentLog);
}, 5 * 60_000);

const getVnf = (name: string) => client.get<VirtualNetworkFunction>(resources.vnfs, name, { namespace: ns.name });

/** Waits for a VNF condition; on timeout the error carries the VNF's conditions and the agent's log. */
async function waitForCondition(name: string, type: string, status: string, reason?: string, timeoutMs?: number): Promise<VirtualNetworkFunction> {
  try {
    return await waitForVnfCondition(getVnf, name, type, status, reason, timeoutMs);
  } catch (err) {
    const conditions = await getVnf(name).then((vnf) => JSON.stringify(vnf.status?.conditions), (e: Error) => e.message);
    throw new Error(`${(err as Error).message}
conditions: ${conditions}
agent log:
${agent?.logTail(15)}`);
  }
}
const readNode = (): Promise<V1Node> => core.readNode({ name: node.name });

function vnfManifest(name: string, script: string): VirtualNetworkFunction {
  return {
    apiVersion: API_VERSION,
    kind: 'VirtualNetworkFunction',
    metadata: { name, namespace: ns.name },
    spec: {
      image: IMAGE,
      command: ['sh', '-c', script],
      cpus: { count: 1, fullCores: false },
      hugepages: { pageSize: '2Mi', amount: `${VNF_PAGES * 2}Mi`, pool: poolName },
      interfaces: [{ name: 'uplink', device: { pool: 'fast' }, driver: 'vfio-pci' }],
      links: [],
      nodeSelector: { [SUITE_LABEL]: SUITE },
      tolerations: [{ ...REAL_NODE_TAINT, operator: 'Equal' }],
    },
  };
}

async function vnfPod(name: string): Promise<V1Pod | undefined> {
  const { items } = await core.listNamespacedPod({ namespace: ns.name, labelSelector: `${VNF_NAME_LABEL}=${name}` });
  return items[0];
}

async function podLog(name: string, until: string): Promise<string> {
  return waitUntil(`pod ${name} to log "${until}"`, async () => {
    const log = await core.readNamespacedPodLog({ name, namespace: ns.name }).catch(() => '');
    return log.includes(until) ? log : undefined;
  });
}

/** `<label>: <text>` lines of a log, as a map. */
function logLines(log: string): Map<string, string> {
  return new Map(log.split('\n').filter((line) => line.includes(': ')).map((line) => [line.slice(0, line.indexOf(': ')), line.slice(line.indexOf(': ') + 2)]));
}

const hex = (numbers: DeviceNumbers) => `${numbers.major.toString(16)}:${numbers.minor.toString(16)}`;

describe('a VNF on the real kubelet', () => {
  /** When each step of the admission happened (ms since the epoch), for the order. */
  const timeline: Array<[string, number]> = [];
  const mark = (event: string) => timeline.push([event, Date.now()]);
  let pod: V1Pod;
  let vnf: VirtualNetworkFunction;

  test('kubelet lists the agent\'s device plugin, Unhealthy while the NIC is on its kernel driver', async () => {
    const nfvNode = await waitUntil('the agent to publish its NfvNode', async () => {
      const current = await client.get<NfvNode>(resources.nfvNodes, node.name).catch(() => undefined);
      return current?.status?.inventory && current.status.hugepagePools?.length ? current : undefined;
    }, { timeoutMs: 60_000 });
    expect(nfvNode.status!.inventory!.nics).toEqual([expect.objectContaining({ pciAddress: NIC.address, iommuGroup: NIC.iommuGroup, driver: NIC.driver, pool: 'fast' })]);
    const status = await waitUntil('kubelet to list the agent\'s VFIO group', async () => {
      const { status } = await readNode();
      return status?.capacity?.[GROUP_RESOURCE] === '1' ? status : undefined;
    }, { timeoutMs: 60_000 });
    expect(status.allocatable?.[GROUP_RESOURCE]).toBe('0');
    // The pool was reserved after kubelet started, and kubelet lists its pages all the same.
    const pages = await waitUntil('kubelet to list the pool\'s pages', async () => {
      const { status } = await readNode();
      return status?.allocatable?.[PAGES_RESOURCE] === String(POOL_PAGES) ? status : undefined;
    }, { timeoutMs: 60_000 });
    expect(pages.capacity?.[PAGES_RESOURCE]).toBe(String(POOL_PAGES));
    expect(node.kubeletPid).toBe(kubeletPid);
  }, 120_000);

  test('the pod stays Pending (Insufficient vfio-group) until the agent bound the NIC, then runs', async () => {
    // vfio-pci is not loaded yet: the agent cannot bind the NIC, so the plugin stays Unhealthy.
    await client.create(resources.vnfs, vnfManifest('fwd', VNF_SCRIPT));
    await waitForCondition('fwd', 'NodePrepared', 'False', 'DriverNotLoaded');
    const pending = await waitUntil('the pod to be unschedulable for want of the group', async () => {
      const current = await vnfPod('fwd');
      const scheduled = current?.status?.conditions?.find((c) => c.type === 'PodScheduled');
      return scheduled?.status === 'False' && scheduled.message?.includes(`Insufficient ${GROUP_RESOURCE}`) ? current : undefined;
    });
    mark('pod unschedulable');
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect((await vnfPod('fwd'))?.spec?.nodeName).toBeUndefined();
    expect((await readNode()).status?.allocatable?.[GROUP_RESOURCE]).toBe('0');
    expect(pending.spec!.containers[0]!.resources!.limits).toEqual({ [GROUP_RESOURCE]: '1', [PAGES_RESOURCE]: String(VNF_PAGES) });

    // modprobe vfio-pci: the driver and the VFIO container node appear.
    mark('vfio-pci loaded');
    await mknod(tree.path('dev/vfio/vfio'), CONTAINER_NUMBERS);
    tree.kernel.addDriver('vfio-pci');
    await waitUntil('the plugin to report the group Healthy to kubelet', async () => (await readNode()).status?.allocatable?.[GROUP_RESOURCE] === '1', { timeoutMs: 30_000, intervalMs: 100 });
    mark('group allocatable');
    pod = await waitUntil('the VNF pod to run', async () => {
      const current = await vnfPod('fwd');
      return current?.status?.containerStatuses?.[0]?.state?.running ? current : undefined;
    }, { timeoutMs: 90_000 });
    mark('pod running');
    vnf = await waitForCondition('fwd', 'Ready', 'True', 'Running');

    const made = groupNodes!.events.find((e) => e.event === 'made')!.at;
    expect(tree.kernel.driverOf(NIC.address)).toBe('vfio-pci');
    const at = Object.fromEntries(timeline);
    const scheduledAt = Date.parse(pod.status!.conditions!.find((c) => c.type === 'PodScheduled')!.lastTransitionTime as unknown as string);
    console.log(`admission: ${timeline.map(([event, time]) => `${event} +${time - timeline[0]![1]}ms`).join(', ')}; group node made +${made - timeline[0]![1]}ms`);
    expect(made).toBeGreaterThanOrEqual(at['vfio-pci loaded']!);
    // The API server keeps whole seconds.
    expect(scheduledAt).toBeGreaterThanOrEqual(Math.floor(made / 1000) * 1000);
    expect(pod.spec!.nodeName).toBe(node.name);
  }, 180_000);

  test('the container has the plugin\'s device nodes and may open them; a hostPath of the same node gets EPERM', async () => {
    const lines = logLines(await podLog(pod.metadata!.name!, 'probed'));
    expect(lines.get('node /dev/vfio/vfio')).toBe(`character special file ${hex(CONTAINER_NUMBERS)}`);
    expect(lines.get(`node ${GROUP_NODE}`)).toBe(`character special file ${hex(GROUP_NUMBERS)}`);
    expect(lines.get('open /dev/vfio/vfio')).toBe('ok');
    expect(lines.get(`open ${GROUP_NODE}`)).toBe('ok');

    // containerd put exactly what the plugin answered into the runtime spec: nodes and rules.
    const containerId = pod.status!.containerStatuses![0]!.containerID!.replace(/^containerd:\/\//, '');
    const spec = (await node.inspectContainer(containerId)).info?.runtimeSpec;
    expect(spec?.linux?.devices).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: '/dev/vfio/vfio', type: 'c', ...CONTAINER_NUMBERS }),
        expect.objectContaining({ path: GROUP_NODE, type: 'c', ...GROUP_NUMBERS }),
      ]),
    );
    expect(spec?.linux?.resources?.devices).toEqual(expect.arrayContaining([expect.objectContaining({ allow: true, type: 'c', ...GROUP_NUMBERS, access: 'rw' })]));

    await core.createNamespacedPod({
      namespace: ns.name,
      body: {
        metadata: { name: 'hostpath-control' },
        spec: {
          nodeName: node.name,
          tolerations: [node.toleration],
          restartPolicy: 'Never',
          terminationGracePeriodSeconds: 1,
          volumes: [{ name: 'group', hostPath: { path: GROUP_NODE, type: 'CharDevice' } }],
          containers: [{ name: 'probe', image: IMAGE, imagePullPolicy: 'Never', command: ['sh', '-c', `${PROBE}\nprobe ${GROUP_NODE}\necho probed`], volumeMounts: [{ name: 'group', mountPath: GROUP_NODE }] }],
        },
      },
    });
    const control = logLines(await podLog('hostpath-control', 'probed'));
    expect(control.get(`open ${GROUP_NODE}`)).toBe('Operation not permitted');
    await core.deleteNamespacedPod({ name: 'hostpath-control', namespace: ns.name, gracePeriodSeconds: 0 });
  }, 120_000);

  test('the container\'s hugepages: pool pages to the scheduler, limited in the pod cgroup, and no more than its allocation', async () => {
    expect(pod.spec!.containers[0]!.resources!.requests).toMatchObject({ [PAGES_RESOURCE]: String(VNF_PAGES) });
    expect(pod.spec!.containers[0]!.resources!.requests).not.toHaveProperty('hugepages-2Mi');
    expect((await readNode()).status?.allocatable?.[PAGES_RESOURCE]).toBe(String(POOL_PAGES));
    expect(node.kubeletPid).toBe(kubeletPid);
    const hugetlb = (await detectCgroupLayout('/sys/fs/cgroup')).hugetlb!;
    const podCgroup = await findPodCgroup(hugetlb.path, pod.metadata!.uid!);
    expect(podCgroup).toBeDefined();
    const limitFile = hugetlb.version === 2 ? 'hugetlb.2MB.max' : 'hugetlb.2MB.limit_in_bytes';
    expect(readFileSync(posix.join(podCgroup!, limitFile), 'utf8').trim()).toBe(String(VNF_PAGES * 2 * MiB));

    // The agent's hugetlbfs mount with size= the allocation is what the container sees.
    const hugepageDir = vnf.status!.placement!.hostPaths.hugepages;
    expect(mountPointsUnder(tree.stateRoot)).toEqual([hugepageDir]);
    expect(mountAt(parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8')), hugepageDir)).toMatchObject({
      fsType: 'hugetlbfs',
      superOptions: expect.arrayContaining(['pagesize=2M', `size=${VNF_PAGES * 2 * MiB}`]),
    });
    const lines = logLines(await podLog(pod.metadata!.name!, 'probed'));
    expect(lines.get('within')).toBe('ok');
    expect(lines.get('beyond')).toMatch(/No space left on device/);
  });

  test('deleting the VNF removes the pod, restores the driver, unmounts and releases everything', async () => {
    const uid = pod.metadata!.uid!;
    await client.delete(resources.vnfs, 'fwd', { namespace: ns.name });
    await waitUntil('VNF fwd to be gone', () => getVnf('fwd').then(() => false, (err: { code?: number }) => err.code === 404), { timeoutMs: 90_000 });
    await expect(core.readNamespacedPod({ name: pod.metadata!.name!, namespace: ns.name })).rejects.toMatchObject({ code: 404 });
    expect(tree.kernel.driverOf(NIC.address)).toBe(NIC.driver);
    expect(tree.kernel.overrideOf(NIC.address)).toBe('(null)');
    await waitUntil('the plugin to report the group Unhealthy', async () => (await readNode()).status?.allocatable?.[GROUP_RESOURCE] === '0', { timeoutMs: 30_000 });
    expect(groupNodes!.events.map((e) => e.event)).toEqual(['made', 'removed']);
    expect(mountPointsUnder(tree.stateRoot)).toEqual([]);
    expect(existsSync(vnf.status!.placement!.hostPaths.root)).toBe(false);
    expect((await client.get<NfvNode>(resources.nfvNodes, node.name)).status!.allocations ?? []).toEqual([]);
    const layout = await detectCgroupLayout('/sys/fs/cgroup');
    for (const hierarchy of [layout.cpuset!, layout.hugetlb!]) expect(await findPodCgroup(hierarchy.path, uid)).toBeUndefined();
  }, 120_000);
});
