/**
 * A stand-in for the node agent's preparation, kept for bench:dataplane only: its "isolated"
 * environment runs testpmd in a namespace sandbox (sandbox.ts), which needs the isolation at host
 * paths rather than as a pod's volumes, and its "host" baseline needs a hugetlbfs mount without
 * any isolation. The data-plane tests use the agent's own prepare() instead (one-node-cluster.ts).
 *
 * It builds what the agent builds: a hugetlbfs mount with size= at the allocation, a cpuset and
 * hugetlb cgroup, files listing only the VNF's CPUs for /sys/devices/system/cpu/{online,present,
 * possible}, an empty directory for each foreign /sys/devices/system/cpu/cpuN, and a PCI devices
 * directory holding only the VNF's devices (of a fake bus: never the machine's own).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, statfsSync, symlinkSync, writeFileSync } from 'node:fs';
import { posix } from 'node:path';
import { promisify } from 'node:util';
import { formatCpuList, parseCpuList } from '../../../src/api/cpu-list.js';
import type { FakePciBus } from './fake-pci-bus.js';
import { VnfCgroups } from './vnf-cgroups.js';

export { FakePciBus } from './fake-pci-bus.js';

const execFileAsync = promisify(execFile);

/** What one VNF is given. */
export interface VnfAllocation {
  /** Short name, unique among the VNFs of a test: names the cgroups. */
  name: string;
  cpus: readonly number[];
  hugepageBytes: number;
  /** PCI addresses from the fake bus. */
  pciDevices: readonly string[];
  /** hugetlb cgroup limit; default the allocation, null for none (to show what size= alone does). */
  hugetlbCgroupBytes?: number | null;
}

/** A bind mount of the pod: `source` on the host at `target` in the VNF's mount namespace. */
export interface PodMount {
  source: string;
  target: string;
}

/** The host side of one VNF's isolation; {@link VnfIsolation.destroy} undoes all of it. */
export class VnfIsolation {
  readonly hugepageDir: string;
  private cgroups: VnfCgroups | undefined;
  private mounted = false;

  private constructor(
    readonly root: string,
    readonly allocation: VnfAllocation,
    readonly mounts: PodMount[],
  ) {
    this.hugepageDir = posix.join(root, 'hugepages');
  }

  /**
   * Prepares the VNF under `root` (a fresh directory), as the agent would.
   *
   * @param options.cgroups false for no cgroups: the benchmark's host baseline (default true).
   */
  static async prepare(root: string, allocation: VnfAllocation, bus: FakePciBus, options: { cgroups?: boolean } = {}): Promise<VnfIsolation> {
    const nodeCpus = parseCpuList(readFileSync('/sys/devices/system/cpu/present', 'utf8').trim());
    const foreign = nodeCpus.filter((cpu) => !allocation.cpus.includes(cpu));
    const dirs = { cpu: posix.join(root, 'cpu'), empty: posix.join(root, 'empty'), pci: posix.join(root, 'pci-devices') };
    for (const dir of [...Object.values(dirs), posix.join(root, 'hugepages')]) mkdirSync(dir, { recursive: true });
    const cpuList = formatCpuList(allocation.cpus);
    const mounts: PodMount[] = [{ source: dirs.pci, target: '/sys/bus/pci/devices' }];
    for (const file of ['online', 'present', 'possible']) {
      writeFileSync(posix.join(dirs.cpu, file), `${cpuList}\n`);
      mounts.push({ source: posix.join(dirs.cpu, file), target: `/sys/devices/system/cpu/${file}` });
    }
    for (const cpu of foreign) mounts.push({ source: dirs.empty, target: `/sys/devices/system/cpu/cpu${cpu}` });
    for (const address of allocation.pciDevices) symlinkSync(bus.devicePath(address), posix.join(dirs.pci, address));
    // The links point into the fake bus: a container sees it where the host has it, as it sees
    // the real /sys/devices the agent's links point to.
    if (allocation.pciDevices.length > 0) mounts.push({ source: bus.root, target: bus.root });

    const isolation = new VnfIsolation(root, allocation, mounts);
    try {
      await execFileAsync('mount', ['-t', 'hugetlbfs', '-o', `pagesize=2M,size=${allocation.hugepageBytes}`, 'nodev', isolation.hugepageDir]);
      isolation.mounted = true;
      if (options.cgroups !== false) isolation.cgroups = VnfCgroups.create(`${allocation.name}-${process.pid}`, allocation.cpus, allocation.hugetlbCgroupBytes === undefined ? allocation.hugepageBytes : allocation.hugetlbCgroupBytes);
    } catch (err) {
      await isolation.destroy();
      throw err;
    }
    return isolation;
  }

  /** cgroup.procs files the VNF's first process joins. */
  get cgroupProcsFiles(): string[] {
    return this.cgroups?.procsFiles ?? [];
  }

  /** Bytes of the hugetlbfs mount in use now (its files). */
  hugetlbfsUsedBytes(): number {
    const stats = statfsSync(this.hugepageDir);
    return (stats.blocks - stats.bfree) * stats.bsize;
  }

  /** 2 MiB hugepage bytes charged to the VNF's cgroup now, and how often its limit was hit. */
  hugetlbCgroupUsage(): { bytes: number; limitHits: number } | undefined {
    return this.cgroups?.hugetlbUsage();
  }

  /** Unmounts and removes everything; the VNF's processes must have exited. */
  async destroy(): Promise<void> {
    this.cgroups?.destroy();
    this.cgroups = undefined;
    if (this.mounted) {
      await execFileAsync('umount', [this.hugepageDir]);
      this.mounted = false;
    }
  }
}
