/**
 * Issue 5, point 3: a VNF's DPDK app (Debian's dpdk-testpmd 22.11) inside the isolation the node
 * agent prepares (hugetlbfs with size=, cpuset and hugetlb cgroups, masked CPU and PCI sysfs) in
 * a namespace sandbox. Every assertion reads the app's own output.
 */
import { readFileSync } from 'node:fs';
import { parseCpuList } from '../../src/api/cpu-list.js';
import { ExtraHugepages, lockHugepages, TempTree } from './helpers/host-fixtures.js';
import { describeDataplane, missingPrerequisites } from './dataplane/prerequisites.js';
import { SandboxedApp } from './dataplane/sandbox.js';
import { jest } from '@jest/globals';
import { lcoreArgs, maxHeapBytes, parseTestpmdOutput } from './dataplane/testpmd-output.js';
import { FakePciBus, VnfIsolation, type VnfAllocation } from './dataplane/vnf-isolation.js';

const MiB = 2 ** 20;
const ALLOCATION = 64 * MiB;
/** Enough free 2 MiB pages for the largest run: --in-memory with testpmd's default mbuf pool (~340 MiB). */
const PAGES = 256;
const OWN_DEVICE = '0000:81:00.0';
const FOREIGN_DEVICE = '0000:81:00.1';

const missing = await missingPrerequisites(['root', 'dpdk', 'hugepages', 'hugetlb-cgroup']);

describeDataplane('dpdk-testpmd inside the isolation of a VNF', missing, () => {
  jest.setTimeout(60_000);
  const nodeCpus = parseCpuList(readFileSync('/sys/devices/system/cpu/present', 'utf8').trim());
  /** The VNF's CPU: the last one, so that on a 2-CPU machine CPU 0 stays foreign. */
  const vnfCpu = nodeCpus.at(-1)!;
  let tree: TempTree;
  let bus: FakePciBus;
  let pages: ExtraHugepages;
  let unlock: () => void;
  const isolations: VnfIsolation[] = [];

  beforeAll(async () => {
    unlock = await lockHugepages();
    pages = new ExtraHugepages();
    pages.ensureFree(PAGES);
    tree = new TempTree('nfv-dataplane');
    bus = new FakePciBus(tree.path('fake-sys'), [OWN_DEVICE, FOREIGN_DEVICE]);
  });

  afterAll(async () => {
    for (const isolation of isolations) await isolation.destroy();
    await tree?.cleanup();
    pages?.cleanup();
    unlock?.();
  });

  async function prepare(name: string, overrides: Partial<VnfAllocation> = {}): Promise<VnfIsolation> {
    const isolation = await VnfIsolation.prepare(tree.path(name), { name, cpus: [vnfCpu], hugepageBytes: ALLOCATION, pciDevices: [OWN_DEVICE], ...overrides }, bus);
    isolations.push(isolation);
    return isolation;
  }

  /** testpmd's arguments: EAL options as the operator renders them, then io forwarding between two net_null ports. */
  function testpmdArgs(isolation: VnfIsolation, eal: string[], app: string[] = []): string[] {
    return [
      ...lcoreArgs(isolation.allocation.cpus),
      '--huge-dir',
      isolation.hugepageDir,
      '--file-prefix',
      `vnf-${isolation.allocation.name}`,
      '--vdev',
      'net_null0',
      '--vdev',
      'net_null1',
      ...eal,
      '--',
      '--forward-mode=io',
      '--auto-start',
      '--stats-period',
      '1',
      '--record-core-cycles',
      ...app,
    ];
  }

  test('forwards packets, seeing only its lcores, its PCI devices and its hugepages', async () => {
    const isolation = await prepare('fwd');
    const app = SandboxedApp.start('testpmd', isolation, 'dpdk-testpmd', testpmdArgs(isolation, ['--socket-mem', '32', '--log-level=lib.eal:debug'], ['--total-num-mbufs', '8192']));
    await app.waitFor(/NIC statistics for port 1\s+#+\s+RX-packets:\s+[1-9]/);
    const inUse = { hugetlbfs: isolation.hugetlbfsUsedBytes(), cgroup: isolation.hugetlbCgroupUsage()! };
    const exit = await app.stop();
    const report = parseTestpmdOutput(exit.output);

    expect(exit.code).toBe(0);
    // lcores: EAL detects the VNF's one CPU, pins both lcores to it, and forwards on lcore 1.
    expect(report.detectedLcores).toBe(1);
    expect(exit.output).toContain(`EAL: Detected lcore ${vnfCpu} as core`);
    expect([...exit.output.matchAll(/lcore \d+ is ready \(tid=\w+;cpuset=\[([\d,-]+)\]\)/g)].map((m) => m[1])).toEqual([String(vnfCpu), String(vnfCpu)]);
    expect(report.forwardingLcores).toEqual([1]);
    // PCI: EAL scans only the VNF's device (the other fake NIC and the machine's real devices
    // are not in its view); without VFIO in this kernel it cannot use it, so the ports are the vdevs.
    expect(report.pciDevices).toEqual([OWN_DEVICE]);
    expect(exit.output).toContain(`EAL: Requested device ${OWN_DEVICE} cannot be used`);
    expect([...report.ports.keys()]).toEqual([0, 1]);
    // Packets went through.
    expect(report.totals!.rxPackets).toBeGreaterThan(1_000_000);
    expect(report.totals!.txPackets).toBe(report.totals!.rxPackets);
    expect(report.cyclesPerPacket).toBeGreaterThan(0);
    // Hugepages: what EAL's heap grew to, the hugetlbfs files and the cgroup charge stay within the allocation.
    expect(maxHeapBytes(exit.output)).toBeGreaterThan(0);
    expect(maxHeapBytes(exit.output)).toBeLessThanOrEqual(ALLOCATION);
    expect(inUse.hugetlbfs).toBeGreaterThan(0);
    expect(inUse.hugetlbfs).toBeLessThanOrEqual(ALLOCATION);
    expect(inUse.cgroup.bytes).toBeLessThanOrEqual(ALLOCATION);
    expect(inUse.cgroup.limitHits).toBe(0);
    expect(report.memoryErrors).toEqual([]);
  });

  test('asking for a CPU outside its allocation fails at EAL init, naming the lcore', async () => {
    const foreign = nodeCpus.find((cpu) => cpu !== vnfCpu);
    if (foreign === undefined) throw new Error('this test needs a machine with at least 2 CPUs');
    const isolation = await prepare('cpus');
    const args = testpmdArgs(isolation, ['--socket-mem', '32'], ['--total-num-mbufs', '8192']);
    args.splice(0, 2, '-l', `${foreign},${vnfCpu}`);
    const exit = await SandboxedApp.start('testpmd', isolation, 'dpdk-testpmd', args).exited;

    expect(exit.code).toBe(1);
    expect(exit.output).toContain('EAL: Detected CPU lcores: 1');
    expect(exit.output).toContain(`EAL: lcore ${foreign} unavailable`);
  });

  test('asking for more hugepage memory than the allocation at start fails with ENOMEM, not SIGBUS', async () => {
    const isolation = await prepare('overask-start');
    const exit = await SandboxedApp.start('testpmd', isolation, 'dpdk-testpmd', testpmdArgs(isolation, ['--socket-mem', String((2 * ALLOCATION) / MiB)])).exited;
    const report = parseTestpmdOutput(exit.output);

    expect(exit.code).toBe(1);
    expect(exit.output).not.toMatch(/killed by SIG/);
    expect(report.fatal).toEqual({ code: 1, cause: 'Cannot init EAL: Cannot allocate memory' });
    expect(exit.output).toContain('EAL: FATAL: Cannot init memory');
    // EAL leaves the pages it did get as files in the mount: they stay charged, within the allocation.
    expect(isolation.hugetlbfsUsedBytes()).toBeLessThanOrEqual(ALLOCATION);
    expect(isolation.hugetlbCgroupUsage()!.bytes).toBeLessThanOrEqual(ALLOCATION);
  });

  test('running out of the allocation at runtime fails the allocation with a clear error, not SIGBUS', async () => {
    const isolation = await prepare('overask-runtime');
    // testpmd's default mbuf pool (155456 mbufs of 2176 bytes) is about 330 MiB.
    const exit = await SandboxedApp.start('testpmd', isolation, 'dpdk-testpmd', testpmdArgs(isolation, [])).exited;
    const report = parseTestpmdOutput(exit.output);

    expect(exit.code).toBe(1);
    expect(exit.output).not.toMatch(/killed by SIG/);
    expect(report.fatal).toEqual({ code: 1, cause: 'Creation of mbuf pool for socket 0 failed: Cannot allocate memory' });
  });

  test('size= alone does not bound --in-memory, which backs memory outside the mount: the hugetlb cgroup must', async () => {
    const unbounded = await prepare('inmem-nocgroup', { hugetlbCgroupBytes: null });
    const app = SandboxedApp.start('testpmd', unbounded, 'dpdk-testpmd', testpmdArgs(unbounded, ['--in-memory', '--log-level=lib.eal:debug']));
    await app.waitFor(/Logical Core 1 \(socket \d+\) forwards packets/);
    const mountUsed = unbounded.hugetlbfsUsedBytes();
    const exit = await app.stop();
    expect(exit.code).toBe(0);
    expect(maxHeapBytes(exit.output)).toBeGreaterThan(ALLOCATION);
    expect(mountUsed).toBe(0);

    const bounded = await prepare('inmem-cgroup');
    const failed = await SandboxedApp.start('testpmd', bounded, 'dpdk-testpmd', testpmdArgs(bounded, ['--in-memory'])).exited;
    expect(failed.code).toBe(1);
    expect(failed.output).not.toMatch(/killed by SIG/);
    expect(parseTestpmdOutput(failed.output).fatal).toEqual({ code: 1, cause: 'Creation of mbuf pool for socket 0 failed: Cannot allocate memory' });
    expect(bounded.hugetlbCgroupUsage()!.limitHits).toBeGreaterThan(0);
  });
});
