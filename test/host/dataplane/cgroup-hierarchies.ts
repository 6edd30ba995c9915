/**
 * The cgroup hierarchies of this host and the removal of a cgroup tree: what the kubelet-style pod
 * cgroups (kubelet-pod.ts) and the sandbox runtime's container cgroups (sandbox-runtime.ts) are
 * made in and removed from.
 */
import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { posix } from 'node:path';
import { parseMountInfo } from '../../../node-agent/host/mounts.js';

/** A mounted cgroup hierarchy. */
export interface Hierarchy {
  path: string;
  version: 1 | 2;
  /** The controllers it offers (for v2, those of its root). */
  controllers: string[];
  /** A v1 cpuset hierarchy, whose new cgroups start without CPUs and memory nodes. */
  cpuset: boolean;
}

/** Every cgroup hierarchy this host mounts (v1 ones and the unified one): a runtime puts a container in each. */
export function cgroupHierarchies(): Hierarchy[] {
  return parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8'))
    .filter((m) => m.fsType === 'cgroup' || m.fsType === 'cgroup2')
    .map((m) => {
      const version = m.fsType === 'cgroup2' ? 2 : 1;
      const controllers = version === 2 ? readFileSync(posix.join(m.mountPoint, 'cgroup.controllers'), 'utf8').split(/\s+/).filter(Boolean) : m.superOptions;
      return { path: m.mountPoint, version, controllers, cpuset: version === 1 && controllers.includes('cpuset') };
    });
}

/** Removes the empty cgroup `dir`, waiting out processes that are still leaving it. */
export function rmdirWhenEmpty(dir: string, attempts = 250): void {
  for (let attempt = 0; existsSync(dir); attempt++) {
    try {
      rmdirSync(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Processes of an exiting container leave its cgroup a moment after the runtime says it stopped.
      if (code !== 'EBUSY' || attempt >= attempts) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
}

/** Removes `dir` and every cgroup under it, deepest first. */
export function removeCgroupTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) removeCgroupTree(posix.join(dir, entry.name));
  rmdirWhenEmpty(dir);
}
