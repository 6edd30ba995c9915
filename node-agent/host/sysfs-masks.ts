import { mkdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { formatCpuList } from '../../src/api/cpu-list.js';
import { isPciAddress } from '../../src/api/pci-address.js';
import { isErrno, listDir, readKernelText } from './kernel-files.js';

/** Files of /sys/devices/system/cpu that list CPUs and are masked in the pod. */
export const CPU_MASK_FILES = ['online', 'present', 'possible'] as const;

/**
 * The directories and files the pod mounts over parts of its /sys, so DPDK's EAL only finds the
 * VNF's own PCI devices and CPUs.
 */
export class SysfsMasks {
  constructor(private readonly sysfsRoot: string) {}

  /**
   * Makes `dir` hold one symlink per allowed device, each with the very target of the host's
   * /sys/bus/pci/devices entry (a relative path into /sys/devices, so it resolves inside the pod's
   * own sysfs once `dir` is mounted over /sys/bus/pci/devices). Other entries are removed.
   */
  async preparePciDevices(dir: string, pciAddresses: readonly string[]): Promise<void> {
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const wanted = new Set(pciAddresses);
    for (const address of wanted) {
      if (!isPciAddress(address)) throw new RangeError(`"${address}" is not a PCI address such as 0000:3b:00.1`);
      const target = await this.deviceLinkTarget(address);
      const link = posix.join(dir, address);
      const current = await readlink(link).catch((err: unknown) => (isErrno(err, 'ENOENT') ? undefined : Promise.reject(err)));
      if (current === target) continue;
      // Build beside and rename over, so a crash never leaves a half-made entry.
      const temporary = `${link}.tmp`;
      await rm(temporary, { force: true });
      await symlink(target, temporary);
      await rename(temporary, link);
    }
    for (const entry of await listDir(dir)) {
      if (!wanted.has(entry)) await rm(posix.join(dir, entry), { force: true, recursive: true });
    }
  }

  /**
   * Writes online, present and possible in `dir`, each listing only `cpus`. A file that already
   * says so is left alone: the pod mounts each one with subPath, which kubelet bind-mounts by
   * inode, so replacing it would leave the next container start a deleted file to mount.
   */
  async prepareCpuMask(dir: string, cpus: readonly number[]): Promise<void> {
    if (cpus.length === 0) throw new RangeError('a CPU mask needs at least one CPU');
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const text = `${formatCpuList(cpus)}\n`;
    for (const file of CPU_MASK_FILES) {
      const path = posix.join(dir, file);
      if ((await readKernelText(path)) === text.trim()) continue;
      await writeFile(`${path}.tmp`, text, { mode: 0o444 });
      await rename(`${path}.tmp`, path);
    }
  }

  /** Makes `dir` an empty directory, mounted over the cpuN directories of CPUs the VNF may not use. */
  async prepareEmptyDir(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true, mode: 0o555 });
    for (const entry of await listDir(dir)) await rm(posix.join(dir, entry), { recursive: true, force: true });
  }

  private async deviceLinkTarget(address: string): Promise<string> {
    const hostLink = posix.join(this.sysfsRoot, 'bus/pci/devices', address);
    try {
      return await readlink(hostLink);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new Error(`PCI device ${address} does not exist on this node (${hostLink})`);
      throw err;
    }
  }
}
