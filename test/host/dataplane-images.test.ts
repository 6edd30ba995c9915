/**
 * Issue 5, point 1: the images build from hack/build-images.sh (no registry: a debootstrapped
 * base), and the VNF images run in containers carrying the agent's mounts: l2fwd forwards in io
 * and macswap mode and fails cleanly past its hugepages, l3fwd routes between two memif links.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { jest } from '@jest/globals';
import { parseCpuList } from '../../src/api/cpu-list.js';
import { ExtraHugepages, lockHugepages, TempTree } from './helpers/host-fixtures.js';
import { VnfContainers } from './dataplane/docker-vnf.js';
import { buildImages, IMAGES, type ImageName } from './dataplane/images.js';
import { DOCKER, describeDataplane, missingPrerequisites } from './dataplane/prerequisites.js';
import { lcoreArgs, parseTestpmdOutput } from './dataplane/testpmd-output.js';
import { FakePciBus, VnfIsolation, type VnfAllocation } from './dataplane/vnf-isolation.js';

const execFileAsync = promisify(execFile);
const MiB = 2 ** 20;
const OWN_DEVICE = '0000:81:00.0';

const missing = await missingPrerequisites(['root', 'hugepages', 'docker']);

describeDataplane('the images', missing, () => {
  jest.setTimeout(120_000);
  const nodeCpus = parseCpuList(readFileSync('/sys/devices/system/cpu/present', 'utf8').trim());
  const vnfCpu = nodeCpus.at(-1)!;
  let tree: TempTree;
  let bus: FakePciBus;
  let pages: ExtraHugepages;
  let unlock: () => void;
  const containers = new VnfContainers();
  const isolations: VnfIsolation[] = [];

  beforeAll(async () => {
    await buildImages(Object.keys(IMAGES) as ImageName[]);
    unlock = await lockHugepages();
    pages = new ExtraHugepages();
    pages.ensureFree(192);
    tree = new TempTree('nfv-dataplane-images');
    bus = new FakePciBus(tree.path('fake-sys'), [OWN_DEVICE, '0000:81:00.1']);
  }, 40 * 60_000);

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

  async function prepare(name: string, overrides: Partial<VnfAllocation> = {}): Promise<VnfIsolation> {
    const allocation = { name, cpus: [vnfCpu], hugepageBytes: 32 * MiB, pciDevices: [OWN_DEVICE], ...overrides };
    const isolation = await VnfIsolation.prepare(tree.path(name), allocation, bus, { cgroups: false });
    isolations.push(isolation);
    return isolation;
  }

  /** EAL options as the operator renders them; testpmd gets a second lcore on a single-CPU VNF. */
  const eal = (isolation: VnfIsolation, ...extra: string[]) => ealWith(lcoreArgs(isolation.allocation.cpus), isolation, ...extra);
  const ealWith = (lcores: string[], isolation: VnfIsolation, ...extra: string[]) =>
    [...lcores, '--huge-dir', '/dev/hugepages', '--file-prefix', `vnf-${isolation.allocation.name}`, ...extra].join(' ');

  test('every image is built, from the debootstrapped base, and the Node images run Node 20', async () => {
    for (const tag of Object.values(IMAGES)) {
      const { stdout } = await execFileAsync(DOCKER, ['image', 'inspect', '-f', '{{index .Config.Labels "dev.nfv.image"}}', tag]);
      expect(stdout.trim()).not.toBe('');
    }
    for (const tag of [IMAGES.operator, IMAGES['node-agent']]) {
      const { stdout } = await execFileAsync(DOCKER, ['run', '--rm', '--network', 'none', '--entrypoint', 'node', tag, '--version']);
      expect(stdout.trim()).toMatch(/^v20\./);
    }
    const { stdout } = await execFileAsync(DOCKER, ['run', '--rm', '--network', 'none', '--entrypoint', 'cat', IMAGES['dpdk-base'], '/usr/share/doc/nfv-operator/dpdk-patches']);
    expect(stdout).toBe(readFileSync(new URL('../../patches/series', import.meta.url), 'utf8'));
  });

  test.each(['io', 'macswap'])('the l2fwd VNF forwards in %s mode, seeing only its lcore and PCI device', async (mode) => {
    const isolation = await prepare(`l2fwd-${mode}`);
    const vnf = await containers.start({
      name: `l2fwd-${mode}`,
      image: IMAGES.l2fwd,
      isolation,
      env: { NFV_EAL_ARGS: eal(isolation, '--socket-mem', '24', '-a', OWN_DEVICE, '--vdev', 'net_null0', '--vdev', 'net_null1'), NFV_L2FWD_MODE: mode, NFV_STATS_PERIOD: '1' },
      ready: /Logical Core \d+ \(socket \d+\) forwards packets/,
    });
    await vnf.waitUntil('traffic', (output) => parseTestpmdOutput(output).stats.some((s) => s.port === 1 && s.rxPps > 0));
    expect(await vnf.stop()).toBe(0);
    await vnf.waitUntil('the final statistics', (output) => output.includes('Bye...'));
    const report = parseTestpmdOutput(vnf.output);

    expect(vnf.output).toContain(`${mode} packet forwarding - ports=2 - cores=1`);
    expect(report.detectedLcores).toBe(1);
    expect(report.pciDevices).toEqual([OWN_DEVICE]);
    expect(report.totals!.rxPackets).toBeGreaterThan(1_000_000);
    expect(report.cyclesPerPacket).toBeGreaterThan(0);
  });

  test('the l2fwd VNF asking for more hugepages than its mount holds exits with ENOMEM, not SIGBUS', async () => {
    const isolation = await prepare('l2fwd-overask');
    const vnf = await containers.start({
      name: 'l2fwd-overask',
      image: IMAGES.l2fwd,
      isolation,
      env: { NFV_EAL_ARGS: eal(isolation, '--socket-mem', '64', '--vdev', 'net_null0', '--vdev', 'net_null1') },
      ready: /EAL: Error - exiting with code/,
    });
    expect(await vnf.exitCode()).toBe(1);
    await vnf.waitUntil('the cause', (output) => /Cause: .*\n/.test(output));
    expect(parseTestpmdOutput(vnf.output).fatal).toEqual({ code: 1, cause: 'Cannot init EAL: Cannot allocate memory' });
  });

  test('the l3fwd VNF routes generated IPv4 traffic from one memif link to the other', async () => {
    // generator --link in--> l3fwd --link out--> sink. l3fwd's LPM tables (IPv4 and IPv6) need
    // about 200 MiB of hugepages. testpmd's txonly sends UDP to 198.18.1.1,
    // which l3fwd's default LPM table routes to port 1.
    const otherCpu = nodeCpus[0]!;
    const links = { in: tree.path('memif', 'gen.l3fwd'), out: tree.path('memif', 'l3fwd.sink') };
    for (const dir of Object.values(links)) mkdirSync(dir, { recursive: true });
    const memif = (role: string, link: string) => `net_memif0,role=${role},id=0,socket=/run/memif/${link}/memif.sock,socket-abstract=no`;
    const [router, generator, sink] = [await prepare('l3fwd', { hugepageBytes: 256 * MiB, pciDevices: [] }), await prepare('gen', { cpus: [otherCpu], pciDevices: [] }), await prepare('sink', { cpus: [otherCpu], pciDevices: [] })];

    const l3fwd = await containers.start({
      name: 'l3fwd',
      image: IMAGES.l3fwd,
      isolation: router!,
      env: {
        // l3fwd polls on every lcore, the main one included: one lcore, as the operator renders it.
        NFV_EAL_ARGS: ealWith(['-l', String(vnfCpu)], router!, '--vdev', memif('server', 'in'), '--vdev', memif('server', 'out').replace('net_memif0', 'net_memif1')),
      },
      mounts: [
        { source: links.in, target: '/run/memif/in' },
        { source: links.out, target: '/run/memif/out' },
      ],
      ready: /entering main loop on lcore/,
    });
    const testpmd = (isolation: VnfIsolation, link: 'in' | 'out', mode: string) =>
      containers.start({
        name: isolation.allocation.name,
        image: IMAGES.l2fwd,
        isolation,
        entrypoint: ['dpdk-testpmd'],
        env: {},
        command: [...eal(isolation, '--socket-mem', '24', '--vdev', memif('client', link)).split(' '), '--', `--forward-mode=${mode}`, '--tx-ip=198.18.0.1,198.18.1.1', '--auto-start', '--stats-period', '1', '--total-num-mbufs', '4096'],
        mounts: [{ source: link === 'in' ? links.in : links.out, target: `/run/memif/${link}` }],
        ready: /Logical Core \d+ \(socket \d+\) forwards packets/,
      });
    const receiver = await testpmd(sink!, 'out', 'rxonly');
    const sender = await testpmd(generator!, 'in', 'txonly');

    await sender.waitUntil('packets sent', (output) => parseTestpmdOutput(output).stats.some((s) => s.port === 0 && s.txPps > 0));
    await receiver.waitUntil('routed packets received', (output) => parseTestpmdOutput(output).stats.some((s) => s.port === 0 && s.rxPps > 0));
    expect(l3fwd.output).toContain('Port 0 modified Rx offloads based on hardware support');
    expect(await l3fwd.isRunning()).toBe(true);
  });
});
