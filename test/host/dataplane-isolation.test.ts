/**
 * Issue 5, point 3, end to end through the project's own code: an l2fwd VNF (Debian's
 * dpdk-testpmd 22.11 in the l2fwd image) is
 *
 * - created as the API server holds it (the CRD's zod schema) and placed by the VNF controller's
 *   plan on this machine's inventory (its CPUs, NUMA node and a 2Mi HugepagePool that the node
 *   agent's code reserves), which renders its pod;
 * - prepared by the node agent's prepare(): hugetlbfs with size=, the PCI and CPU masks, then the
 *   cpuset and hugetlb limits on the pod's cgroup and the ready signal;
 * - run as the rendered pod, by each of the two runtimes of the data-plane tests: Docker (through
 *   testcontainers, with the VNF image) and the namespace sandbox (the image's entrypoint with the
 *   host's DPDK): the init gate, then the VNF container with the pod's volumes, devices,
 *   capabilities and environment, its cgroup under the pod cgroup;
 * - torn down by the agent, which leaves nothing behind.
 *
 * Every assertion about isolation reads the app's own output (EAL and testpmd), or what the
 * kernel charged to the pod's cgroup. The node isolates only its last CPU (isolcpus=), so the
 * VNF gets that one and CPU 0 stays foreign. Its NIC is a fake X710 on a fake PCI bus beside
 * another one that is not the VNF's: the machine's own devices are never shown to EAL.
 */
import { jest } from '@jest/globals';
import { existsSync, readFileSync, statfsSync } from 'node:fs';
import { posix } from 'node:path';
import { parseCpuList } from '../../src/api/cpu-list.js';
import type { VirtualNetworkFunction } from '../../src/api/virtual-network-function.js';
import { PodCgroupMissingError } from '../../node-agent/host/pod-cgroups.js';
import type { VnfHostPlan } from '../../node-agent/validate.js';
import { lockHugepages, mountPointsUnder, TempTree } from './helpers/host-fixtures.js';
import type { ContainerProcess, ContainerRuntime } from './dataplane/container-process.js';
import { DockerRuntime } from './dataplane/docker-runtime.js';
import { FakePciBus } from './dataplane/fake-pci-bus.js';
import { buildImages, IMAGES } from './dataplane/images.js';
import { kubeletCgroupsLeft, tearDownDataplane, type KubeletPod } from './dataplane/kubelet-pod.js';
import { OneNodeCluster } from './dataplane/one-node-cluster.js';
import { podContainer } from './dataplane/pod-container-spec.js';
import { describeDataplane, missingPrerequisites, type Prerequisite } from './dataplane/prerequisites.js';
import { SandboxRuntime } from './dataplane/sandbox-runtime.js';
import { maxHeapBytes, parseTestpmdOutput } from './dataplane/testpmd-output.js';
import { startVnfPod, VNF_CONTAINER } from './dataplane/vnf-pod-startup.js';

const MiB = 2 ** 20;
/** The VNF's hugepages: spec.hugepages.amount. */
const ALLOCATION = 64 * MiB;
const OWN_DEVICE = '0000:81:00.0';
const FOREIGN_DEVICE = '0000:81:00.1';
const PCI_ADDRESS = /\b[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]\b/g;

/** The runtimes that run the rendered pod, and what each needs from the machine. */
const RUNTIMES: { name: string; needs: Prerequisite[]; create: (tree: TempTree) => ContainerRuntime; usesImages: boolean }[] = [
  { name: 'Docker', needs: ['docker'], create: () => new DockerRuntime(), usesImages: true },
  // The sandbox runs the image's entrypoint with the host's dpdk-testpmd.
  { name: 'the namespace sandbox', needs: ['dpdk'], create: (tree) => new SandboxRuntime(tree.path('sandbox')), usesImages: false },
];

for (const [index, { name: runtimeName, needs, create, usesImages }] of RUNTIMES.entries()) {
  const missing = await missingPrerequisites(['root', 'hugepages', 'hugetlb-cgroup', ...needs]);

  describeDataplane(`an l2fwd VNF placed by the controller, prepared by the node agent, run as its rendered pod by ${runtimeName}`, missing, () => {
    jest.setTimeout(90_000);
    const nodeCpus = parseCpuList(readFileSync('/sys/devices/system/cpu/present', 'utf8').trim());
    const vnfCpu = nodeCpus.at(-1)!;
    const cgroupTop = `nfv-dataplane-${process.pid}-${index}`;
    let runtime: ContainerRuntime;
    let tree: TempTree;
    let bus: FakePciBus;
    let cluster: OneNodeCluster;
    let unlock: (() => void) | undefined;
    /** What the running test deployed, removed in afterEach whatever happened. */
    let deployed: { vnf: VirtualNetworkFunction; pod?: KubeletPod } | undefined;

    beforeAll(async () => {
      if (usesImages) await buildImages(['l2fwd']);
      unlock = await lockHugepages();
      tree = new TempTree('nfv-dataplane-l2fwd');
      runtime = create(tree);
      bus = new FakePciBus(tree.path('fake-sys'), [OWN_DEVICE, FOREIGN_DEVICE]);
      cluster = await OneNodeCluster.start({ stateRoot: tree.path('state'), isolatedCpus: [vnfCpu], poolPages: ALLOCATION / (2 * MiB), pciBus: bus });
    }, 40 * 60_000);

    afterEach(async () => {
      if (!deployed) return;
      const { vnf, pod } = deployed;
      deployed = undefined;
      await pod?.delete();
      await cluster.delete(vnf);
    });

    afterAll(async () => {
      await tearDownDataplane({ runtime, cgroupTop, cluster, tree, unlock });
    });

    /**
     * Creates, places and starts an l2fwd VNF whose one NIC is the fake X710 (driver kernel: the
     * agent leaves the device on the fake vfio-pci it is bound to; binding is driver-binding's
     * test, and this kernel has no VFIO). `args` is spec.args, as a user writes it: EAL options
     * (the virtual ports) before "--", testpmd options after.
     */
    async function deployL2fwd(name: string, args: string[]): Promise<{ vnf: VirtualNetworkFunction; plan: VnfHostPlan; pod: KubeletPod; app: ContainerProcess }> {
      const vnf = cluster.create(name, {
        image: IMAGES.l2fwd,
        cpus: { count: 1 },
        hugepages: { pageSize: '2Mi', amount: `${ALLOCATION / MiB}Mi`, pool: OneNodeCluster.POOL },
        interfaces: [{ name: 'port0', device: { pciAddress: OWN_DEVICE }, driver: 'kernel' }],
        args,
      });
      deployed = { vnf };
      const placed = cluster.place(vnf);
      const plan = cluster.hostPlan(vnf);
      // The agent's PCI mask links into the fake bus; a container sees the links' targets where the
      // host has them, as it sees the real /sys/devices that real links point to.
      const pod = await startVnfPod(cluster, vnf, placed.pod, {
        cgroupTop,
        runtime,
        extraMounts: [{ source: bus.root, target: bus.root, readOnly: true, reason: 'the fake PCI devices the mask links to' }],
      });
      deployed.pod = pod;
      return { vnf, plan, pod, app: pod.start(VNF_CONTAINER) };
    }

    /** Deletes the pod and the VNF, and checks that the agent left nothing of it on the host. */
    async function remove(vnf: VirtualNetworkFunction, plan: VnfHostPlan, pod: KubeletPod): Promise<void> {
      deployed = undefined;
      await pod.delete();
      await cluster.delete(vnf);
      expect(mountPointsUnder(cluster.stateRoot)).toEqual([]);
      expect(existsSync(plan.paths.root)).toBe(false);
      expect(existsSync(posix.join(cluster.stateRoot, 'journal', `${plan.uid}.jsonl`))).toBe(false);
      await expect(cluster.host.podCgroups.locate(pod.uid)).rejects.toBeInstanceOf(PodCgroupMissingError);
    }

    /** The CPUs the kernel lets the container run on: its cgroup, which Docker made under the pod cgroup. */
    async function containerCpus(pod: KubeletPod, app: ContainerProcess): Promise<string> {
      const layout = await cluster.host.podCgroups.hierarchies();
      const { cpuset } = await cluster.host.podCgroups.locate(pod.uid);
      const file = layout.cpuset!.version === 1 ? 'cpuset.effective_cpus' : 'cpuset.cpus.effective';
      return readFileSync(posix.join(cpuset!, await app.cgroupName(), file), 'utf8').trim();
    }

    const envOf = (pod: KubeletPod, name: string) => podContainer(pod.pod, VNF_CONTAINER).env!.find((e) => e.name === name)!.value!;
    const forwarding = /Logical Core \d+ \(socket \d+\) forwards packets/;
    const nullPorts = ['--vdev', 'net_null0', '--vdev', 'net_null1'];

    test.each(['io', 'macswap'])('forwards in %s mode, seeing only its lcores, its PCI device and its hugepages', async (mode) => {
      const { vnf, plan, pod, app } = await deployL2fwd(`l2fwd-${mode}`, ['--log-level=lib.eal:debug', ...nullPorts, '--', `--forward-mode=${mode}`, '--stats-period', '1']);

      // What the controller placed and rendered, and the agent prepared.
      expect(vnf.status!.placement).toMatchObject({ node: OneNodeCluster.NODE, cpus: String(vnfCpu), hugepages: { bytes: ALLOCATION, pageSize: '2Mi' } });
      expect(envOf(pod, 'NFV_EAL_ARGS')).toBe(`-l ${vnfCpu} --huge-dir /dev/hugepages --file-prefix vnf-${vnf.metadata.uid!.slice(0, 8)} --socket-mem ${ALLOCATION / MiB} -a ${OWN_DEVICE}`);

      await app.waitFor('forwarding', forwarding);
      await app.waitFor('traffic', (output) => parseTestpmdOutput(output).stats.some((s) => s.port === 1 && s.rxPps > 0));
      const inUse = { hugetlbfs: usedBytes(plan.paths.hugepages), cgroup: await cluster.hugetlbUsage(pod.uid), containerCpus: await containerCpus(pod, app) };
      expect(await app.stop()).toBe(0);
      await app.waitFor('the final statistics', /Bye\.\.\./);
      const report = parseTestpmdOutput(app.output);

      // lcores: EAL detects the VNF's one CPU; the entrypoint put the main and the forwarding lcore
      // on it (--lcores 0@C,1@C), and lcore 1 forwards. The agent's cpuset holds Docker's container.
      expect(report.detectedLcores).toBe(1);
      expect(app.output).toContain(`EAL: Detected lcore ${vnfCpu} as core`);
      expect([...app.output.matchAll(/lcore (\d+) is ready \(tid=\w+;cpuset=\[([\d,-]+)\]\)/g)].map((m) => [m[1], m[2]])).toEqual([
        ['0', String(vnfCpu)],
        ['1', String(vnfCpu)],
      ]);
      expect(report.forwardingLcores).toEqual([1]);
      expect(inUse.containerCpus).toBe(String(vnfCpu));
      // PCI: EAL scans only the VNF's device; the other fake NIC and the machine's own devices are
      // not in its view at all. Without VFIO in this kernel it cannot use it, so the ports are vdevs.
      expect(report.pciDevices).toEqual([OWN_DEVICE]);
      expect(app.output).toContain(`EAL: Requested device ${OWN_DEVICE} cannot be used`);
      expect([...new Set(app.output.match(PCI_ADDRESS))]).toEqual([OWN_DEVICE]);
      expect(app.output).toContain(`${mode} packet forwarding - ports=2 - cores=1`);
      // Packets went through.
      expect(report.totals!.rxPackets).toBeGreaterThan(1_000_000);
      expect(report.totals!.txPackets).toBe(report.totals!.rxPackets);
      expect(report.cyclesPerPacket).toBeGreaterThan(0);
      // Hugepages: EAL's heap, the hugetlbfs files and the pod cgroup's charge stay within the
      // allocation; the agent's limit is the allocation, and it was never hit.
      expect(maxHeapBytes(app.output)).toBeGreaterThan(0);
      expect(maxHeapBytes(app.output)).toBeLessThanOrEqual(ALLOCATION);
      expect(inUse.hugetlbfs).toBeGreaterThan(0);
      expect(inUse.hugetlbfs).toBeLessThanOrEqual(ALLOCATION);
      expect(inUse.cgroup).toMatchObject({ limit: ALLOCATION, limitHits: 0 });
      expect(inUse.cgroup.bytes).toBeLessThanOrEqual(ALLOCATION);
      expect(report.memoryErrors).toEqual([]);

      await remove(vnf, plan, pod);
    });

    test('asking EAL for more hugepage memory than the allocation fails at start with ENOMEM, not SIGBUS', async () => {
      // spec.args' --socket-mem comes after the operator's and wins: twice the allocation.
      const { vnf, plan, pod, app } = await deployL2fwd('l2fwd-overask-start', ['--log-level=lib.eal:debug', '--socket-mem', String((2 * ALLOCATION) / MiB), ...nullPorts, '--']);
      const code = await app.exitCode();
      const report = parseTestpmdOutput(app.output);

      expect(code).toBe(1);
      expect(report.fatal).toEqual({ code: 1, cause: 'Cannot init EAL: Cannot allocate memory' });
      // EAL's "available" is the node's free hugepages, not the mount's size=: on a node whose
      // only free pages are the pool's (the allocation) it refuses before mapping anything; where
      // other free pages make up the difference, mmap fails at the mount's size= instead
      // (patches/README.md, section 4). Either way nothing beyond the allocation is mapped.
      const requested = `Requested: ${(2 * ALLOCATION) / MiB}MB`;
      const refusals = [new RegExp(`EAL: Not enough memory available on socket 0! ${requested}, available: (\\d+)MB`), /EAL: alloc_seg\(\): mmap\(\) failed: Cannot allocate memory/];
      expect(refusals.some((refusal) => refusal.test(app.output))).toBe(true);
      const available = refusals[0]!.exec(app.output)?.[1];
      if (available !== undefined) expect(Number(available)).toBeGreaterThanOrEqual(ALLOCATION / MiB);
      expect(app.output).not.toMatch(/Bus error|SIGBUS: Cannot mmap/);
      expect(usedBytes(plan.paths.hugepages)).toBeLessThanOrEqual(ALLOCATION);
      await remove(vnf, plan, pod);
    });

    test('asking for more at run time (a bigger mbuf pool) fails with ENOMEM, not SIGBUS', async () => {
      // testpmd's default pool: 155456 mbufs of 2176 bytes, about 330 MiB.
      const { vnf, plan, pod, app } = await deployL2fwd('l2fwd-overask-run', [...nullPorts, '--', '--total-num-mbufs', '155456']);
      const code = await app.exitCode();

      expect(code).toBe(1);
      expect(parseTestpmdOutput(app.output).fatal).toEqual({ code: 1, cause: 'Creation of mbuf pool for socket 0 failed: Cannot allocate memory' });
      expect(app.output).not.toMatch(/Bus error|SIGBUS/);
      await remove(vnf, plan, pod);
    });

    test('--in-memory, which bypasses the hugetlbfs mount, is stopped by the agent’s hugetlb limit on the pod cgroup', async () => {
      // With --in-memory EAL backs its memory with anonymous hugepages, outside the mount, so
      // size= cannot bound it (patches/README.md, section 5): only the pod cgroup's limit does.
      const { vnf, plan, pod, app } = await deployL2fwd('l2fwd-in-memory', ['--in-memory', ...nullPorts, '--', '--total-num-mbufs', '155456']);
      const code = await app.exitCode();
      const cgroup = await cluster.hugetlbUsage(pod.uid);

      expect(code).toBe(1);
      expect(parseTestpmdOutput(app.output).fatal).toEqual({ code: 1, cause: 'Creation of mbuf pool for socket 0 failed: Cannot allocate memory' });
      expect(app.output).not.toMatch(/Bus error/);
      expect(usedBytes(plan.paths.hugepages)).toBe(0);
      expect(cgroup.limit).toBe(ALLOCATION);
      expect(cgroup.limitHits).toBeGreaterThan(0);
      await remove(vnf, plan, pod);
    });

    test('the node is left as it was: no mounts, cgroups, journals or containers, and nr_hugepages restored', async () => {
      await cluster.stop();
      expect(await cluster.hugepageTotals()).toEqual(cluster.hugepageTotalsBefore);
      expect(mountPointsUnder(tree.dir)).toEqual([]);
      expect(kubeletCgroupsLeft(cgroupTop)).toEqual([]);
      expect(await cluster.journals.uids()).toEqual([]);
      expect(await runtime.containers()).toEqual([]);
    });
  });
}

/** Bytes in use in a hugetlbfs mount (its files). */
function usedBytes(dir: string): number {
  const stats = statfsSync(dir);
  return (stats.blocks - stats.bfree) * stats.bsize;
}
