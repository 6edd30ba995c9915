import { posix } from 'node:path';
import { formatCpuList } from '../../src/api/cpu-list.js';
import type { PageSize } from '../../src/api/common.js';
import { HUGETLB_CGROUP_SIZE } from './cgroup-v1.js';
import { listDir, readKernelText, writeKernelAttribute } from './kernel-files.js';

/**
 * cgroup v2 limits on a pod's cgroup. Limits in v2 are hierarchical, so the pod's cgroup fences
 * every container under it; the controller must be enabled in `cgroup.subtree_control` of each
 * ancestor, which this does (enabling is node-wide and harmless, so it is never undone).
 */
export class CgroupV2 {
  constructor(private readonly unifiedRoot: string) {}

  /** Enables `controller` on every ancestor of `dir`, from the root down. */
  async enableController(dir: string, controller: string): Promise<void> {
    const relative = posix.relative(this.unifiedRoot, dir);
    if (relative.startsWith('..') || posix.isAbsolute(relative)) throw new RangeError(`${dir} is not under ${this.unifiedRoot}`);
    const parts = relative.split('/').filter(Boolean);
    let current = this.unifiedRoot;
    for (const part of parts) {
      const enabled = ((await readKernelText(posix.join(current, 'cgroup.subtree_control'))) ?? '').split(/\s+/);
      if (!enabled.includes(controller)) await writeKernelAttribute(posix.join(current, 'cgroup.subtree_control'), `+${controller}\n`);
      current = posix.join(current, part);
    }
  }

  /** Sets cpuset.cpus and cpuset.mems on the pod cgroup; children's effective sets follow. */
  async setCpuset(podDir: string, cpus: readonly number[], mems: readonly number[]): Promise<void> {
    await this.enableController(podDir, 'cpuset');
    await writeKernelAttribute(posix.join(podDir, 'cpuset.mems'), `${formatCpuList(mems)}\n`);
    await writeKernelAttribute(posix.join(podDir, 'cpuset.cpus'), `${formatCpuList(cpus)}\n`);
  }

  /**
   * Sets hugetlb.<size>.max and, where the kernel has it, hugetlb.<size>.rsvd.max, so an mmap
   * beyond the limit fails with ENOMEM instead of a SIGBUS later.
   *
   * @returns whether a reservation limit was set.
   */
  async setHugetlb(podDir: string, pageSize: PageSize, bytes: number): Promise<boolean> {
    await this.enableController(podDir, 'hugetlb');
    const size = HUGETLB_CGROUP_SIZE[pageSize];
    const files = await listDir(podDir);
    const rsvd = `hugetlb.${size}.rsvd.max`;
    if (files.includes(rsvd)) await writeKernelAttribute(posix.join(podDir, rsvd), `${bytes}\n`);
    await writeKernelAttribute(posix.join(podDir, `hugetlb.${size}.max`), `${bytes}\n`);
    return files.includes(rsvd);
  }
}
