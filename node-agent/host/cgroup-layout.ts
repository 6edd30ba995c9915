import { readdir, stat } from 'node:fs/promises';
import { posix } from 'node:path';
import { isErrno, listDir, readKernelText } from './kernel-files.js';

/** Controllers the agent sets limits with. */
export type CgroupController = 'cpuset' | 'devices' | 'hugetlb';

/** Where one controller lives. */
export interface CgroupHierarchy {
  version: 1 | 2;
  /** Mount point of the hierarchy (v1) or of the unified hierarchy (v2). */
  path: string;
}

/** Which hierarchy carries each controller on this host: v1, v2 or hybrid. */
export interface CgroupLayout {
  cpuset?: CgroupHierarchy;
  devices?: CgroupHierarchy;
  hugetlb?: CgroupHierarchy;
  /** The unified (v2) hierarchy, when mounted: at the root (pure v2) or at `unified/` (hybrid). */
  unified?: string;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
}

async function v2Controllers(path: string): Promise<Set<string>> {
  return new Set(((await readKernelText(posix.join(path, 'cgroup.controllers'))) ?? '').split(/\s+/).filter(Boolean));
}

/**
 * Finds the hierarchy of each controller from the files under `cgroupRoot` (normally
 * /sys/fs/cgroup), so the same code works on v1, v2 and hybrid hosts, and on a tree a test builds.
 * A controller present in both takes v1, the one kubelet uses on hybrid hosts.
 */
export async function detectCgroupLayout(cgroupRoot: string): Promise<CgroupLayout> {
  const layout: CgroupLayout = {};
  if (await exists(posix.join(cgroupRoot, 'cgroup.controllers'))) {
    layout.unified = cgroupRoot;
  } else {
    for (const entry of await listDir(cgroupRoot)) {
      const path = posix.join(cgroupRoot, entry);
      if (!(await isDirectory(path))) continue;
      if (await exists(posix.join(path, 'cgroup.controllers'))) {
        layout.unified ??= path;
        continue;
      }
      if (!layout.cpuset && (await exists(posix.join(path, 'cpuset.cpus')))) layout.cpuset = { version: 1, path };
      if (!layout.devices && (await exists(posix.join(path, 'devices.list')))) layout.devices = { version: 1, path };
      if (!layout.hugetlb && (await listDir(path)).some((file) => /^hugetlb\.\w+\.limit_in_bytes$/.test(file))) {
        layout.hugetlb = { version: 1, path };
      }
    }
  }
  if (layout.unified) {
    const available = await v2Controllers(layout.unified);
    const unified: CgroupHierarchy = { version: 2, path: layout.unified };
    if (!layout.cpuset && available.has('cpuset')) layout.cpuset = unified;
    if (!layout.hugetlb && available.has('hugetlb')) layout.hugetlb = unified;
    // v2 has no devices files: access is an eBPF program the container runtime attaches.
    if (!layout.devices && layout.unified === cgroupRoot) layout.devices = unified;
  }
  return layout;
}

/** How kubelet names a pod's cgroup: `pod<uid>` (cgroupfs) or `kubepods-<qos>-pod<uid_>.slice` (systemd). */
export function isPodCgroupName(name: string, podUid: string): boolean {
  return name === `pod${podUid}` || name.endsWith(`-pod${podUid.replaceAll('-', '_')}.slice`);
}

const POD_NAME = /^pod[0-9a-f-]{36}$|-pod[0-9a-f_]{36}\.slice$/;

/**
 * The cgroup directory of a pod under one hierarchy, searched breadth-first a few levels deep
 * (kubepods/burstable/pod<uid>, kubepods.slice/kubepods-burstable.slice/...). Other pods' and
 * system directories are not descended into.
 */
export async function findPodCgroup(hierarchyPath: string, podUid: string, maxDepth = 5): Promise<string | undefined> {
  let level = [hierarchyPath];
  for (let depth = 0; depth < maxDepth && level.length > 0; depth++) {
    const next: string[] = [];
    for (const dir of level) {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (isErrno(err, 'ENOENT')) continue;
        throw err;
      }
      for (const entry of entries) {
        if (!entry.isDirectory()) continue;
        const path = posix.join(dir, entry.name);
        if (isPodCgroupName(entry.name, podUid)) return path;
        if (POD_NAME.test(entry.name) || entry.name === 'system.slice' || entry.name === 'user.slice') continue;
        next.push(path);
      }
    }
    level = next;
  }
  return undefined;
}

/** Sub-directories of a cgroup, every level, parents before children. */
export async function descendantCgroups(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (current: string) => {
    let entries;
    try {
      entries = await readdir(current, { withFileTypes: true });
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return;
      throw err;
    }
    for (const entry of entries) {
      if (!entry.isDirectory()) continue;
      const path = posix.join(current, entry.name);
      found.push(path);
      await walk(path);
    }
  };
  await walk(dir);
  return found;
}
