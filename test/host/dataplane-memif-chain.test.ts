/**
 * Issue 5, point 4, end to end through the project's own code: a chain of two VNFs declared in
 * their custom resources with spec.links. The VNF controller places both on this node (the end
 * whose name sorts first goes first, the other follows it) and renders their pods: each mounts the
 * link's directory at /run/memif/<link> and gets the link's net_memif vdev in NFV_EAL_ARGS, with a
 * non-abstract socket file in that directory. The node agent creates the directory (shared by the
 * two ends, named after the server and the client) and removes it with the last end. Each pod
 * runs with Docker (through testcontainers) in its own network namespace.
 *
 * VNF "edge" (client) forwards between the link and a net_null port, which generates traffic;
 * VNF "core" (server) sends everything back on the link with MACs swapped. Packets that edge
 * receives on the link went edge -> core -> edge.
 *
 * The recovery tests also run with Debian's own librte_net_memif.so.23.0 mounted over the
 * image's patched one: they show what patches/ fixes.
 */
import { jest } from '@jest/globals';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { posix } from 'node:path';
import { memifLinkDir } from '../../src/api/host-paths.js';
import type { VirtualNetworkFunction } from '../../src/api/virtual-network-function.js';
import { findCondition } from '../../src/runtime/conditions.js';
import { lockHugepages, mountPointsUnder, TempTree } from './helpers/host-fixtures.js';
import type { ContainerProcess } from './dataplane/container-process.js';
import { DockerRuntime } from './dataplane/docker-runtime.js';
import { FakePciBus } from './dataplane/fake-pci-bus.js';
import { buildImages, IMAGES } from './dataplane/images.js';
import { kubeletCgroupsLeft, tearDownDataplane, type KubeletPod } from './dataplane/kubelet-pod.js';
import { OneNodeCluster, type VnfSpecInput } from './dataplane/one-node-cluster.js';
import { podContainer, type ExtraBindMount } from './dataplane/pod-container-spec.js';
import { describeDataplane, missingPrerequisites } from './dataplane/prerequisites.js';
import { parseTestpmdOutput } from './dataplane/testpmd-output.js';
import { startVnfPod, VNF_CONTAINER } from './dataplane/vnf-pod-startup.js';

const MiB = 2 ** 20;
const ALLOCATION = 32 * MiB;
const LINK = 'chain';
const SOCKET = `/run/memif/${LINK}/memif.sock`;
const DEBIAN_MEMIF_PMD = '/usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0/librte_net_memif.so.23.0';
/** edge's ports: the rendered memif vdev comes first (port 0), then its own net_null (port 1). core's only port 0 is the link. */
const EDGE_LINK_PORT = 0;
const CORE_LINK_PORT = 0;

const missing = await missingPrerequisites(['root', 'dpdk', 'hugepages', 'hugetlb-cgroup', 'docker']);

describeDataplane('a chain of two VNFs linked by net_memif in spec.links', missing, () => {
  jest.setTimeout(120_000);
  const cgroupTop = `nfv-dataplane-${process.pid}`;
  const runtime = new DockerRuntime();
  let tree: TempTree;
  let cluster: OneNodeCluster;
  let unlock: (() => void) | undefined;
  /** VNFs and pods of the running test, removed in afterEach whatever happened. */
  let chain: Chain | undefined;

  interface Chain {
    core: VirtualNetworkFunction;
    edge: VirtualNetworkFunction;
    pods: { core?: KubeletPod; edge?: KubeletPod };
    /** The link's directory on the host. */
    linkDir: string;
  }

  beforeAll(async () => {
    await buildImages(['l2fwd']);
    unlock = await lockHugepages();
    tree = new TempTree('nfv-dataplane-chain');
    // Both CPUs are isolated: one VNF on each.
    cluster = await OneNodeCluster.start({
      stateRoot: tree.path('state'),
      isolatedCpus: [0, 1],
      poolPages: (2 * ALLOCATION) / (2 * MiB),
      pciBus: new FakePciBus(tree.path('fake-sys'), []),
    });
  }, 30 * 60_000);

  afterEach(async () => {
    if (!chain) return;
    const { core, edge, pods } = chain;
    chain = undefined;
    for (const pod of [pods.core, pods.edge]) await pod?.delete();
    for (const vnf of [edge, core]) await cluster.delete(vnf);
  });

  afterAll(async () => {
    await tearDownDataplane({ runtime, cgroupTop, cluster, tree, unlock });
  });

  /** An l2fwd VNF with one memif link to `peer`; `args` is spec.args as a user writes it. */
  function spec(peer: string, role: 'server' | 'client', args: string[]): VnfSpecInput {
    return {
      image: IMAGES.l2fwd,
      cpus: { count: 1 },
      hugepages: { pageSize: '2Mi', amount: `${ALLOCATION / MiB}Mi`, pool: OneNodeCluster.POOL },
      links: [{ name: LINK, peer, role, id: 0 }],
      args,
    };
  }

  /** Creates both VNFs, places them and starts their pods up to the VNF container, as a node would. */
  async function deployChain(options: { debianPmd?: boolean } = {}): Promise<Chain> {
    const stats = ['--stats-period', '1', '--total-num-mbufs', '4096'];
    const core = cluster.create('core', spec('edge', 'server', ['--forward-mode=macswap', '--port-topology=loop', ...stats]));
    const edge = cluster.create('edge', spec('core', 'client', ['--vdev', 'net_null0', '--', '--forward-mode=io', ...stats]));
    chain = { core, edge, pods: {}, linkDir: memifLinkDir(posix.join(cluster.stateRoot, 'memif'), OneNodeCluster.NAMESPACE, 'core', 'edge') };
    // Neither end is placed: "core" sorts first and goes first, "edge" waits for it.
    const waiting = cluster.reconcile(edge);
    expect(findCondition(waiting.status?.conditions, 'Placed')).toMatchObject({ status: 'False', reason: 'WaitingForPeer' });
    const placed = { core: cluster.place(core), edge: cluster.place(edge) };
    const extraMounts: ExtraBindMount[] = options.debianPmd ? [{ source: DEBIAN_MEMIF_PMD, target: DEBIAN_MEMIF_PMD, readOnly: true, reason: "Debian's unpatched memif PMD over the image's patched one" }] : [];
    chain.pods.core = await startVnfPod(cluster, core, placed.core.pod, { cgroupTop, runtime, extraMounts });
    chain.pods.edge = await startVnfPod(cluster, edge, placed.edge.pod, { cgroupTop, runtime, extraMounts });
    return chain;
  }

  /** Starts (or restarts) the VNF container of a pod. */
  function start(pod: KubeletPod, env?: Record<string, string>): ContainerProcess {
    return pod.start(VNF_CONTAINER, env ? { env } : {});
  }

  const envOf = (pod: KubeletPod, name: string) => podContainer(pod.pod, VNF_CONTAINER).env!.find((e) => e.name === name)!.value!;
  const running = (vnf: ContainerProcess) => vnf.waitFor('packet forwarding', /packet forwarding - ports=\d+/);

  /** Periodic statistics blocks of `port` printed so far. */
  const blocks = (vnf: ContainerProcess, port: number) => parseTestpmdOutput(vnf.output).stats.filter((s) => s.port === port);

  /** Waits for a statistics block, after the first `after` ones, in which `port` received packets. */
  async function waitForTraffic(vnf: ContainerProcess, port: number, after = blocks(vnf, port).length): Promise<void> {
    await vnf.waitFor(`traffic on port ${port}`, () => blocks(vnf, port).slice(after).some((s) => s.rxPps > 0));
  }

  /** Asserts that `port` receives nothing during the next `seconds` while the VNF keeps running and reporting. */
  async function expectNoTraffic(vnf: ContainerProcess, port: number, seconds: number): Promise<void> {
    const after = blocks(vnf, port).length;
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    const later = blocks(vnf, port).slice(after + 1);
    expect(later.length).toBeGreaterThan(0);
    expect(later.every((s) => s.rxPps === 0)).toBe(true);
    expect(await vnf.isRunning()).toBe(true);
  }

  test('traffic flows end to end, both ways, over the socket the pods were rendered with', async () => {
    const { core, edge, pods, linkDir } = await deployChain();
    // One node, one NUMA node, a CPU each; the rendered vdevs and the link directory both pods mount.
    expect(core.status!.placement!.node).toBe(edge.status!.placement!.node);
    expect(new Set([core.status!.placement!.cpus, edge.status!.placement!.cpus])).toEqual(new Set(['0', '1']));
    expect(envOf(pods.core!, 'NFV_EAL_ARGS')).toContain(`--vdev net_memif0,role=server,id=0,socket=${SOCKET},socket-abstract=no`);
    expect(envOf(pods.edge!, 'NFV_EAL_ARGS')).toContain(`--vdev net_memif0,role=client,id=0,socket=${SOCKET},socket-abstract=no`);
    for (const pod of [pods.core!, pods.edge!]) expect(pod.pod.spec!.volumes!.find((v) => v.name === `memif-${LINK}`)!.hostPath!.path).toBe(linkDir);
    expect(existsSync(linkDir)).toBe(true);

    const server = start(pods.core!);
    await running(server);
    const client = start(pods.edge!);
    await running(client);
    await waitForTraffic(client, EDGE_LINK_PORT);
    await waitForTraffic(server, CORE_LINK_PORT);
    expect(existsSync(posix.join(linkDir, 'memif.sock'))).toBe(true);
    const last = (vnf: ContainerProcess, port: number) => blocks(vnf, port).at(-1)!;
    // edge -> core: core receives and sends back; core -> edge: edge receives on the link.
    expect(last(server, CORE_LINK_PORT).txPackets).toBeGreaterThan(0);
    expect(last(client, EDGE_LINK_PORT).txPackets).toBeGreaterThan(0);
    for (const vnf of [client, server]) {
      const report = parseTestpmdOutput(vnf.output);
      expect(report.detectedLcores).toBe(1);
      // No interfaces, so no -a: EAL probes every PCI device it sees, and its mask shows none.
      expect(report.pciDevices).toEqual([]);
      expect(vnf.output).not.toContain('Probe PCI driver');
    }
  });

  test('an abstract socket would not reach across the two network namespaces (why the operator renders socket-abstract=no)', async () => {
    const { pods } = await deployChain();
    const abstract = (pod: KubeletPod) => ({ NFV_EAL_ARGS: envOf(pod, 'NFV_EAL_ARGS').replace('socket-abstract=no', 'socket-abstract=yes') });
    await running(start(pods.core!, abstract(pods.core!)));
    const client = start(pods.edge!, abstract(pods.edge!));
    await running(client);
    await expectNoTraffic(client, EDGE_LINK_PORT, 3);
    await client.waitFor('the failed connection', (output) => output.includes(`memif_connect_client(): Failed to connect socket: ${SOCKET}.`));
  });

  test('a killed server leaves the client running; the restarted server replaces its stale socket and the client reconnects', async () => {
    const { pods } = await deployChain();
    const server = start(pods.core!);
    await running(server);
    const client = start(pods.edge!);
    await waitForTraffic(client, EDGE_LINK_PORT);

    expect(await server.kill()).toBe(137);
    await expectNoTraffic(client, EDGE_LINK_PORT, 3);

    // kubelet restarts the container in the same pod (restartPolicy Always).
    const restarted = start(pods.core!);
    await restarted.waitFor('the stale socket replaced', (output) => output.includes(`memif_socket_create(): Replacing stale socket file ${SOCKET}.`));
    await waitForTraffic(client, EDGE_LINK_PORT);
    await waitForTraffic(restarted, CORE_LINK_PORT);
  });

  test('a stopped client leaves the server running; the restarted client connects again', async () => {
    const { pods } = await deployChain();
    const server = start(pods.core!);
    await running(server);
    const client = start(pods.edge!);
    await waitForTraffic(server, CORE_LINK_PORT);

    expect(await client.stop()).toBe(0);
    await expectNoTraffic(server, CORE_LINK_PORT, 3);

    const restarted = start(pods.edge!);
    await waitForTraffic(restarted, EDGE_LINK_PORT);
    await waitForTraffic(server, CORE_LINK_PORT);
  });

  test('a client started before its server connects once the server is up', async () => {
    const { pods } = await deployChain();
    const client = start(pods.edge!);
    await running(client);
    await expectNoTraffic(client, EDGE_LINK_PORT, 2);
    start(pods.core!);
    await waitForTraffic(client, EDGE_LINK_PORT);
  });

  describe("with Debian's unpatched memif PMD (what patches/ fixes)", () => {
    test('a killed server cannot restart on its stale socket and runs on without ports', async () => {
      const { pods } = await deployChain({ debianPmd: true });
      const server = start(pods.core!);
      await running(server);
      const client = start(pods.edge!);
      await waitForTraffic(client, EDGE_LINK_PORT);
      await server.kill();
      const restarted = start(pods.core!);
      await restarted.waitFor('the bind failure', (output) => output.includes(`memif_socket_create(): Failed to setup socket ${SOCKET}: Address already in use`));
      await restarted.waitFor('a testpmd without ports', (output) => output.includes('macswap packet forwarding - ports=0'));
      expect(await restarted.isRunning()).toBe(true);
    });

    test('the client never reconnects to a restarted server', async () => {
      const { pods, linkDir } = await deployChain({ debianPmd: true });
      const server = start(pods.core!);
      await running(server);
      const client = start(pods.edge!);
      await waitForTraffic(client, EDGE_LINK_PORT);
      await server.kill();
      rmSync(posix.join(linkDir, 'memif.sock'));
      await running(start(pods.core!));
      await expectNoTraffic(client, EDGE_LINK_PORT, 4);
    });
  });

  test('teardown by the agent leaves nothing: no link directory, mounts, cgroups, journals or containers; nr_hugepages restored', async () => {
    const { core, edge, pods, linkDir } = await deployChain();
    chain = undefined;
    for (const pod of [pods.core!, pods.edge!]) await pod.delete();
    // The link's directory stays while the other end still holds it.
    await cluster.delete(core);
    expect(existsSync(linkDir)).toBe(true);
    await cluster.delete(edge);
    expect(existsSync(linkDir)).toBe(false);
    expect(existsSync(posix.dirname(linkDir))).toBe(false);

    await cluster.stop();
    expect(mountPointsUnder(tree.dir)).toEqual([]);
    expect(kubeletCgroupsLeft(cgroupTop)).toEqual([]);
    expect(await cluster.journals.uids()).toEqual([]);
    expect(await runtime.containers()).toEqual([]);
    expect(await cluster.hugepageTotals()).toEqual(cluster.hugepageTotalsBefore);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(cluster.stateRoot);
  });
});
