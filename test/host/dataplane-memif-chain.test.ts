/**
 * Issue 5, point 4: two VNFs chained by net_memif, each in its own container (so its own network
 * namespace) with the agent's mounts. The link's socket is a file in a directory both pods mount:
 * abstract sockets live in a network namespace, so they cannot join two pods.
 *
 * VNF "edge" (client) forwards between a net_null port, which generates traffic, and the memif
 * link; VNF "core" (server) sends everything back on the link with MACs swapped. Packets that
 * edge receives on the link went edge -> core -> edge.
 *
 * The recovery tests also run with Debian's own librte_net_memif.so.23.0 mounted over the
 * image's patched one: they show what patches/ fixes.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { jest } from '@jest/globals';
import { parseCpuList } from '../../src/api/cpu-list.js';
import { ExtraHugepages, lockHugepages, TempTree } from './helpers/host-fixtures.js';
import { VnfContainers, type RunningVnf } from './dataplane/docker-vnf.js';
import { buildImages, IMAGES } from './dataplane/images.js';
import { describeDataplane, missingPrerequisites } from './dataplane/prerequisites.js';
import { lcoreArgs, parseTestpmdOutput } from './dataplane/testpmd-output.js';
import { FakePciBus, VnfIsolation, type PodMount } from './dataplane/vnf-isolation.js';

const MiB = 2 ** 20;
const LINK_MOUNT = '/run/memif/chain';
const DEBIAN_MEMIF_PMD = '/usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0/librte_net_memif.so.23.0';
/** edge's ports: 0 is net_null (traffic source and sink), 1 the memif link. core's only port 0 is the link. */
const EDGE_LINK_PORT = 1;
const CORE_LINK_PORT = 0;

const missing = await missingPrerequisites(['root', 'dpdk', 'hugepages', 'docker']);

describeDataplane('a chain of two VNFs over net_memif', missing, () => {
  jest.setTimeout(120_000);
  const nodeCpus = parseCpuList(readFileSync('/sys/devices/system/cpu/present', 'utf8').trim());
  const [edgeCpu, coreCpu] = [nodeCpus[0]!, nodeCpus.at(-1)!];
  let tree: TempTree;
  let bus: FakePciBus;
  let pages: ExtraHugepages;
  let unlock: () => void;
  const containers = new VnfContainers();
  const isolations: VnfIsolation[] = [];
  let run = 0;

  beforeAll(async () => {
    await buildImages(['l2fwd']);
    unlock = await lockHugepages();
    pages = new ExtraHugepages();
    pages.ensureFree(64);
    tree = new TempTree('nfv-dataplane-chain');
    bus = new FakePciBus(tree.path('fake-sys'), []);
  }, 30 * 60_000);

  afterEach(async () => {
    await containers.removeAll();
    for (const isolation of isolations.splice(0)) await isolation.destroy();
  });

  afterAll(async () => {
    await containers.removeAll();
    await tree?.cleanup();
    pages?.cleanup();
    unlock?.();
  });

  /** A fresh link directory and the two VNFs' isolations (each 64 MiB of hugepages, one CPU). */
  async function prepareChain(): Promise<{ link: PodMount; edge: VnfIsolation; core: VnfIsolation }> {
    run++;
    const link = { source: tree.path(`memif-${run}`, 'edge.core'), target: LINK_MOUNT };
    const [edge, core] = await Promise.all(
      (['edge', 'core'] as const).map((name) =>
        VnfIsolation.prepare(tree.path(`${name}-${run}`), { name, cpus: [name === 'edge' ? edgeCpu : coreCpu], hugepageBytes: 32 * MiB, pciDevices: [] }, bus, { cgroups: false }),
      ),
    );
    isolations.push(edge!, core!);
    mkdirSync(link.source, { recursive: true });
    return { link, edge: edge!, core: core! };
  }

  interface StartOptions {
    abstract?: boolean;
    /** Mount Debian's unpatched memif PMD over the image's. */
    debianPmd?: boolean;
  }

  function ealArgs(isolation: VnfIsolation, vdevs: string[]): string {
    return [...lcoreArgs(isolation.allocation.cpus), '--huge-dir', '/dev/hugepages', '--file-prefix', `vnf-${isolation.allocation.name}`, '--socket-mem', '24', ...vdevs.flatMap((v) => ['--vdev', v])].join(' ');
  }

  function memifVdev(role: 'server' | 'client', abstract: boolean): string {
    return `net_memif0,role=${role},id=0,socket=${LINK_MOUNT}/memif.sock,socket-abstract=${abstract ? 'yes' : 'no'}`;
  }

  function startVnf(role: 'server' | 'client', isolation: VnfIsolation, link: PodMount, options: StartOptions = {}): Promise<RunningVnf> {
    const vdevs = role === 'client' ? ['net_null0', memifVdev('client', options.abstract ?? false)] : [memifVdev('server', options.abstract ?? false)];
    return containers.start({
      name: role === 'client' ? 'edge' : 'core',
      image: IMAGES.l2fwd,
      isolation,
      env: { NFV_EAL_ARGS: ealArgs(isolation, vdevs), NFV_L2FWD_MODE: role === 'client' ? 'io' : 'macswap', NFV_STATS_PERIOD: '1' },
      command: role === 'server' ? ['--port-topology=loop', '--total-num-mbufs=4096'] : ['--total-num-mbufs=4096'],
      mounts: [link, ...(options.debianPmd ? [{ source: DEBIAN_MEMIF_PMD, target: DEBIAN_MEMIF_PMD }] : [])],
      ready: /packet forwarding - ports=\d+/,
    });
  }

  const waitForText = (vnf: RunningVnf, text: string) => vnf.waitUntil(`"${text}"`, (output) => output.includes(text));

  /** Periodic statistics blocks of `port` printed so far. */
  const blocks = (vnf: RunningVnf, port: number) => parseTestpmdOutput(vnf.output).stats.filter((s) => s.port === port);

  /** Waits for a statistics block, after the first `after` ones, in which `port` received packets. */
  async function waitForTraffic(vnf: RunningVnf, port: number, after = blocks(vnf, port).length): Promise<void> {
    await vnf.waitUntil(`traffic on port ${port}`, () => blocks(vnf, port).slice(after).some((s) => s.rxPps > 0));
  }

  /** Asserts that `port` receives nothing during the next `seconds` while the VNF keeps running and reporting. */
  async function expectNoTraffic(vnf: RunningVnf, port: number, seconds: number): Promise<void> {
    const after = blocks(vnf, port).length;
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    const later = blocks(vnf, port).slice(after + 1);
    expect(later.length).toBeGreaterThan(0);
    expect(later.every((s) => s.rxPps === 0)).toBe(true);
    expect(await vnf.isRunning()).toBe(true);
  }

  test('traffic flows end to end over a non-abstract socket across the two network namespaces', async () => {
    const { link, edge, core } = await prepareChain();
    const server = await startVnf('server', core, link);
    const client = await startVnf('client', edge, link);
    await waitForTraffic(client, EDGE_LINK_PORT);
    await waitForTraffic(server, CORE_LINK_PORT);
    for (const vnf of [client, server]) {
      const report = parseTestpmdOutput(vnf.output);
      expect(report.detectedLcores).toBe(1);
      expect(report.pciDevices).toEqual([]);
    }
  });

  test('an abstract socket does not reach across network namespaces', async () => {
    const { link, edge, core } = await prepareChain();
    await startVnf('server', core, link, { abstract: true });
    const client = await startVnf('client', edge, link, { abstract: true });
    await expectNoTraffic(client, EDGE_LINK_PORT, 3);
    await waitForText(client, `memif_connect_client(): Failed to connect socket: ${LINK_MOUNT}/memif.sock.`);
  });

  test('a killed server leaves the client running; the restarted server replaces its stale socket and the client reconnects', async () => {
    const { link, edge, core } = await prepareChain();
    const server = await startVnf('server', core, link);
    const client = await startVnf('client', edge, link);
    await waitForTraffic(client, EDGE_LINK_PORT);

    await server.kill();
    await expectNoTraffic(client, EDGE_LINK_PORT, 3);

    const restarted = await startVnf('server', core, link);
    await waitForText(restarted, `memif_socket_create(): Replacing stale socket file ${LINK_MOUNT}/memif.sock.`);
    await waitForTraffic(client, EDGE_LINK_PORT);
    await waitForTraffic(restarted, CORE_LINK_PORT);
  });

  test('a killed client leaves the server running; the restarted client connects again', async () => {
    const { link, edge, core } = await prepareChain();
    const server = await startVnf('server', core, link);
    const client = await startVnf('client', edge, link);
    await waitForTraffic(server, CORE_LINK_PORT);

    await client.kill();
    await expectNoTraffic(server, CORE_LINK_PORT, 3);

    const restarted = await startVnf('client', edge, link);
    await waitForTraffic(restarted, EDGE_LINK_PORT);
    await waitForTraffic(server, CORE_LINK_PORT);
  });

  test('a client started before its server connects once the server is up', async () => {
    const { link, edge, core } = await prepareChain();
    const client = await startVnf('client', edge, link);
    await expectNoTraffic(client, EDGE_LINK_PORT, 2);
    await startVnf('server', core, link);
    await waitForTraffic(client, EDGE_LINK_PORT);
  });

  describe("with Debian's unpatched memif PMD (what patches/ fixes)", () => {
    test('a killed server cannot restart on its stale socket and runs on without ports', async () => {
      const { link, edge, core } = await prepareChain();
      const server = await startVnf('server', core, link, { debianPmd: true });
      const client = await startVnf('client', edge, link, { debianPmd: true });
      await waitForTraffic(client, EDGE_LINK_PORT);
      await server.kill();
      const restarted = await startVnf('server', core, link, { debianPmd: true });
      await waitForText(restarted, `memif_socket_create(): Failed to setup socket ${LINK_MOUNT}/memif.sock: Address already in use`);
      await waitForText(restarted, 'macswap packet forwarding - ports=0');
      expect(await restarted.isRunning()).toBe(true);
    });

    test('the client never reconnects to a restarted server', async () => {
      const { link, edge, core } = await prepareChain();
      const server = await startVnf('server', core, link, { debianPmd: true });
      const client = await startVnf('client', edge, link, { debianPmd: true });
      await waitForTraffic(client, EDGE_LINK_PORT);
      await server.kill();
      rmSync(`${link.source}/memif.sock`);
      await startVnf('server', core, link, { debianPmd: true });
      await expectNoTraffic(client, EDGE_LINK_PORT, 4);
    });
  });
});
