/**
 * One test file of VNFs on the REAL node (`real-node.ts`: kubelet, containerd, runc): the real
 * controller (in-process) places them on `nfv-real-0`, where the real node agent, a host process
 * on a built sysfs/dev tree with one fake NIC (`real-agent-fixture.ts`), prepares the host and
 * serves its kubelet device plugins (`nfv.dev/vfio-group-<N>`, `nfv.dev/uio-<pci>` and the pool's
 * `nfv.dev/hugepages-2Mi`).
 *
 * The tree has no user-space driver loaded: the test loads one (`tree.kernel.addDriver`) when it
 * wants the agent's binding to succeed, and plays what that driver makes (`real-node-fixture.ts`).
 * The HugepagePool reserves on the tree's counters, so the machine's nr_hugepages is never set to
 * a value read earlier and the file needs not the machine-wide hugepage lock.
 *
 * Also what these tests read back: a VNF's pod, its log and runtime spec, the Node's device-plugin
 * resources, and what a VNF's teardown may have left behind.
 */
import { CoreV1Api, type KubeConfig, type V1Node, type V1NodeStatus, type V1Pod } from '@kubernetes/client-node';
import { existsSync } from 'node:fs';
import { posix } from 'node:path';
import type { Logger } from 'pino';
import { API_VERSION, NFV_NODE_LABEL, VNF_NAME_LABEL } from '../../src/api/group.js';
import type { NfvNode } from '../../src/api/nfv-node.js';
import type { NicDriver, VirtualNetworkFunction } from '../../src/api/virtual-network-function.js';
import { resources } from '../../src/controllers/resources.js';
import { KubeClient } from '../../src/runtime/kube-client.js';
import { coreResources } from '../../src/runtime/kube-object.js';
import { detectCgroupLayout, findPodCgroup } from '../../node-agent/host/cgroup-layout.js';
import { mountPointsUnder } from '../host/helpers/host-fixtures.js';
import { CleanupSteps } from './cleanup-steps.js';
import { createTestNamespace, e2eCluster, e2eKubeConfig, type TestNamespace } from './e2e-env.js';
import { installCrds } from './install-crds.js';
import { startOperator, SUITE_LABEL, waitForVnfCondition, type OperatorReplica } from './nfv-fixture.js';
import { AgentProcess, NfvHostTree, TREE_NIC_POOLS, type TreeNic } from './real-agent-fixture.js';
import { RealNode, REAL_NODE_TAINT, type InspectedContainer } from './real-node.js';
import { applyNodeHugepagePool } from './real-node-fixture.js';
import { waitUntil, type WaitOptions } from './wait-until.js';

/** The image of the VNFs and control pods: a POSIX sh, perl, stat and fallocate. */
export const DEBIAN_IMAGE = 'nfv-operator/debian:bookworm';

/** A shell function `probe <path>`: opens a device read-write and prints `open <path>: ok` or the error. */
export const OPEN_PROBE = `probe() { if out=$(perl -e 'sysopen(my $f, $ARGV[0], 2) or die "$!\\n"' "$1" 2>&1); then echo "open $1: ok"; else echo "open $1: $out"; fi; }`;

/** Shell lines that print `node <path>: <file type> <major>:<minor>` (hex) and then probe each device node. */
export function probeDeviceNodes(paths: readonly string[]): string {
  return [OPEN_PROBE, `for n in ${paths.join(' ')}; do echo "node $n: $(stat -c '%F %t:%T' $n 2>&1)"; probe $n; done`].join('\n');
}

/** `<label>: <text>` lines of a log, as a map. */
export function logLines(log: string): Map<string, string> {
  return new Map(log.split('\n').filter((line) => line.includes(': ')).map((line) => [line.slice(0, line.indexOf(': ')), line.slice(line.indexOf(': ') + 2)]));
}

/** When the scheduler bound the pod, in ms since the epoch; the API server keeps whole seconds. */
export function podScheduledAt(pod: V1Pod): number {
  return Date.parse(pod.status!.conditions!.find((c) => c.type === 'PodScheduled')!.lastTransitionTime as unknown as string);
}

/** When each step of a pod's admission happened, for their order and the test's report. */
export class AdmissionTimeline {
  private readonly events = new Map<string, number>();

  /** Records `event` now, or at `at` (ms since the epoch). */
  mark(event: string, at = Date.now()): void {
    this.events.set(event, at);
  }

  /** When `event` happened; throws if it was not marked. */
  at(event: string): number {
    const at = this.events.get(event);
    if (at === undefined) throw new Error(`no "${event}" in the admission timeline`);
    return at;
  }

  /** `first +0ms, second +120ms, ...`, in the order they happened. */
  toString(): string {
    const sorted = [...this.events].sort((a, b) => a[1] - b[1]);
    return sorted.map(([event, at]) => `${event} +${at - sorted[0]![1]}ms`).join(', ');
  }
}

/** How to set up a {@link RealNodeVnfFixture}. */
export interface RealNodeVnfFixtureOptions {
  /** Names the namespace, the tree's temp dir, the operator, and the node label the VNFs select. */
  suite: string;
  /** The tree's only NIC; pool `fast` holds it. */
  nic: TreeNic;
  /** 2Mi pages of the node's HugepagePool (the tree has one NUMA node). */
  poolPages: number;
  logger: Logger;
}

/** What a VNF of the suite is made of besides the defaults. */
export interface SuiteVnfShape {
  /** Run by `sh -c` in the VNF's container. */
  script: string;
  /** The driver of its one interface, on a NIC of pool `fast`; none: no interface. */
  driver?: NicDriver;
  /** 2Mi pages from the suite's pool. */
  pages: number;
}

/** What a torn-down VNF left behind; every list is empty when nothing is. */
export interface VnfLeftovers {
  /** Mounts under the state root (the hugetlbfs, the masks). */
  mounts: string[];
  /** The VNF's host-path root, if it still exists. */
  hostPaths: string[];
  /** Ledger entries on the node. */
  allocations: unknown[];
  /** The pod's cgroups in the cpuset and hugetlb hierarchies. */
  podCgroups: string[];
}

/**
 * See the file comment. {@link start} in `beforeAll` and {@link stop} in `afterAll`: stop undoes
 * whatever start got to, and the test's own host setup registered with {@link undoAfterNodeStops}.
 */
export class RealNodeVnfFixture {
  readonly kc: KubeConfig = e2eKubeConfig();
  readonly core: CoreV1Api;
  readonly client: KubeClient;
  /** The following are set by {@link start}. */
  ns!: TestNamespace;
  node!: RealNode;
  tree!: NfvHostTree;
  poolName!: string;
  agent?: AgentProcess;
  private operator?: OperatorReplica;
  private readonly hostUndos: Array<{ what: string; undo: () => unknown }> = [];

  constructor(private readonly options: RealNodeVnfFixtureOptions) {
    this.core = this.kc.makeApiClient(CoreV1Api);
    this.client = new KubeClient(this.kc, { userAgent: `nfv-e2e-${options.suite}` });
  }

  /**
   * Starts everything. `prepareHost` runs once the tree is built and before the node starts,
   * since containerd reads the host's device nodes (the plugin's host paths) as it creates a
   * container: what the test adds to the tree and the host, each part registered with
   * {@link undoAfterNodeStops} as soon as it exists.
   */
  async start(prepareHost: (tree: NfvHostTree) => Promise<void>): Promise<void> {
    const { suite, nic, poolPages, logger } = this.options;
    await installCrds(this.client);
    this.ns = await createTestNamespace(suite, this.kc);
    this.poolName = `${this.ns.name}-2mi`;

    // One NUMA node of 2 CPUs like this machine, so the masks the pod mounts over sysfs exist here.
    this.tree = await NfvHostTree.build(`nfv-e2e-${suite}`, { numaNodes: 1, nics: [nic], vfioPci: false, realHugepages: false });
    await prepareHost(this.tree);

    const cluster = e2eCluster();
    this.node = await RealNode.start({ server: cluster.server, pkiDir: posix.join(cluster.tmpDir, 'pki'), kubeConfig: this.kc, images: [DEBIAN_IMAGE], logger });
    await this.client.mergePatch(coreResources.nodes, this.node.name, { metadata: { labels: { [SUITE_LABEL]: suite, [NFV_NODE_LABEL]: 'true' } } });

    await applyNodeHugepagePool(this.client, this.poolName, this.node.name, poolPages);
    this.agent = AgentProcess.start({
      nodeName: this.node.name,
      kubeconfigPath: cluster.kubeconfigPath,
      stateRoot: this.tree.stateRoot,
      roots: this.tree.roots,
      nicPools: TREE_NIC_POOLS,
      logFile: this.tree.path('agent.log'),
      devicePluginDir: this.node.devicePluginDir,
      nriSocket: this.node.nriSocket,
      podResourcesSocket: this.node.podResourcesSocket,
      metricsAddress: '0',
    });
    this.operator = startOperator(this.kc, `${suite}-operator`, { stateRoot: this.tree.stateRoot });
  }

  /** Registers an undo of the test's host setup: run after the node stopped and before the tree is deleted, last first. */
  undoAfterNodeStops(what: string, undo: () => unknown): void {
    this.hostUndos.push({ what, undo });
  }

  /** Undoes everything, every step even after a failed one; throws with every failure and the agent's log. */
  async stop(): Promise<void> {
    const cleanup = new CleanupSteps();
    const step = (what: string, action: () => unknown) => cleanup.run(what, action);
    const { client, ns, node, tree, agent } = this;
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
      const timer = setTimeout(() => agent.kill('SIGKILL'), 10_000);
      await agent.exited;
      clearTimeout(timer);
    });
    await step('stop the operator', () => this.operator?.stop());
    await step('stop the real node', () => node?.stop());
    for (const { what, undo } of this.hostUndos.splice(0).reverse()) await step(what, undo);
    // The agent's log is in the tree.
    const agentLog = agent ? `\nagent log:\n${agent.logTail()}` : '';
    await step('delete the host tree', () => tree?.cleanup());
    await step('delete the pool', () => this.poolName && client.delete(resources.hugepagePools, this.poolName).catch(() => undefined));
    await step('delete the NfvNode', () => node && client.delete(resources.nfvNodes, node.name).catch(() => undefined));
    await step('delete the namespace', () => ns?.delete({ wait: false }));
    client.close();
    cleanup.throwIfFailed(agentLog);
  }

  getVnf(name: string): Promise<VirtualNetworkFunction> {
    return this.client.get<VirtualNetworkFunction>(resources.vnfs, name, { namespace: this.ns.name });
  }

  /** Waits for a VNF condition; on timeout the error carries the VNF's conditions and the agent's log. */
  async waitForCondition(name: string, type: string, status: string, reason?: string, timeoutMs?: number): Promise<VirtualNetworkFunction> {
    try {
      return await waitForVnfCondition((vnf) => this.getVnf(vnf), name, type, status, reason, timeoutMs);
    } catch (err) {
      const conditions = await this.getVnf(name).then((vnf) => JSON.stringify(vnf.status?.conditions), (e: Error) => e.message);
      throw new Error(`${(err as Error).message}
conditions: ${conditions}
agent log:
${this.agent?.logTail(15)}`);
    }
  }

  /** The VNF `name` of this suite: one CPU, `pages` 2Mi pages from the suite's pool, one NIC of pool `fast` if it has a driver. */
  vnf(name: string, { script, driver, pages }: SuiteVnfShape): VirtualNetworkFunction {
    return {
      apiVersion: API_VERSION,
      kind: 'VirtualNetworkFunction',
      metadata: { name, namespace: this.ns.name },
      spec: {
        image: DEBIAN_IMAGE,
        command: ['sh', '-c', script],
        cpus: { count: 1, fullCores: false },
        hugepages: { pageSize: '2Mi', amount: `${pages * 2}Mi`, pool: this.poolName },
        interfaces: driver ? [{ name: 'uplink', device: { pool: 'fast' }, driver }] : [],
        links: [],
        nodeSelector: { [SUITE_LABEL]: this.options.suite },
        tolerations: [{ ...REAL_NODE_TAINT, operator: 'Equal' }],
      },
    };
  }

  /** Deletes the VNF and waits until its finalizer is gone, i.e. the agent reported TornDown. */
  async deleteVnf(name: string): Promise<void> {
    await this.client.delete(resources.vnfs, name, { namespace: this.ns.name });
    await waitUntil(`VNF ${name} to be gone`, () => this.getVnf(name).then(() => false, (err: { code?: number }) => err.code === 404), { timeoutMs: 90_000 });
  }

  /** The agent's NfvNode, once it has published its inventory and its pools. */
  waitForNfvNode(): Promise<NfvNode> {
    return waitUntil(
      'the agent to publish its NfvNode',
      async () => {
        const current = await this.client.get<NfvNode>(resources.nfvNodes, this.node.name).catch(() => undefined);
        return current?.status?.inventory && current.status.hugepagePools?.length ? current : undefined;
      },
      { timeoutMs: 60_000 },
    );
  }

  readNode(): Promise<V1Node> {
    return this.core.readNode({ name: this.node.name });
  }

  /** Waits until the Node's status passes `test`: kubelet reports device-plugin changes with its next status update. */
  waitForNodeStatus(what: string, test: (status: V1NodeStatus) => boolean, opts: WaitOptions = { timeoutMs: 60_000 }): Promise<V1NodeStatus> {
    return waitUntil(
      what,
      async () => {
        const { status } = await this.readNode();
        return status && test(status) ? status : undefined;
      },
      opts,
    );
  }

  /** The pod of the VNF `vnfName`, if it exists. */
  async vnfPod(vnfName: string): Promise<V1Pod | undefined> {
    const { items } = await this.core.listNamespacedPod({ namespace: this.ns.name, labelSelector: `${VNF_NAME_LABEL}=${vnfName}` });
    return items[0];
  }

  /** Waits until the scheduler has refused the VNF's pod for want of `resource`. */
  waitForUnschedulable(vnfName: string, resource: string): Promise<V1Pod> {
    return waitUntil(`the pod of ${vnfName} to be unschedulable for want of ${resource}`, async () => {
      const current = await this.vnfPod(vnfName);
      const scheduled = current?.status?.conditions?.find((c) => c.type === 'PodScheduled');
      return scheduled?.status === 'False' && scheduled.message?.includes(`Insufficient ${resource}`) ? current : undefined;
    });
  }

  /** Waits until the VNF's container runs. */
  waitForRunningPod(vnfName: string, timeoutMs = 90_000): Promise<V1Pod> {
    return waitUntil(
      `the pod of ${vnfName} to run`,
      async () => {
        const current = await this.vnfPod(vnfName);
        return current?.status?.containerStatuses?.[0]?.state?.running ? current : undefined;
      },
      { timeoutMs },
    );
  }

  /** The pod's log once it holds `until`. */
  podLog(podName: string, until: string): Promise<string> {
    return waitUntil(`pod ${podName} to log "${until}"`, async () => {
      const log = await this.core.readNamespacedPodLog({ name: podName, namespace: this.ns.name }).catch(() => '');
      return log.includes(until) ? log : undefined;
    });
  }

  /** `crictl inspect` of the pod's first container: containerd's runtime spec and the process id. */
  inspectContainer(pod: V1Pod): Promise<InspectedContainer> {
    return this.node.inspectContainer(pod.status!.containerStatuses![0]!.containerID!.replace(/^containerd:\/\//, ''));
  }

  /** What the teardown of `vnf`, whose pod had `podUid`, left on the host and in the ledger. */
  async leftovers(vnf: VirtualNetworkFunction, podUid: string): Promise<VnfLeftovers> {
    const root = vnf.status!.placement!.hostPaths.root;
    const nfvNode = await this.client.get<NfvNode>(resources.nfvNodes, this.node.name);
    const layout = await detectCgroupLayout('/sys/fs/cgroup');
    const podCgroups = await Promise.all([layout.cpuset!, layout.hugetlb!].map((hierarchy) => findPodCgroup(hierarchy.path, podUid)));
    return {
      mounts: mountPointsUnder(this.tree.stateRoot),
      hostPaths: existsSync(root) ? [root] : [],
      allocations: nfvNode.status!.allocations ?? [],
      podCgroups: podCgroups.filter((dir): dir is string => dir !== undefined),
    };
  }
}
