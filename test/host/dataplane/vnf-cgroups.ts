/**
 * The cgroup limits the node agent puts on a VNF, reduced to what the benchmark's namespace
 * sandbox needs (vnf-isolation.ts): a cpuset with the VNF's CPUs and a hugetlb limit (fault and
 * reservation) at its allocation. Works on cgroup v2 and v1 and on hybrid hosts, where hugetlb
 * may be on v2 and cpuset on v1. {@link findCgroupController} also tells the tests whether the
 * machine has a hugetlb controller at all.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { posix } from 'node:path';

/** One hierarchy that offers a controller. */
export interface CgroupHierarchy {
  mountPoint: string;
  version: 1 | 2;
}

/** The hierarchy that offers `controller` (v2 first), or undefined. */
export function findCgroupController(controller: 'cpuset' | 'hugetlb'): CgroupHierarchy | undefined {
  const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((line) => line.split(' '));
  for (const [, mountPoint, type] of mounts) {
    if (type !== 'cgroup2' || !mountPoint) continue;
    const controllers = readFileSync(posix.join(mountPoint, 'cgroup.controllers'), 'utf8').split(/\s+/);
    if (controllers.includes(controller)) return { mountPoint, version: 2 };
  }
  for (const [, mountPoint, type, options] of mounts) {
    if (type === 'cgroup' && mountPoint && options?.split(',').includes(controller)) return { mountPoint, version: 1 };
  }
  return undefined;
}

/** A VNF's cgroups: created by {@link VnfCgroups.create}, joined by the sandbox, removed by {@link VnfCgroups.destroy}. */
export class VnfCgroups {
  private readonly dirs: string[] = [];
  private hugetlbDir: string | undefined;
  private hugetlbVersion: 1 | 2 = 2;

  /** Directories whose cgroup.procs the VNF's first process writes itself into. */
  get procsFiles(): string[] {
    return this.dirs.map((dir) => posix.join(dir, 'cgroup.procs'));
  }

  /**
   * Creates `nfv-dataplane-<name>` in the cpuset and hugetlb hierarchies.
   *
   * @param hugetlbBytes limit of 2 MiB hugepages, faulted and reserved; null leaves hugetlb unlimited.
   */
  static create(name: string, cpus: readonly number[], hugetlbBytes: number | null): VnfCgroups {
    const cgroups = new VnfCgroups();
    try {
      cgroups.createCpuset(name, cpus);
      if (hugetlbBytes !== null) cgroups.createHugetlb(name, hugetlbBytes);
    } catch (err) {
      cgroups.destroy();
      throw err;
    }
    return cgroups;
  }

  private child(hierarchy: CgroupHierarchy, controller: string, name: string): string {
    if (hierarchy.version === 2) {
      // Left enabled afterwards: other users of the hierarchy may have started using it meanwhile.
      const control = posix.join(hierarchy.mountPoint, 'cgroup.subtree_control');
      if (!readFileSync(control, 'utf8').split(/\s+/).includes(controller)) writeFileSync(control, `+${controller}`);
    }
    const dir = posix.join(hierarchy.mountPoint, `nfv-dataplane-${name}`);
    if (!this.dirs.includes(dir)) {
      mkdirSync(dir);
      this.dirs.push(dir);
    }
    return dir;
  }

  private createCpuset(name: string, cpus: readonly number[]): void {
    const hierarchy = findCgroupController('cpuset');
    if (!hierarchy) throw new Error('no cgroup hierarchy offers cpuset');
    const dir = this.child(hierarchy, 'cpuset', name);
    writeFileSync(posix.join(dir, 'cpuset.cpus'), cpus.join(','));
    const mems = readFileSync(posix.join(hierarchy.mountPoint, hierarchy.version === 2 ? 'cpuset.mems.effective' : 'cpuset.mems'), 'utf8').trim();
    writeFileSync(posix.join(dir, 'cpuset.mems'), mems);
  }

  private createHugetlb(name: string, bytes: number): void {
    const hierarchy = findCgroupController('hugetlb');
    if (!hierarchy) throw new Error('no cgroup hierarchy offers hugetlb');
    const dir = this.child(hierarchy, 'hugetlb', name);
    const files = hierarchy.version === 2 ? ['hugetlb.2MB.max', 'hugetlb.2MB.rsvd.max'] : ['hugetlb.2MB.limit_in_bytes', 'hugetlb.2MB.rsvd.limit_in_bytes'];
    for (const file of files) writeFileSync(posix.join(dir, file), String(bytes));
    this.hugetlbDir = dir;
    this.hugetlbVersion = hierarchy.version;
  }

  /** 2 MiB hugepage bytes charged to the VNF now, and how often the limit was hit. */
  hugetlbUsage(): { bytes: number; limitHits: number } | undefined {
    if (!this.hugetlbDir) return undefined;
    const read = (file: string) => readFileSync(posix.join(this.hugetlbDir!, file), 'utf8');
    if (this.hugetlbVersion === 2) {
      return { bytes: Number(read('hugetlb.2MB.current')), limitHits: Number(/max (\d+)/.exec(read('hugetlb.2MB.events'))?.[1] ?? 0) };
    }
    return { bytes: Number(read('hugetlb.2MB.usage_in_bytes')), limitHits: Number(read('hugetlb.2MB.failcnt')) };
  }

  /** Removes the cgroups; their processes must have exited. */
  destroy(): void {
    for (const dir of this.dirs.splice(0).reverse()) {
      for (let attempt = 0; existsSync(dir); attempt++) {
        try {
          rmdirSync(dir);
        } catch (err) {
          if (attempt > 200) throw err;
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
        }
      }
    }
  }
}
