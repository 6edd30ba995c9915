/**
 * Issue 5, point 1: the images build from hack/build-images.sh (no registry: a debootstrapped
 * base), and the l3fwd VNF image routes traffic when it runs as the pod the operator renders,
 * prepared by the node agent (the l2fwd image is proved the same way in dataplane-isolation and
 * dataplane-memif-chain).
 */
import { readFileSync } from 'node:fs';
import { jest } from '@jest/globals';
import type { VirtualNetworkFunction } from '../../src/api/virtual-network-function.js';
import { lockHugepages, TempTree } from './helpers/host-fixtures.js';
import { FakePciBus } from './dataplane/fake-pci-bus.js';
import { buildImages, IMAGES, type ImageName } from './dataplane/images.js';
import { DockerRuntime, imageLabels, runInImage } from './dataplane/docker-runtime.js';
import { tearDownDataplane, type KubeletPod } from './dataplane/kubelet-pod.js';
import { OneNodeCluster } from './dataplane/one-node-cluster.js';
import { describeDataplane, missingPrerequisites } from './dataplane/prerequisites.js';
import { parseTestpmdOutput } from './dataplane/testpmd-output.js';
import { startVnfPod, VNF_CONTAINER } from './dataplane/vnf-pod-startup.js';

const MiB = 2 ** 20;
/** l3fwd's LPM tables (IPv4 and IPv6) need about 200 MiB of hugepages. */
const ROUTER_HUGEPAGES = 256 * MiB;
const TESTER_HUGEPAGES = 32 * MiB;

const missing = await missingPrerequisites(['root', 'hugepages', 'hugetlb-cgroup', 'docker']);

describeDataplane('the images', missing, () => {
  jest.setTimeout(120_000);
  const cgroupTop = `nfv-dataplane-${process.pid}`;
  const runtime = new DockerRuntime();
  let tree: TempTree;
  let cluster: OneNodeCluster;
  let unlock: (() => void) | undefined;
  const deployed: { vnf: VirtualNetworkFunction; pod?: KubeletPod }[] = [];

  beforeAll(async () => {
    await buildImages(Object.keys(IMAGES) as ImageName[]);
    unlock = await lockHugepages();
    tree = new TempTree('nfv-dataplane-images');
    cluster = await OneNodeCluster.start({
      stateRoot: tree.path('state'),
      isolatedCpus: [0, 1],
      poolPages: (ROUTER_HUGEPAGES + TESTER_HUGEPAGES) / (2 * MiB),
      pciBus: new FakePciBus(tree.path('fake-sys'), []),
    });
  }, 40 * 60_000);

  afterAll(async () => {
    try {
      for (const { pod } of deployed) await pod?.delete();
      for (const { vnf } of deployed.reverse()) await cluster?.delete(vnf);
    } finally {
      await tearDownDataplane({ runtime, cgroupTop, cluster, tree, unlock });
    }
  });

  test('every image is built, from the debootstrapped base, and the Node images run Node 20', async () => {
    for (const tag of Object.values(IMAGES)) {
      expect((await imageLabels(tag))['dev.nfv.image']).toBeTruthy();
    }
    for (const tag of [IMAGES.operator, IMAGES['node-agent']]) {
      expect(await runInImage(runtime, tag, ['node', '--version'])).toEqual({ code: 0, output: expect.stringMatching(/^v20\./) });
    }
    const patches = await runInImage(runtime, IMAGES['dpdk-base'], ['cat', '/usr/share/doc/nfv-operator/dpdk-patches']);
    expect(patches).toEqual({ code: 0, output: readFileSync(new URL('../../patches/series', import.meta.url), 'utf8') });
  });

  test('the l3fwd VNF routes generated IPv4 traffic by its LPM table, over the memif link of its spec', async () => {
    // router (l3fwd): port 0 is the link to the tester, port 1 a net_ring of its own (l3fwd's
    // default config polls two ports). tester (testpmd): sends a first burst of UDP to 198.18.0.1,
    // which l3fwd's default LPM table routes to port 0, back over the link; testpmd's io
    // forwarding sends whatever comes back out again, so the packets circulate through l3fwd.
    // The tester receives only what l3fwd routed.
    const router = cluster.create('router', {
      image: IMAGES.l3fwd,
      cpus: { count: 1 },
      hugepages: { pageSize: '2Mi', amount: `${ROUTER_HUGEPAGES / MiB}Mi`, pool: OneNodeCluster.POOL },
      links: [{ name: 'tester', peer: 'tester', role: 'server' }],
      args: ['--vdev', 'net_ring0', '--'],
    });
    const tester = cluster.create('tester', {
      image: IMAGES.l2fwd,
      cpus: { count: 1 },
      hugepages: { pageSize: '2Mi', amount: `${TESTER_HUGEPAGES / MiB}Mi`, pool: OneNodeCluster.POOL },
      links: [{ name: 'router', peer: 'router', role: 'client' }],
      args: ['--port-topology=loop', '--tx-first', '--tx-ip=198.18.1.1,198.18.0.1', '--stats-period', '1', '--total-num-mbufs', '4096'],
    });
    for (const vnf of [router, tester]) {
      const entry: (typeof deployed)[number] = { vnf };
      deployed.push(entry);
      entry.pod = await startVnfPod(cluster, vnf, cluster.place(vnf).pod, { cgroupTop, runtime });
    }
    const [routerPod, testerPod] = deployed.map((d) => d.pod!);

    // The tester first: testpmd waits for its link before it sends the first burst, and l3fwd
    // would wait up to 9 s for a link without a client.
    const testpmd = testerPod!.start(VNF_CONTAINER);
    await testpmd.waitFor('the link check', /Checking link statuses/);
    const l3fwd = routerPod!.start(VNF_CONTAINER);
    await l3fwd.waitFor('the main loop', /entering main loop on lcore/);
    await testpmd.waitFor('routed packets received', (output) => parseTestpmdOutput(output).stats.some((s) => s.port === 0 && s.rxPps > 0));
    expect(l3fwd.output).toContain('Port 0 modified Rx offloads based on hardware support');
    expect(await l3fwd.isRunning()).toBe(true);
  });
});
