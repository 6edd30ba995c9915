import { readFileSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { HugetlbfsMount, HugetlbfsMismatchError } from '../../node-agent/host/hugetlbfs-mount.js';
import { CommandMounter, mountAt } from '../../node-agent/host/mounts.js';
import { execFileAsync, ExtraHugepages, lockHugepages, mountPointsUnder, requireRoot, TempTree } from './helpers/host-fixtures.js';

const TWO_MI = 2 << 20;

describe('HugetlbfsMount on the real kernel', () => {
  let tree: TempTree;
  const pages = new ExtraHugepages();
  const mounter = new CommandMounter();
  const hugetlbfs = new HugetlbfsMount(mounter);

  let unlock: () => void = () => undefined;

  beforeAll(async () => {
    requireRoot();
    unlock = await lockHugepages();
    tree = new TempTree('nfv-hugetlbfs');
    pages.ensureFree(4);
  });

  afterAll(async () => {
    try {
      await tree?.cleanup();
      pages.cleanup();
    } finally {
      unlock();
    }
  });

  it('mounts with pagesize and size=, and a file cannot grow past size=', async () => {
    const dir = tree.path('vnf-a/hugepages');
    await hugetlbfs.ensureMounted(dir, '2Mi', 2 * TWO_MI);
    const mount = mountAt(await mounter.mounts(), dir)!;
    expect(mount.fsType).toBe('hugetlbfs');
    expect(mount.superOptions).toEqual(expect.arrayContaining(['pagesize=2M', `size=${2 * TWO_MI}`]));
    expect(mount.mountOptions).toEqual(expect.arrayContaining(['nosuid', 'nodev', 'noexec']));

    // Within the size: the kernel hands out the pages.
    await execFileAsync('fallocate', ['-l', String(2 * TWO_MI), `${dir}/within`]);
    // Past it: ENOSPC, whatever the host has free.
    await expect(execFileAsync('fallocate', ['-l', String(TWO_MI), `${dir}/beyond`])).rejects.toMatchObject({
      stderr: expect.stringMatching(/No space left on device/),
    });

    await hugetlbfs.ensureMounted(dir, '2Mi', 2 * TWO_MI); // idempotent
    expect(mountPointsUnder(dir)).toEqual([dir]);
  });

  it('refuses a mount with another size instead of silently using it', async () => {
    const dir = tree.path('vnf-b/hugepages');
    await hugetlbfs.ensureMounted(dir, '2Mi', TWO_MI);
    await expect(hugetlbfs.ensureMounted(dir, '2Mi', 2 * TWO_MI)).rejects.toBeInstanceOf(HugetlbfsMismatchError);
    await hugetlbfs.ensureUnmounted(dir);
  });

  it('removes the files before unmounting, so their pages go back to the pool', async () => {
    const dir = tree.path('vnf-c/hugepages');
    await hugetlbfs.ensureMounted(dir, '2Mi', 2 * TWO_MI);
    const used = async () => {
      const stats = await statfs(dir);
      return stats.blocks - stats.bfree;
    };
    const before = ExtraHugepages.read().free;
    await execFileAsync('fallocate', ['-l', String(2 * TWO_MI), `${dir}/held`]);
    expect(await used()).toBe(2);
    expect(ExtraHugepages.read().free).toBe(before - 2);
    await hugetlbfs.removeFiles(dir);
    expect(await used()).toBe(0);
    expect(ExtraHugepages.read().free).toBe(before);
    await execFileAsync('fallocate', ['-l', String(2 * TWO_MI), `${dir}/held-again`]);
    await hugetlbfs.ensureUnmounted(dir);
    expect(ExtraHugepages.read().free).toBe(before);
    expect(mountPointsUnder(tree.path('vnf-c'))).toEqual([]);
    await hugetlbfs.ensureUnmounted(dir); // idempotent
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(dir);
  });
});
