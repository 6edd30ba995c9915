import { posix } from 'node:path';
import { formatCpuList, parseCpuList } from '../../src/api/cpu-list.js';
import type { PageSize } from '../../src/api/common.js';
import { descendantCgroups } from './cgroup-layout.js';
import { listDir, readKernelText, writeKernelAttribute } from './kernel-files.js';

/** The hugetlb cgroup file name of a page size: `2MB`, `1GB`. */
export const HUGETLB_CGROUP_SIZE: Record<PageSize, string> = { '2Mi': '2MB', '1Gi': '1GB' };

/**
 * cgroup v1 limits on a pod's cgroup and the container cgroups under it. Directories are absolute
 * paths inside one v1 hierarchy.
 */
export class CgroupV1 {
  /**
   * Sets cpuset.cpus and cpuset.mems on `podDir` and every cgroup under it. v1 requires a child to
   * stay a subset of its parent at every moment, so sets are first widened top-down to the union
   * and then narrowed bottom-up to the target. The pod's parent must already hold the CPUs.
   */
  async setCpuset(podDir: string, cpus: readonly number[], mems: readonly number[]): Promise<void> {
    const dirs = [podDir, ...(await descendantCgroups(podDir))];
    for (const [file, target] of [['cpuset.cpus', cpus], ['cpuset.mems', mems]] as const) {
      for (const dir of dirs) {
        const current = parseCpuList((await readKernelText(posix.join(dir, file))) ?? '');
        const union = new Set([...current, ...target]);
        if (union.size !== current.length) await writeKernelAttribute(posix.join(dir, file), `${formatCpuList(union)}\n`);
      }
    }
    for (const dir of [...dirs].reverse()) {
      await writeKernelAttribute(posix.join(dir, 'cpuset.cpus'), `${formatCpuList(cpus)}\n`);
      await writeKernelAttribute(posix.join(dir, 'cpuset.mems'), `${formatCpuList(mems)}\n`);
    }
  }

  /**
   * Limits hugepages of one size on `podDir` (hierarchical, so containers are covered), and the
   * reservation limit too where the kernel has it: then an mmap beyond the limit fails at once with
   * ENOMEM instead of a SIGBUS at first touch.
   *
   * @returns whether a reservation limit was set.
   */
  async setHugetlb(podDir: string, pageSize: PageSize, bytes: number): Promise<boolean> {
    const size = HUGETLB_CGROUP_SIZE[pageSize];
    const files = await listDir(podDir);
    const rsvd = `hugetlb.${size}.rsvd.limit_in_bytes`;
    if (files.includes(rsvd)) await writeKernelAttribute(posix.join(podDir, rsvd), `${bytes}\n`);
    await writeKernelAttribute(posix.join(podDir, `hugetlb.${size}.limit_in_bytes`), `${bytes}\n`);
    return files.includes(rsvd);
  }
}
