import { mkdir, readdir, rm, rmdir } from 'node:fs/promises';
import { posix } from 'node:path';
import { PAGE_SIZE_BYTES, type PageSize } from '../../src/api/common.js';
import { isErrno } from './kernel-files.js';
import { mountAt, type MountEntry, type Mounter } from './mounts.js';

/** How mountinfo shows a hugetlbfs page size (`pagesize=2M`, `pagesize=1024M`). */
const MOUNTINFO_PAGE_SIZE: Record<PageSize, string> = { '2Mi': '2M', '1Gi': '1024M' };
/** The `pagesize=` option to mount with. */
const MOUNT_PAGE_SIZE: Record<PageSize, string> = { '2Mi': '2M', '1Gi': '1G' };

/** The mount at a VNF's hugepage directory is not the one the VNF needs. */
export class HugetlbfsMismatchError extends Error {
  override readonly name = 'HugetlbfsMismatchError';
}

/**
 * A hugetlbfs mount per VNF: `pagesize=` its page size and `size=` its allocation, so a DPDK
 * process that maps files there cannot take more than it was given (the hugetlb cgroup limit is
 * the fence for --in-memory mode, which bypasses the filesystem).
 */
export class HugetlbfsMount {
  constructor(private readonly mounter: Mounter) {}

  /** Mounts hugetlbfs at `dir` unless the right mount is already there. Idempotent. */
  async ensureMounted(dir: string, pageSize: PageSize, bytes: number): Promise<void> {
    if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes % PAGE_SIZE_BYTES[pageSize] !== 0) {
      throw new RangeError(`hugetlbfs size ${bytes} is not a positive multiple of ${pageSize}`);
    }
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const existing = mountAt(await this.mounter.mounts(), dir);
    if (existing) {
      const problem = describeMismatch(existing, pageSize, bytes);
      if (problem) throw new HugetlbfsMismatchError(`${dir} is already mounted, but ${problem}; unmount it and let the agent mount it again`);
      return;
    }
    await this.mounter.mount({
      source: 'nodev',
      target: dir,
      fsType: 'hugetlbfs',
      options: ['nosuid', 'nodev', 'noexec', `pagesize=${MOUNT_PAGE_SIZE[pageSize]}`, `size=${bytes}`, 'mode=0770'],
    });
  }

  /**
   * Deletes every file in the hugetlbfs mount at `dir`. Pages of files left behind stay allocated
   * and charged to the hugetlb cgroup of whoever faulted them in, so this comes before unmounting.
   * Does nothing if no hugetlbfs is mounted there (never deletes from the underlying directory).
   */
  async removeFiles(dir: string): Promise<void> {
    const existing = mountAt(await this.mounter.mounts(), dir);
    if (existing?.fsType !== 'hugetlbfs') return;
    for (const entry of await readdir(dir)) await rm(posix.join(dir, entry), { recursive: true, force: true });
  }

  /** Removes the files, unmounts every hugetlbfs stacked at `dir`, and removes the directory. Idempotent. */
  async ensureUnmounted(dir: string): Promise<void> {
    for (;;) {
      const existing = mountAt(await this.mounter.mounts(), dir);
      if (!existing) break;
      if (existing.fsType !== 'hugetlbfs') throw new HugetlbfsMismatchError(`${dir} holds a ${existing.fsType} mount, not hugetlbfs; refusing to unmount it`);
      await this.removeFiles(dir);
      await this.mounter.unmount(dir);
    }
    try {
      await rmdir(dir);
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
  }
}

function describeMismatch(mount: MountEntry, pageSize: PageSize, bytes: number): string | undefined {
  if (mount.fsType !== 'hugetlbfs') return `it is ${mount.fsType}, not hugetlbfs`;
  const options = new Map(mount.superOptions.map((option) => option.split('=') as [string, string]));
  if (options.get('pagesize') !== MOUNTINFO_PAGE_SIZE[pageSize]) return `its pagesize is ${options.get('pagesize')}, not ${pageSize}`;
  if (options.get('size') !== String(bytes)) return `its size is ${options.get('size') ?? 'unlimited'}, not ${bytes}`;
  return undefined;
}
