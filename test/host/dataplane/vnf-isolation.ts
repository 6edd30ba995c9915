/**
 * A VNF's isolation as the node agent prepares it on the host and as its pod sees it: a hugetlbfs
 * mount with size= at the allocation, a cpuset and hugetlb cgroup, files listing only the VNF's
 * CPUs for /sys/devices/system/cpu/{online,present,possible}, an empty directory for each foreign
 * /sys/devices/system/cpu/cpuN, and a PCI devices directory holding only the VNF's devices.
 *
 * The PCI devices are fake (a sysfs-shaped tree under the test's directory, bound to a fake
 * vfio-pci): the tests never touch the machine's real PCI devices, and the kernel here has no
 * VFIO anyway. EAL scans them as it scans real ones.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, statfsSync, symlinkSync, writeFileSync } from 'node:fs';
import { posix } from 'node:path';
import { promisify } from 'node:util';
import { formatCpuList, parseCpuList } from '../../../src/api/cpu-list.js';
import { VnfCgroups } from './vnf-cgroups.js';

const execFileAsync = promisify(execFile);

/** Vendor and device of the fake NICs: an Intel X710, which Debian's net_i40e PMD claims. */
const FAKE_NIC = { vendor: '0x8086', device: '0x1572' };

/** A fake PCI bus with a few NICs bound to vfio-pci, under `root`. */
export class FakePciBus {
  readonly devicesDir: string;

  constructor(
    readonly root: string,
    readonly addresses: readonly string[],
  ) {
    const driver = posix.join(root, 'bus/pci/drivers/vfio-pci');
    mkdirSync(driver, { recursive: true });
    this.devicesDir = posix.join(root, 'devices/pci0000:81');
    for (const address of addresses) {
      const dir = this.devicePath(address);
      mkdirSync(dir, { recursive: true });
      const files: Record<string, string> = {
        vendor: FAKE_NIC.vendor,
        device: FAKE_NIC.device,
        subsystem_vendor: FAKE_NIC.vendor,
        subsystem_device: '0x0000',
        class: '0x020000',
        numa_node: '0',
        resource: '0x0000000000000000 0x0000000000000000 0x0000000000000000\n'.repeat(7),
      };
      for (const [file, value] of Object.entries(files)) writeFileSync(posix.join(dir, file), `${value.trimEnd()}\n`);
      symlinkSync(driver, posix.join(dir, 'driver'));
    }
  }

  devicePath(address: string): string {
    return posix.join(this.devicesDir, address);
  }
}

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
   * @param options.cgroups false when a container engine makes the VNF's cgroups (default true).
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
