/**
 * The real node agent, the real controller, the real API server and the real kernel, on one KWOK
 * node: the agent publishes its NfvNode from a built sysfs tree and reserves real 2Mi hugepages
 * for a HugepagePool; a VNF placed there by the controller is prepared for real (hugetlbfs mount,
 * sysfs masks, driver binding on the emulated PCI tree, cgroup limits on the pod cgroups this test
 * makes as kubelet would) before it becomes Ready; deletion undoes all of it before the VNF goes;
 * and an agent SIGKILLed in the middle of a driver rebind, or while its VNF is being deleted, is
 * replaced by a new one that converges without leaking anything.
 *
 * Set NFV_E2E_AGENT_LOGS to a directory to keep the agents' logs (debug level) after the run.
 */
import { renderMetricFamilies } from '../../src/metrics/prometheus-text.js';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import pino from 'pino';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { posix } from 'node:path';
import { API_VERSION, NFV_NODE_LABEL, VNF_FINALIZER, VNF_NAME_LABEL } from '../../src/api/group.js';
import { READY_FILE } from '../../src/api/host-paths.js';
import type { HugepagePool } from '../../src/api/hugepage-pool.js';
import type { NfvNode } from '../../src/api/nfv-node.js';
import type { VirtualNetworkFunction } from '../../src/api/virtual-network-function.js';
import { resources } from '../../src/controllers/resources.js';
import { findCondition } from '../../src/runtime/conditions.js';
import { Informer } from '../../src/runtime/informer.js';
import { KubeClient } from '../../src/runtime/kube-client.js';
import { NodeAgent } from '../../node-agent/agent.js';
import { pluginDevicesOf } from '../../node-agent/device-plugin/plugin-devices.js';
import { detectCgroupLayout } from '../../node-agent/host/cgroup-layout.js';
import { mountAt, parseMountInfo } from '../../node-agent/host/mounts.js';
import { createNodeHost } from '../../node-agent/host/node-host.js';
import { JournalStore } from '../../node-agent/journal.js';
import { recoverJournals } from '../../node-agent/recover.js';
import { lockHugepages, mountPointsUnder, restoreUnifiedSubtreeControl, unifiedSubtreeControl } from '../host/helpers/host-fixtures.js';
import { KubeletRegistrationStub } from '../host/helpers/kubelet-registration-stub.js';
import { createTestNamespace, e2eCluster, e2eKubeConfig, type TestNamespace } from '../cluster/e2e-env.js';
import { installCrds } from '../cluster/install-crds.js';
import { createKwokNode, deleteKwokNodes, waitForNodesReady } from '../cluster/kwok-nodes.js';
import { startOperator, SUITE_LABEL, testLogger, waitForVnfCondition, type OperatorReplica } from '../cluster/nfv-fixture.js';
import {
  AgentProcess,
  NfvHostTree,
  onAttributeWrite,
  PlayedKubelet,
  readRealHugepages,
  TREE_NIC_POOLS,
  TREE_NICS,
  writeRealHugepages,
} from '../cluster/real-agent-fixture.js';
import { waitUntil } from '../cluster/wait-until.js';

const SUITE = 'node-agent';
const MiB = 2 ** 20;
/** What each VNF takes: 4 pages of 2Mi. */
const VNF_HUGEPAGE_BYTES = 8 * MiB;
/** Pages the pool adds on top of what the machine already holds (other users' pages stay theirs). */
const EXTRA_PAGES = 4;
const [VNF_NIC, OTHER_NIC] = TREE_NICS as [(typeof TREE_NICS)[number], (typeof TREE_NICS)[number]];
const LONG = 120_000;
const GIGANTIC_PAGES = '/sys/devices/system/node/node0/hugepages/hugepages-1048576kB/nr_hugepages';
/** The agent's hugepage resource of the pool, and its pages: the pool's on each of the tree's 2 NUMA nodes. */
const PAGES_2MI = 'nfv.dev/hugepages-2Mi';
const POOL_PAGES = 2 * EXTRA_PAGES;
/** The agent's device plugins of the tree's NICs, as kubelet would add them to the Node. */
const TREE_PLUGIN_DEVICES = pluginDevicesOf(TREE_NICS.map((nic) => ({ pciAddress: nic.address, vendor: '8086', deviceId: '159b', numaNode: nic.numaNode, iommuGroup: nic.iommuGroup, driver: nic.driver })));

const kc = e2eKubeConfig();
const client = new KubeClient(kc, { userAgent: 'nfv-e2e-node-agent' });
const logger = testLogger();
const agentLogDir = process.env.NFV_E2E_AGENT_LOGS;

let ns: TestNamespace;
let nodeName: string;
let poolName: string;
let node: V1Node;
let tree: NfvHostTree;
let kubelet: PlayedKubelet;
/** kubelet's device-plugin registration, in the tree: the machine's own kubelet (if any) never sees these agents. */
let pluginRegistration: KubeletRegistrationStub | undefined;
let operator: OperatorReplica | undefined;
let agent: NodeAgent | undefined;
let agentClient: KubeClient | undefined;
const processes: AgentProcess[] = [];
let unlockHugepages: (() => void) | undefined;
/** nr_hugepages of 2Mi pages on the real NUMA node 0 before the test; restored after. */
let pagesBefore: number | undefined;
let giganticBefore: string | undefined;
let subtreeControlBefore: string | undefined;
/** Every NodePrepared change of every VNF of the namespace, as `name: status reason`. */
const nodePrepared: string[] = [];
/** Pod and VNF deletions and NodePrepared changes, in the order this process saw them. */
const timeline: string[] = [];
let vnfWatch: Informer<VirtualNetworkFunction> | undefined;

beforeAll(async () => {
  // nr_hugepages is machine-wide: the host test files that change it take the same lock.
  unlockHugepages = await lockHugepages();
  pagesBefore = readRealHugepages().total;
  giganticBefore = readFileSync(GIGANTIC_PAGES, 'utf8');
  subtreeControlBefore = unifiedSubtreeControl(await detectCgroupLayout('/sys/fs/cgroup'));

  await installCrds(client);
  ns = await createTestNamespace(SUITE, kc);
  nodeName = `${ns.name}-node`;
  poolName = `${ns.name}-2mi`;
  tree = await NfvHostTree.build('nfv-e2e-agent');

  vnfWatch = Informer.forResource<VirtualNetworkFunction>(client, resources.vnfs, { logger, namespace: ns.name });
  vnfWatch.addEventHandler({
    onUpdate: (before, after) => {
      const [was, now] = [before, after].map((v) => findCondition(v.status?.conditions, 'NodePrepared'));
      if (now && (now.status !== was?.status || now.reason !== was?.reason)) {
        nodePrepared.push(`${after.metadata.name}: ${now.status} ${now.reason}`);
        timeline.push(`${after.metadata.name}: NodePrepared ${now.reason}`);
      }
    },
    onDelete: (vnf) => timeline.push(`${vnf.metadata.name}: deleted`),
  });
  vnfWatch.start();

  const devicePluginDir = tree.path('device-plugins');
  mkdirSync(devicePluginDir);
  // The agent processes this test starts inherit it.
  process.env.NFV_DEVICE_PLUGIN_DIR = devicePluginDir;
  pluginRegistration = new KubeletRegistrationStub(devicePluginDir);
  await pluginRegistration.start();
  // What kubelet reports once the agent's device plugins registered: one of each NIC resource and
  // the pool's pages (the test checks that the agent's plugin lists exactly these).
  const deviceCapacity = { ...Object.fromEntries(TREE_PLUGIN_DEVICES.map((device) => [device.resource, '1'])), [PAGES_2MI]: String(POOL_PAGES) };
  node = await createKwokNode(kc, { name: nodeName, labels: { [SUITE_LABEL]: SUITE, [NFV_NODE_LABEL]: 'true' }, capacity: deviceCapacity });
  await waitForNodesReady(kc, [nodeName]);
  kubelet = new PlayedKubelet(client, nodeName, logger, (pod) => timeline.push(`${pod.metadata!.labels?.[VNF_NAME_LABEL]}: pod gone`));
  await kubelet.start();
  // The agent reserves the pool on top of what node 0 already holds (other users' pages stay
  // theirs: it records that baseline before its first write).
  await client.apply<HugepagePool>(
    resources.hugepagePools,
    {
      apiVersion: API_VERSION,
      kind: 'HugepagePool',
      metadata: { name: poolName },
      spec: { nodeSelector: { [SUITE_LABEL]: SUITE, 'kubernetes.io/hostname': nodeName }, pageSize: '2Mi', pagesPerNumaNode: EXTRA_PAGES },
    },
    { fieldManager: 'nfv-e2e', force: true },
  );
  operator = startOperator(kc, `${SUITE}-operator`, { stateRoot: tree.stateRoot });
  agentClient = new KubeClient(kc, { userAgent: 'nfv-node-agent' });
  agent = new NodeAgent({
    nodeName,
    client: agentClient,
    logger: agentLogDir ? pino({ level: 'debug' }, pino.destination({ dest: posix.join(agentLogDir, 'agent-in-process.log'), mkdir: true })) : logger,
    stateRoot: tree.stateRoot,
    roots: tree.roots,
    nicPools: TREE_NIC_POOLS,
    agentVersion: 'e2e-in-process',
    changeFeeds: [],
    devicePluginDir,
    // No container runtime and no real kubelet here: the pods are played.
    nriSocket: false,
    podResourcesSocket: false,
  });
  await agent.start();
}, 15 * 60_000);

afterAll(async () => {
  const problems: string[] = [];
  const step = async (what: string, action: () => unknown) => {
    try {
      await action();
    } catch (err) {
      problems.push(`${what}: ${(err as Error).message}`);
    }
  };
  // Agents first, so nothing re-reserves pages or re-prepares while the rest is undone.
  await step('stop the in-process agent', () => agent?.stop());
  for (const child of processes) await step(`kill agent process ${child.pid}`, () => child.crash());
  await step('stop the operator', () => operator?.stop());
  await step('stop the device plugin registration', () => pluginRegistration?.stop());
  delete process.env.NFV_DEVICE_PLUGIN_DIR;
  await step('release VNFs left behind', async () => {
    if (!ns) return;
    const { items } = await client.list<VirtualNetworkFunction>(resources.vnfs, { namespace: ns.name });
    for (const vnf of items) await client.mergePatch(resources.vnfs, vnf.metadata.name!, { metadata: { finalizers: [] } }, { namespace: ns.name });
  });
  await step('stop watching VNFs', () => vnfWatch?.stop());
  await step('undo host changes left in journals', async () => {
    if (!tree) return;
    const outcomes = await recoverJournals(new JournalStore(tree.stateRoot), createNodeHost(tree.roots), () => ({ intent: 'teardown' }));
    const failed = outcomes.filter((o) => o.error);
    if (failed.length > 0) throw new Error(failed.map((o) => `${o.uid}: ${o.error!.message}`).join('; '));
  });
  await step('remove pod cgroups', () => kubelet?.stop());
  await step('restore nr_hugepages', () => {
    if (pagesBefore !== undefined && readRealHugepages().total !== pagesBefore) writeRealHugepages(pagesBefore);
  });
  await step('restore the unified cgroup root', async () => restoreUnifiedSubtreeControl(await detectCgroupLayout('/sys/fs/cgroup'), subtreeControlBefore));
  await step('delete the host tree', () => tree?.cleanup());
  await step('delete the pool', () => poolName && client.delete(resources.hugepagePools, poolName).catch(() => undefined));
  await step('delete the node', () => nodeName && deleteKwokNodes(kc, [nodeName]));
  await step('delete the namespace', () => ns?.delete({ wait: false }));
  agentClient?.close();
  client.close();
  unlockHugepages?.();
  if (pagesBefore !== undefined) expect(readRealHugepages().total).toBe(pagesBefore);
  // The pool is of 2Mi pages and the tree's 1Gi counters are files: no 1Gi page was ever asked for.
  if (giganticBefore !== undefined) expect(readFileSync(GIGANTIC_PAGES, 'utf8')).toBe(giganticBefore);
  if (problems.length > 0) throw new Error(`cleanup failed:\n${problems.join('\n')}`);
}, LONG);

const getVnf = (name: string) => client.get<VirtualNetworkFunction>(resources.vnfs, name, { namespace: ns.name });
const getNfvNode = () => client.get<NfvNode>(resources.nfvNodes, nodeName);

function vnfManifest(name: string): VirtualNetworkFunction {
  return {
    apiVersion: API_VERSION,
    kind: 'VirtualNetworkFunction',
    metadata: { name, namespace: ns.name },
    spec: {
      image: 'nfv-operator/l2fwd:22.11',
      cpus: { count: 1, fullCores: false },
      hugepages: { pageSize: '2Mi', amount: `${VNF_HUGEPAGE_BYTES / MiB}Mi`, pool: poolName },
      interfaces: [{ name: 'uplink', device: { pool: 'fast' }, driver: 'vfio-pci' }],
      links: [],
      nodeSelector: { [SUITE_LABEL]: SUITE },
    },
  };
}

function waitForCondition(name: string, type: string, status: string, reason?: string, timeoutMs?: number): Promise<VirtualNetworkFunction> {
  return waitForVnfCondition(getVnf, name, type, status, reason, timeoutMs);
}

async function waitGone(what: string, get: () => Promise<unknown>, timeoutMs = 60_000): Promise<void> {
  await waitUntil(what, () => get().then(() => false, (err: { code?: number }) => err.code === 404 || Promise.reject(err)), { timeoutMs });
}

/**
 * Server-side applies counted over `ms`, after a second for writes already on their way: a
 * reconcile that started before the cache had the agent's own last write may repeat it once.
 */
async function appliesDuring(applies: () => number, ms: number): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const before = applies();
  await new Promise((resolve) => setTimeout(resolve, ms));
  return applies() - before;
}

function hostMounts() {
  return parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8'));
}

/** hugetlbfs mounts under the test's tree, from /proc/mounts. */
function treeHugetlbfsMounts(): string[] {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .filter((line) => line.split(' ')[2] === 'hugetlbfs' && line.split(' ')[1]!.startsWith(tree.path()));
}

/**
 * The order in which one VNF's pod went, its node was torn down and it was deleted, once the
 * watch has delivered the deletion (a GET can answer 404 before the watch event arrives).
 */
async function deletionOrder(name: string): Promise<string[]> {
  await waitUntil(`the watch to deliver the deletion of ${name}`, () => timeline.includes(`${name}: deleted`), { timeoutMs: 10_000 });
  return timeline.filter((event) => event.startsWith(`${name}: `) && /pod gone|TornDown|deleted/.test(event));
}

/** Every host change of a Ready VNF, read from the kernel and the tree. */
function expectPrepared(vnf: VirtualNetworkFunction, podUid: string): void {
  const placement = vnf.status!.placement!;
  const paths = placement.hostPaths;
  const mount = mountAt(hostMounts(), paths.hugepages);
  expect(mount).toMatchObject({ fsType: 'hugetlbfs', superOptions: expect.arrayContaining(['pagesize=2M', `size=${VNF_HUGEPAGE_BYTES}`]) });
  expect(mountPointsUnder(paths.root)).toEqual([paths.hugepages]);
  expect(readdirSync(paths.pciDevices)).toEqual([VNF_NIC.address]);
  expect(readlinkSync(posix.join(paths.pciDevices, VNF_NIC.address))).toBe(`../../../devices/pci0000:00/${VNF_NIC.address}`);
  for (const file of ['online', 'present', 'possible']) expect(readFileSync(posix.join(paths.cpuMask, file), 'utf8')).toBe('1\n');
  expect(readdirSync(paths.emptyDir)).toEqual([]);
  expect(tree.kernel.driverOf(VNF_NIC.address)).toBe('vfio-pci');
  expect(tree.kernel.driverOf(OTHER_NIC.address)).toBe(OTHER_NIC.driver);
  expect(readFileSync(posix.join(paths.readySignal, READY_FILE), 'utf8')).toBe(podUid);

  for (const dir of [kubelet.podDir(podUid, 'cpuset')!, kubelet.containerDir(podUid, 'cpuset')!]) {
    expect(readFileSync(posix.join(dir, 'cpuset.cpus'), 'utf8').trim()).toBe('1');
    expect(readFileSync(posix.join(dir, 'cpuset.mems'), 'utf8').trim()).toBe('0');
  }
  const hugetlbLimit = kubelet.hierarchy('hugetlb').version === 2 ? 'hugetlb.2MB.max' : 'hugetlb.2MB.limit_in_bytes';
  expect(readFileSync(posix.join(kubelet.podDir(podUid, 'hugetlb')!, hugetlbLimit), 'utf8').trim()).toBe(String(VNF_HUGEPAGE_BYTES));
}

/** Nothing of a VNF is left on the host: mounts, host paths, journal, driver, pod cgroups. */
function expectNothingLeft(vnf: VirtualNetworkFunction, podUid: string): void {
  const paths = vnf.status!.placement!.hostPaths;
  expect(mountPointsUnder(tree.stateRoot)).toEqual([]);
  expect(treeHugetlbfsMounts()).toEqual([]);
  expect(existsSync(paths.root)).toBe(false);
  expect(readdirSync(posix.join(tree.stateRoot, 'journal'))).toEqual([]);
  expect(readdirSync(posix.join(tree.stateRoot, 'vnfs'))).toEqual([]);
  expect(readdirSync(tree.stateRoot).sort()).toEqual(['hugepage-baselines.json', 'journal', 'vnfs']);
  for (const nic of TREE_NICS) {
    expect(tree.kernel.driverOf(nic.address)).toBe(nic.driver);
    expect(tree.kernel.overrideOf(nic.address)).toBe('(null)');
  }
  expect(kubelet.removed).toContain(podUid);
  expect(kubelet.leftoverPodDirs()).toEqual([]);
  expect(kubelet.errors).toEqual([]);
}

describe('the real node agent with the real controller, API server and kernel', () => {
  test('publishes its NfvNode owned by its Node, with the built inventory and the hugepages the kernel really gave', async () => {
    const nfvNode = await waitUntil('the agent to publish its NfvNode', async () => {
      const current = await getNfvNode();
      return current.status?.inventory && current.status.hugepagePools?.length ? current : undefined;
    });
    expect(nfvNode.metadata.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Node', name: nodeName, uid: node.metadata!.uid }]);
    const status = nfvNode.status!;
    expect(status).not.toHaveProperty('allocations');
    expect(status.agentVersion).toBe('e2e-in-process');
    expect(status.conditions).toEqual([expect.objectContaining({ type: 'Ready', status: 'True', reason: 'InventoryCurrent' })]);

    const kernel = readRealHugepages();
    const requested = EXTRA_PAGES;
    expect(kernel.total).toBe(pagesBefore! + EXTRA_PAGES);
    const inventory = status.inventory!;
    expect(inventory.threadsPerCore).toBe(1);
    expect(inventory.cpus).toEqual([
      { id: 0, numaNode: 0, socket: 0, core: 0, isolated: false },
      { id: 1, numaNode: 0, socket: 0, core: 1, isolated: true },
      { id: 2, numaNode: 1, socket: 1, core: 0, isolated: false },
      { id: 3, numaNode: 1, socket: 1, core: 1, isolated: true },
    ]);
    expect(inventory.numaNodes).toEqual([
      { id: 0, cpus: '0-1', hugepages: [{ pageSize: '1Gi', total: 0, free: 0 }, { pageSize: '2Mi', total: kernel.total, free: expect.any(Number) }] },
      { id: 1, cpus: '2-3', hugepages: [{ pageSize: '1Gi', total: 0, free: 0 }, { pageSize: '2Mi', total: requested, free: 0 }] },
    ]);
    expect(inventory.nics).toEqual(
      TREE_NICS.map((nic) => ({ pciAddress: nic.address, vendor: '8086', deviceId: '159b', numaNode: nic.numaNode, iommuGroup: nic.iommuGroup, driver: nic.driver, pool: 'fast' })),
    );
    expect(status.hugepagePools).toEqual([
      { pool: poolName, pageSize: '2Mi', numaNode: 0, requested, allocated: requested },
      { pool: poolName, pageSize: '2Mi', numaNode: 1, requested, allocated: requested },
    ]);

    // Server-side apply: the agent owns the status it publishes and the owner reference, nothing else.
    const agentFields = (nfvNode.metadata.managedFields ?? []).filter((f) => f.manager === 'nfv-node-agent');
    expect(agentFields.map((f) => `${f.operation} ${f.subresource ?? 'main'}`).sort()).toEqual(['Apply main', 'Apply status']);
    const statusFields = agentFields.find((f) => f.subresource === 'status')!.fieldsV1 as { 'f:status': Record<string, unknown> };
    expect(Object.keys(statusFields['f:status']).sort()).toEqual(['f:agentVersion', 'f:conditions', 'f:hugepagePools', 'f:inventory']);

    const pool = await waitUntil('the pool to aggregate the agent report', async () => {
      const current = await client.get<HugepagePool>(resources.hugepagePools, poolName);
      return current.status?.nodes?.length ? current : undefined;
    });
    expect(pool.status).toMatchObject({ requested: 2 * requested, allocated: 2 * requested, claimed: 0 });
    expect(findCondition(pool.status!.conditions, 'Ready')).toMatchObject({ status: 'True', reason: 'Reserved' });
    expect(findCondition(pool.status!.conditions, 'Degraded')).toMatchObject({ status: 'False' });
  });

  let firstVnf: VirtualNetworkFunction;
  let firstPodUid: string;

  test('a VNF placed by the controller is prepared on the host for real before it becomes Ready', async () => {
    const applies = () => agentClient!.requestCounts().apply;
    const appliesBefore = applies();
    // A kubelet that has not synced the pod yet: KWOK runs the pod, but its cgroups do not exist.
    kubelet.hold();
    await client.create(resources.vnfs, vnfManifest('fwd'));
    const waiting = await waitUntil('the agent to wait for the pod cgroups', async () => {
      const vnf = await getVnf('fwd');
      const prepared = findCondition(vnf.status?.conditions, 'NodePrepared');
      return prepared?.status === 'False' && prepared.message.startsWith('waiting for kubelet to create the cgroup of pod') ? vnf : undefined;
    });
    expect(findCondition(waiting.status!.conditions, 'Ready')).toMatchObject({ status: 'False', reason: 'WaitingForNodeAgent' });
    const waitingPaths = waiting.status!.placement!.hostPaths;
    expect(mountAt(hostMounts(), waitingPaths.hugepages)?.fsType).toBe('hugetlbfs');
    expect(existsSync(posix.join(waitingPaths.readySignal, READY_FILE))).toBe(false);
    // Waiting costs no API writes: each retry (1s apart) finds the condition already saying so.
    expect(await appliesDuring(applies, 3000)).toBe(0);
    kubelet.release();

    const ready = await waitForCondition('fwd', 'Ready', 'True', 'Running');
    const placement = ready.status!.placement!;
    expect(placement).toMatchObject({ node: nodeName, numaNode: 0, cpus: '1', hugepages: { pool: poolName, pageSize: '2Mi', bytes: VNF_HUGEPAGE_BYTES } });
    expect(placement.devices).toEqual([{ interface: 'uplink', pciAddress: VNF_NIC.address, iommuGroup: VNF_NIC.iommuGroup, driver: 'vfio-pci' }]);
    expect(placement.hostPaths.root).toBe(posix.join(tree.stateRoot, 'vnfs', ready.metadata.uid!));

    const pod = await client.get<V1Pod>(resources.pods, ready.status!.podName!, { namespace: ns.name });
    const podUid = pod.metadata!.uid!;
    expect(kubelet.created).toContain(podUid);
    expect(findCondition(ready.status!.conditions, 'NodePrepared')).toMatchObject({ status: 'True', reason: 'Prepared', message: expect.stringContaining(podUid) });
    expectPrepared(ready, podUid);
    // The container gets its group from the agent's device plugin (kubelet passes the nodes to the
    // runtime), and its pages from the agent's hugepage plugin (counted, nothing to pass): the
    // hugetlb limit of its pod is the agent's (expectPrepared), not kubelet's.
    const group = `nfv.dev/vfio-group-${VNF_NIC.iommuGroup}`;
    expect(pod.spec!.containers[0]!.resources!.limits).toEqual({ [group]: '1', [PAGES_2MI]: String(VNF_HUGEPAGE_BYTES / (2 * MiB)) });
    expect(pod.spec!.volumes!.filter((v) => v.hostPath?.path.startsWith('/dev/'))).toEqual([]);
    expect([...pluginRegistration!.plugins.keys()].sort()).toEqual([...TREE_PLUGIN_DEVICES.map((device) => device.resource), PAGES_2MI].sort());
    // The pool's pages, one device per page on its NUMA node, as the Node's capacity above says.
    expect(pluginRegistration!.latest(PAGES_2MI)?.map((device) => device.ID)).toEqual([0, 1].flatMap((numa) => Array.from({ length: EXTRA_PAGES }, (_, i) => `numa${numa}-${i}`)));
    expect((await pluginRegistration!.allocate(PAGES_2MI, ['numa0-0', 'numa0-1', 'numa0-2', 'numa0-3'])).container_responses[0]!.devices).toEqual([]);
    await waitUntil('the VNF group listed Healthy to kubelet', () => pluginRegistration!.latest(group)?.[0]?.health === 'Healthy');
    expect((await pluginRegistration!.allocate(group, [String(VNF_NIC.iommuGroup)])).container_responses[0]!.devices.map((d) => d.host_path)).toEqual([
      '/dev/vfio/vfio',
      `/dev/vfio/${VNF_NIC.iommuGroup}`,
    ]);
    expect(existsSync(posix.join(tree.stateRoot, 'journal', `${ready.metadata.uid}.jsonl`))).toBe(true);
    expect(nodePrepared.filter((e) => e.startsWith('fwd:')).at(-1)).toBe('fwd: True Prepared');
    // Preparing, host side prepared, waiting for kubelet, Prepared; the NfvNode inventory (driver now vfio-pci).
    expect(applies() - appliesBefore).toBeLessThanOrEqual(6);

    // The agent owns the NodePrepared condition of the status and nothing else.
    const agentFields = (ready.metadata.managedFields ?? []).filter((f) => f.manager === 'nfv-node-agent');
    expect(agentFields).toHaveLength(1);
    expect(agentFields[0]).toMatchObject({ operation: 'Apply', subresource: 'status' });
    expect(agentFields[0]!.fieldsV1).toEqual({ 'f:status': { 'f:conditions': { 'k:{"type":"NodePrepared"}': expect.any(Object) } } });

    const ledger = (await getNfvNode()).status!.allocations!;
    expect(ledger).toEqual([expect.objectContaining({ uid: ready.metadata.uid, cpus: '1', numaNode: 0 })]);
    firstVnf = ready;
    firstPodUid = podUid;
    // The agent's /metrics timed the preparation (the pod existed, so host and pod stages ran in one go).
    expect(renderMetricFamilies(agent!.metrics.families())).toMatch(/nfv_agent_host_operation_duration_seconds_count\{operation="prepare",stage="ready"\} [1-9]/);
  });

  test('deleting the VNF removes its pod, then the agent undoes every host change, then the controller releases it', async () => {
    await client.delete(resources.vnfs, 'fwd', { namespace: ns.name });
    await waitGone('VNF fwd to be gone', () => getVnf('fwd'));
    await waitGone('pod of fwd to be gone', () => client.get(resources.pods, firstVnf.status!.podName!, { namespace: ns.name }), 5_000);
    expect(nodePrepared.filter((e) => e.startsWith('fwd:')).at(-1)).toBe('fwd: False TornDown');
    expect(await deletionOrder('fwd')).toEqual(['fwd: pod gone', 'fwd: NodePrepared TornDown', 'fwd: deleted']);
    expectNothingLeft(firstVnf, firstPodUid);
    expect((await getNfvNode()).status!.allocations ?? []).toEqual([]);
    expect(readRealHugepages().total).toBe(pagesBefore! + EXTRA_PAGES);
    expect(renderMetricFamilies(agent!.metrics.families())).toMatch(/nfv_agent_host_operation_duration_seconds_count\{operation="teardown"\} [1-9]/);
  });

  test('a host step that fails is reported once and retried with backoff, then succeeds once the node is fixed', async () => {
    const applies = () => agentClient!.requestCounts().apply;
    const vnf = vnfManifest('fwd-uio');
    vnf.spec.interfaces = [{ name: 'uplink', device: { pool: 'fast' }, driver: 'uio_pci_generic' }];
    await client.create(resources.vnfs, vnf);
    const failed = await waitForCondition('fwd-uio', 'NodePrepared', 'False', 'DriverNotLoaded');
    expect(findCondition(failed.status!.conditions, 'NodePrepared')!.message).toContain('load its kernel module (modprobe uio_pci_generic)');
    await waitForCondition('fwd-uio', 'Ready', 'False', 'NodePreparationFailed');
    // Retries (100ms, 200ms, ... apart) find the failure already reported and write nothing.
    expect(await appliesDuring(applies, 3000)).toBe(0);
    expect(tree.kernel.driverOf(VNF_NIC.address)).toBe(VNF_NIC.driver);
    expect(renderMetricFamilies(agent!.metrics.families())).toMatch(/nfv_agent_host_operation_failures_total\{operation="prepare",reason="DriverNotLoaded"\} [1-9]/);

    tree.kernel.addDriver('uio_pci_generic');
    const ready = await waitForCondition('fwd-uio', 'Ready', 'True', 'Running');
    expect(tree.kernel.driverOf(VNF_NIC.address)).toBe('uio_pci_generic');
    const pod = await client.get<V1Pod>(resources.pods, ready.status!.podName!, { namespace: ns.name });
    await client.delete(resources.vnfs, 'fwd-uio', { namespace: ns.name });
    await waitGone('VNF fwd-uio to be gone', () => getVnf('fwd-uio'));
    expect(await deletionOrder('fwd-uio')).toEqual(['fwd-uio: pod gone', 'fwd-uio: NodePrepared TornDown', 'fwd-uio: deleted']);
    expectNothingLeft(ready, pod.metadata!.uid!);
  });

  test('an agent SIGKILLed in the middle of a driver rebind is replaced by one that finishes the job', async () => {
    expect((await client.list(resources.vnfs, { namespace: ns.name })).items).toEqual([]);
    await agent!.stop();
    agent = undefined;
    const spawnAgent = (n: number) => {
      const child = AgentProcess.start({
        nodeName,
        kubeconfigPath: e2eCluster().kubeconfigPath,
        stateRoot: tree.stateRoot,
        roots: tree.roots,
        nicPools: TREE_NIC_POOLS,
        logFile: agentLogDir ? posix.join(agentLogDir, `agent-${n}.log`) : tree.path(`agent-${n}.log`),
        logLevel: agentLogDir ? 'debug' : 'info',
      });
      processes.push(child);
      return child;
    };

    const first = spawnAgent(1);
    const override = posix.join(tree.roots.sysfs, 'bus/pci/devices', VNF_NIC.address, 'driver_override');
    const disarm = onAttributeWrite(override, 'vfio-pci', () => first.kill('SIGKILL'));
    try {
      await client.create(resources.vnfs, vnfManifest('fwd-crash'));
      const exit = await waitUntil('the agent to be killed in the driver step', () => (first.running ? undefined : first.exited), {
        abortIf: () => {
          if (kubelet.errors.length > 0) throw new Error(kubelet.errors.join('; '));
        },
      }).catch((err: Error) => Promise.reject(new Error(`${err.message}\n${first.logTail()}`)));
      expect(exit).toEqual({ code: null, signal: 'SIGKILL' });
    } finally {
      disarm();
    }
    const placed = await getVnf('fwd-crash');
    const uid = placed.metadata.uid!;
    const journal = await new JournalStore(tree.stateRoot).journal(uid).state();
    const driverStep = journal.steps.get(`driver:${VNF_NIC.address}`);
    console.log(
      `agent killed mid-rebind: driver step ${driverStep?.status}, device bound to "${tree.kernel.driverOf(VNF_NIC.address)}", ` +
        `override "${tree.kernel.overrideOf(VNF_NIC.address)}", journal steps ${[...journal.steps.values()].map((s) => `${s.name}=${s.status}`).join(' ')}`,
    );
    expect(driverStep).toMatchObject({ status: 'begun', data: { originalDriver: VNF_NIC.driver } });
    expect(findCondition(placed.status?.conditions, 'NodePrepared')?.status).not.toBe('True');

    const second = spawnAgent(2);
    const ready = await waitForCondition('fwd-crash', 'Ready', 'True', 'Running');
    const pod = await client.get<V1Pod>(resources.pods, ready.status!.podName!, { namespace: ns.name });
    expectPrepared(ready, pod.metadata!.uid!);

    // Killed while idle, then the VNF is deleted: nobody undoes the host, so the controller must wait.
    expect(await second.crash()).toEqual({ code: null, signal: 'SIGKILL' });
    await client.delete(resources.vnfs, 'fwd-crash', { namespace: ns.name });
    await waitGone('pod of fwd-crash to be gone', () => client.get(resources.pods, pod.metadata!.name!, { namespace: ns.name }));
    const waiting = await waitForCondition('fwd-crash', 'Ready', 'False', 'WaitingForNodeTeardown');
    expect(waiting.metadata.finalizers).toContain(VNF_FINALIZER);
    expect(mountAt(hostMounts(), ready.status!.placement!.hostPaths.hugepages)?.fsType).toBe('hugetlbfs');
    expect(tree.kernel.driverOf(VNF_NIC.address)).toBe('vfio-pci');

    const third = spawnAgent(3);
    await waitGone('VNF fwd-crash to be gone', () => getVnf('fwd-crash'));
    expectNothingLeft(ready, pod.metadata!.uid!);
    expect(await deletionOrder('fwd-crash')).toEqual(['fwd-crash: pod gone', 'fwd-crash: NodePrepared TornDown', 'fwd-crash: deleted']);

    third.kill('SIGTERM');
    expect(await third.exited).toEqual({ code: 0, signal: null });
  }, LONG);

  test('deleting the Node garbage-collects its NfvNode through the owner reference', async () => {
    expect(processes.every((child) => !child.running)).toBe(true);
    await deleteKwokNodes(kc, [nodeName]);
    // The garbage collector may first have to discover the NfvNode kind (it re-reads discovery every 30s).
    await waitGone(`NfvNode ${nodeName} to be collected`, getNfvNode, 90_000);
  }, LONG);
});
