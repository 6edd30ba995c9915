/**
 * The node agent as the chart's DaemonSet on the REAL node (test/cluster/real-node.ts): helm
 * installs charts/nfv-operator, kubelet runs the agent pod with containerd and runc from the
 * imported `nfv-operator/node-agent:dev`, exactly with the chart's security context (not
 * privileged, SYS_ADMIN, SYS_CHROOT and SYS_PTRACE only), and the agent publishes this machine's
 * inventory and reserves real hugepages for a HugepagePool through /host/sys.
 *
 * What differs from a production install, and why:
 * - the controller runs no replica (`replicas=0`): no VNF is placed on this machine's devices;
 * - the state root is a temp dir of this test, not /var/lib/nfv-operator;
 * - the chart mounts the state root and /sys/fs/cgroup with HostToContainer propagation, which
 *   containerd refuses ("... is not a shared or slave mount") where the source is on a private
 *   mount, as on this machine (no systemd, which makes every mount shared at boot): the state root
 *   becomes a shared bind mount of itself and /sys/fs/cgroup shared, for the test only;
 * - the agent enters the host's mount namespace through this test's process
 *   (`agent.mountNamespace=/host/proc/<pid>/ns/mnt`), not PID 1: PID 1 of this machine is the
 *   sandbox's own process, whose namespace files even root with every capability may not open
 *   (`ls -l /proc/1/ns/mnt`: Permission denied). The check the chart's capabilities must pass is
 *   the same (SYS_PTRACE for the ptrace access check, SYS_ADMIN and SYS_CHROOT for setns);
 * - this node has no kube-proxy, so the `kubernetes` Service's cluster IP leads nowhere: the
 *   agent's container gets KUBERNETES_SERVICE_HOST/PORT of the API server's loopback address
 *   (`kubectl set env`, before any node matches the DaemonSet, so no pod ever runs without it).
 *
 * Mounts: no VNF can be placed here (no isolated CPUs, no NIC to give away), so the host work in
 * the host's mount namespace is shown by the agent's crash recovery instead: a journal of a VNF
 * whose teardown was interrupted, with its hugetlbfs still mounted on the host, is left in the
 * state root before the agent starts; the agent must unmount it from the host's mount table, which
 * an umount in its own (rslave) mount namespace could not do.
 *
 * nr_hugepages is machine-wide: the file holds the hugepage lock of the host tests throughout.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { pino } from 'pino';
import { parseCpuList } from '../../src/api/cpu-list.js';
import { NFV_NODE_LABEL } from '../../src/api/group.js';
import { vnfHostPaths } from '../../src/api/host-paths.js';
import type { NfvNode } from '../../src/api/nfv-node.js';
import { resources } from '../../src/controllers/resources.js';
import { findCondition } from '../../src/runtime/conditions.js';
import { KubeClient } from '../../src/runtime/kube-client.js';
import { coreResources } from '../../src/runtime/kube-object.js';
import { JournalStore } from '../../node-agent/journal.js';
import type { VnfHostPlan } from '../../node-agent/validate.js';
import { CleanupSteps } from '../cluster/cleanup-steps.js';
import { createTestNamespace, e2eCluster, e2eKubeConfig, type TestNamespace } from '../cluster/e2e-env.js';
import { RealNode } from '../cluster/real-node.js';
import { applyNodeHugepagePool, SharedMounts } from '../cluster/real-node-fixture.js';
import { resolveClusterTools, type ClusterTools } from '../cluster/tools.js';
import { waitUntil } from '../cluster/wait-until.js';
import { execFileAsync, lockHugepages, mountPointsUnder } from '../host/helpers/host-fixtures.js';
import { CHART_DIR, runCommand, type CommandResult } from '../unit/chart/chart-commands.js';

const IMAGE = 'nfv-operator/node-agent:dev';
const SELECT_LABEL = 'nfv.dev/e2e-agent-daemonset';
const POOL_PAGES = 2;
const NODE0_2MI = '/sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages';
/** CAP_SYS_ADMIN (21), CAP_SYS_CHROOT (18) and CAP_SYS_PTRACE (19): the chart's three. */
const CHART_CAPABILITIES = (1n << 21n) | (1n << 18n) | (1n << 19n);

const kc = e2eKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const client = new KubeClient(kc, { userAgent: 'nfv-e2e-agent-daemonset' });
const logger = pino({ name: 'real-node-agent-daemonset', level: process.env['NFV_CLUSTER_LOG_LEVEL'] ?? 'warn' }, pino.destination(2));

let tools: ClusterTools;
let ns: TestNamespace;
let release: string;
let helmHome: string;
let stateRoot: string;
const sharedMounts = new SharedMounts();
let node: RealNode;
let unlockHugepages: (() => void) | undefined;
let pagesBefore: number | undefined;
/** Driver of every PCI device of this machine before the agent ran: it must bind none. */
let driversBefore: Record<string, string>;
let poolName: string | undefined;

const kubeconfigPath = () => e2eCluster().kubeconfigPath;
const agentName = () => `${release}-nfv-operator-node-agent`;
const readNode0Pages = () => Number(readFileSync(NODE0_2MI, 'utf8'));

function helm(args: string[]): Promise<CommandResult> {
  return runCommand(tools.helm, [...args, '--kubeconfig', kubeconfigPath()], undefined, {
    HELM_CONFIG_HOME: join(helmHome, 'config'),
    HELM_CACHE_HOME: join(helmHome, 'cache'),
    HELM_DATA_HOME: join(helmHome, 'data'),
  });
}

async function ok(result: Promise<CommandResult>, what: string): Promise<CommandResult> {
  const done = await result;
  if (done.code !== 0) throw new Error(`${what} failed (${done.code}): ${done.stderr || done.stdout}`);
  return done;
}

function pciDrivers(): Record<string, string> {
  const devices = '/sys/bus/pci/devices';
  return Object.fromEntries(
    readdirSync(devices).map((address) => {
      const link = posix.join(devices, address, 'driver');
      return [address, existsSync(link) ? posix.basename(readlinkSync(link)) : ''];
    }),
  );
}

beforeAll(async () => {
  unlockHugepages = await lockHugepages();
  pagesBefore = readNode0Pages();
  driversBefore = pciDrivers();
  tools = await resolveClusterTools();
  ns = await createTestNamespace('agent-daemonset', kc);
  release = ns.name;
  helmHome = await mkdtemp(join(tmpdir(), 'nfv-helm-'));
  stateRoot = await mkdtemp(join(tmpdir(), 'nfv-e2e-agent-state-'));
  await sharedMounts.bindShared(stateRoot);
  await sharedMounts.makeShared('/sys/fs/cgroup');
  await leaveInterruptedTeardown();
  const cluster = e2eCluster();
  node = await RealNode.start({ server: cluster.server, pkiDir: posix.join(cluster.tmpDir, 'pki'), kubeConfig: kc, images: [IMAGE], logger });

  await ok(
    helm([
      'install',
      release,
      CHART_DIR,
      '--namespace',
      ns.name,
      '--set',
      'replicas=0',
      '--set',
      'agent.image.pullPolicy=Never',
      '--set',
      `stateRoot=${stateRoot}`,
      '--set',
      `agent.mountNamespace=/host/proc/${process.pid}/ns/mnt`,
      '--set',
      `agent.nriSocket=${node.nriSocket}`,
      '--set',
      `agent.podResourcesSocket=${node.podResourcesSocket}`,
      '--set-string',
      `agent.nodeSelector.${SELECT_LABEL.replaceAll('.', '\\.')}=${ns.name}`,
    ]),
    'helm install',
  );
  const apiServer = new URL(cluster.server);
  await ok(
    runCommand(tools.kubectl, ['--kubeconfig', kubeconfigPath(), '-n', ns.name, 'set', 'env', `daemonset/${agentName()}`, `KUBERNETES_SERVICE_HOST=${apiServer.hostname}`, `KUBERNETES_SERVICE_PORT=${apiServer.port}`]),
    'kubectl set env',
  );
  await client.mergePatch(coreResources.nodes, node.name, { metadata: { labels: { [NFV_NODE_LABEL]: 'true', [SELECT_LABEL]: ns.name } } });
}, 10 * 60_000);

afterAll(async () => {
  const cleanup = new CleanupSteps();
  const step = (what: string, action: () => unknown) => cleanup.run(what, action);
  await step('delete the pool', async () => {
    if (!poolName) return;
    await client.delete(resources.hugepagePools, poolName).catch(() => undefined);
  });
  await step('helm uninstall', async () => {
    if (release && helmHome) await ok(helm(['uninstall', release, '--namespace', ns.name, '--ignore-not-found', '--wait']), 'helm uninstall');
  });
  await step('stop the real node', () => node?.stop());
  await step('delete the NfvNode', () => node && client.delete(resources.nfvNodes, node.name).catch(() => undefined));
  await step('restore nr_hugepages', () => {
    const now = readNode0Pages();
    if (pagesBefore === undefined || now === pagesBefore) return;
    writeFileSync(NODE0_2MI, `${pagesBefore}\n`);
    throw new Error(`the agent left nr_hugepages of node 0 at ${now}, not ${pagesBefore}; restored`);
  });
  await step('find no mount left under the state root', async () => {
    const mounts = stateRoot ? mountPointsUnder(stateRoot).filter((mount) => mount !== stateRoot) : [];
    for (const mount of [...mounts].reverse()) await execFileAsync('umount', ['--', mount]);
    if (mounts.length > 0) throw new Error(`unmounted what was left: ${mounts.join(', ')}`);
  });
  await step('restore the mount propagation', () => sharedMounts.restore());
  await step('remove the state root', () => stateRoot && rm(stateRoot, { recursive: true, force: true }));
  await step('delete the namespace', () => ns?.delete({ wait: false }));
  if (helmHome) await rm(helmHome, { recursive: true, force: true });
  client.close();
  unlockHugepages?.();
  cleanup.throwIfFailed();
}, 5 * 60_000);

/** The VNF of {@link leaveInterruptedTeardown}. */
const interrupted = { uid: randomUUID(), namespace: 'gone', name: 'interrupted' };
const interruptedPaths = () => vnfHostPaths(stateRoot, interrupted.uid);

/**
 * What an agent killed in the middle of a teardown leaves: the VNF's directories and its hugetlbfs
 * mount on the host, and a journal that says the teardown began.
 */
async function leaveInterruptedTeardown(): Promise<void> {
  const paths = interruptedPaths();
  await mkdir(paths.hugepages, { recursive: true });
  await execFileAsync('mount', ['-t', 'hugetlbfs', '-o', `pagesize=2M,size=${2 * 2 ** 20}`, 'nodev', paths.hugepages]);
  if (!mountPointsUnder(stateRoot).includes(paths.hugepages)) throw new Error(`the hugetlbfs at ${paths.hugepages} is not in this host's mount table`);
  const plan: VnfHostPlan = { ...interrupted, numaNode: 0, cpus: [0], pageSize: '2Mi', hugepageBytes: 2 * 2 ** 20, pool: 'none', devices: [], paths, memifDirs: [] };
  const journal = new JournalStore(stateRoot).journal(interrupted.uid);
  await journal.append({ op: 'plan', plan });
  for (const step of ['directories', 'hugetlbfs']) {
    await journal.append({ op: 'begin', step });
    await journal.append({ op: 'done', step });
  }
  await journal.append({ op: 'teardown' });
}

async function agentPod(): Promise<V1Pod | undefined> {
  const { items } = await core.listNamespacedPod({ namespace: ns.name, fieldSelector: `spec.nodeName=${node.name}` });
  return items.find((pod) => pod.metadata?.name?.startsWith(agentName()));
}

describe('the node agent DaemonSet on the real node', () => {
  let pod: V1Pod;

  test('runs under kubelet, containerd and runc with exactly the chart\'s security context', async () => {
    let last: V1Pod | undefined;
    pod = await waitUntil(
      'the agent pod to be Ready on the real node (its /readyz: running, NRI plugin registered with containerd)',
      async () => {
        last = await agentPod();
        return last?.status?.containerStatuses?.[0]?.ready ? last : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    ).catch((err: Error) => Promise.reject(new Error(`${err.message}; last status: ${JSON.stringify(last?.status)}`)));
    const container = pod.spec!.containers[0]!;
    expect(container.readinessProbe?.httpGet).toMatchObject({ path: '/readyz', port: 'metrics' });
    expect(container.securityContext).toMatchObject({
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'], add: ['SYS_ADMIN', 'SYS_CHROOT', 'SYS_PTRACE'] },
    });
    expect(pod.spec!.hostPID).toBe(true);

    // What runc was given, and what the process really holds.
    const containerId = pod.status!.containerStatuses![0]!.containerID!.replace(/^containerd:\/\//, '');
    const inspected = await node.inspectContainer(containerId);
    const spec = inspected.info!.runtimeSpec!;
    for (const set of ['effective', 'bounding', 'permitted'] as const) {
      expect([set, spec.process!.capabilities![set]!.sort()]).toEqual([set, ['CAP_SYS_ADMIN', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE']]);
    }
    expect(spec.process!.noNewPrivileges).toBe(true);
    expect(spec.root!.readonly).toBe(true);
    // A privileged container has no masked paths.
    expect(spec.linux!.maskedPaths?.length).toBeGreaterThan(0);
    const status = readFileSync(`/proc/${inspected.info!.pid}/status`, 'utf8');
    for (const field of ['CapEff', 'CapBnd', 'CapPrm']) {
      expect([field, BigInt(`0x${new RegExp(`^${field}:\\s+([0-9a-f]+)$`, 'm').exec(status)![1]}`)]).toEqual([field, CHART_CAPABILITIES]);
    }
  }, 180_000);

  test('finishes an interrupted teardown by unmounting in the host\'s mount namespace (nsenter)', async () => {
    expect(pod).toBeDefined();
    const paths = interruptedPaths();
    await waitUntil('the agent to finish the teardown', () => !existsSync(posix.join(stateRoot, 'journal', `${interrupted.uid}.jsonl`)), { timeoutMs: 60_000 });
    expect(mountPointsUnder(stateRoot).filter((mount) => mount !== stateRoot)).toEqual([]);
    expect(existsSync(paths.root)).toBe(false);
  }, 90_000);

  test('publishes this machine\'s inventory without touching its PCI devices', async () => {
    expect(pod).toBeDefined();
    const nfvNode = await waitUntil('the agent to publish its NfvNode', async () => {
      const current = await client.get<NfvNode>(resources.nfvNodes, node.name).catch(() => undefined);
      return current?.status?.inventory ? current : undefined;
    }, { timeoutMs: 60_000 });
    const inventory = nfvNode.status!.inventory!;
    const onlineCpus = readFileSync('/sys/devices/system/cpu/online', 'utf8').trim();
    expect(inventory.cpus.map((cpu) => cpu.id)).toEqual(parseCpuList(onlineCpus));
    const numaIds = readdirSync('/sys/devices/system/node').filter((name) => /^node\d+$/.test(name)).map((name) => Number(name.slice(4))).sort();
    expect(inventory.numaNodes.map((numa) => numa.id)).toEqual(numaIds);
    expect(inventory.numaNodes[0]!.hugepages).toContainEqual(expect.objectContaining({ pageSize: '2Mi', total: readNode0Pages() }));
    expect(findCondition(nfvNode.status!.conditions, 'Ready')).toMatchObject({ status: 'True' });
    expect(pciDrivers()).toEqual(driversBefore);
    // The image carries udevadm and ip: the agent follows the kernel's changes, not only its timer.
    const log = await core.readNamespacedPodLog({ name: pod.metadata!.name!, namespace: ns.name });
    expect(log.split('\n').filter((line) => line.includes('change feed unavailable'))).toEqual([]);
  }, 90_000);

  test('reserves real hugepages for a HugepagePool through /host/sys and gives them back', async () => {
    expect(pod).toBeDefined();
    poolName = `${ns.name}-2mi`;
    const before = readNode0Pages();
    await applyNodeHugepagePool(client, poolName, node.name, POOL_PAGES);
    const reported = await waitUntil('the agent to report the pool reserved', async () => {
      const current = await client.get<NfvNode>(resources.nfvNodes, node.name);
      const entry = current.status?.hugepagePools?.find((p) => p.pool === poolName && p.numaNode === 0);
      return entry?.allocated === POOL_PAGES ? entry : undefined;
    }, { timeoutMs: 60_000 });
    expect(reported).toMatchObject({ requested: POOL_PAGES, allocated: POOL_PAGES });
    expect(readNode0Pages()).toBe(before + POOL_PAGES);

    await client.delete(resources.hugepagePools, poolName);
    await waitUntil('the agent to give the pages back', () => readNode0Pages() === before, { timeoutMs: 60_000 });
    poolName = undefined;
    expect(pciDrivers()).toEqual(driversBefore);
  }, 150_000);
});
