/**
 * The kubelet's part for one rendered VNF pod: the pod cgroup `<top>/kubepods/burstable/pod<uid>`
 * in every cgroup hierarchy (kubelet's cgroupfs layout, which is what the node agent looks for),
 * and the pod's containers handed to a container runtime (Docker, or the namespace sandbox) with
 * that pod cgroup as their cgroup parent, so the runtime creates each container's cgroup under it,
 * as kubelet's runtime does. A container that stops is started again as a new container of the
 * same pod (restartPolicy Always). Nothing here prepares the host: that is the node agent's.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { posix } from 'node:path';
import { cgroupHierarchies, removeCgroupTree } from './cgroup-hierarchies.js';
import type { ContainerProcess, ContainerRuntime } from './container-process.js';
import { containerRunSpec, podContainer, type ExtraBindMount } from './pod-container-spec.js';

/** Label with the pod UID on each of its containers. */
const POD_UID_LABEL = 'dev.nfv.dataplane-pod-uid';

/** A pod on this machine: its cgroups, and its containers run from the rendered spec. */
export class KubeletPod {
  /** The pod's UID, as the API server would give it. */
  readonly uid = randomUUID();
  /** The pod cgroup below each hierarchy's root. */
  readonly cgroupPath: string;
  private started = 0;

  private constructor(
    readonly pod: V1Pod,
    private readonly top: string,
    private readonly runtime: ContainerRuntime,
    private readonly extraMounts: readonly ExtraBindMount[],
  ) {
    this.cgroupPath = posix.join('/', top, 'kubepods', 'burstable', `pod${this.uid}`);
  }

  /**
   * Creates the pod's cgroups under `top` (a directory of this test run at each hierarchy's root);
   * `runtime` runs its containers. `extraMounts` go into every container of the pod; each says
   * why it departs from the pod.
   */
  static create(pod: V1Pod, top: string, runtime: ContainerRuntime, extraMounts: readonly ExtraBindMount[] = []): KubeletPod {
    const kubeletPod = new KubeletPod(pod, top, runtime, extraMounts);
    try {
      for (const hierarchy of cgroupHierarchies()) {
        let dir = hierarchy.path;
        for (const part of kubeletPod.cgroupPath.split('/').filter(Boolean)) {
          const parent = dir;
          dir = posix.join(dir, part);
          if (existsSync(dir)) continue;
          mkdirSync(dir);
          // A new v1 cpuset starts empty; kubelet gives it its parent's CPUs and memory nodes.
          if (hierarchy.cpuset) for (const file of ['cpuset.cpus', 'cpuset.mems']) writeFileSync(posix.join(dir, file), readFileSync(posix.join(parent, file)));
        }
      }
    } catch (err) {
      kubeletPod.removeCgroups();
      throw err;
    }
    return kubeletPod;
  }

  /** The pod's cgroup in the hierarchy mounted at `hierarchyPath`. */
  cgroupDir(hierarchyPath: string): string {
    return posix.join(hierarchyPath, this.cgroupPath);
  }

  /**
   * Starts container `name` of the pod as a new container of the runtime, as kubelet starts a
   * container and restarts it after it stopped. `env` replaces rendered values (a test that shows
   * what another rendering would do says so).
   */
  start(name: string, options: { env?: Record<string, string>; extraMounts?: readonly ExtraBindMount[] } = {}): ContainerProcess {
    const pod = options.env ? withEnv(this.pod, name, options.env) : this.pod;
    const spec = containerRunSpec(pod, name, {
      containerName: `nfv-dp-${this.pod.metadata?.name}-${name}-${++this.started}-${process.pid}`,
      podUid: this.uid,
      cgroupParent: this.cgroupPath,
      labels: { [POD_UID_LABEL]: this.uid },
      extraMounts: [...this.extraMounts, ...(options.extraMounts ?? [])],
    });
    return this.runtime.start(spec);
  }

  /** Deletes the pod: its containers, then its cgroups (kubelet's job when a pod goes away). */
  async delete(): Promise<void> {
    await this.runtime.removeContainers({ [POD_UID_LABEL]: this.uid });
    this.removeCgroups();
  }

  private removeCgroups(): void {
    for (const hierarchy of cgroupHierarchies()) {
      removeCgroupTree(this.cgroupDir(hierarchy.path));
      // The parents go with the last pod of the test run.
      for (const parent of ['kubepods/burstable', 'kubepods', '']) {
        const dir = posix.join(hierarchy.path, this.top, parent);
        try {
          if (existsSync(dir)) rmdirSync(dir);
        } catch {
          break;
        }
      }
    }
  }
}

/**
 * Removes every cgroup of the test run `top` in every hierarchy: the safety net after a failed
 * test, once its containers are gone.
 */
export function removeKubeletCgroups(top: string): void {
  for (const hierarchy of cgroupHierarchies()) removeCgroupTree(posix.join(hierarchy.path, top));
}

/** The cgroups of the test run `top` left in any hierarchy. */
export function kubeletCgroupsLeft(top: string): string[] {
  return cgroupHierarchies()
    .map((h) => posix.join(h.path, top))
    .filter((dir) => existsSync(dir));
}

function withEnv(pod: V1Pod, name: string, env: Record<string, string>): V1Pod {
  const copy = structuredClone(pod);
  const container = podContainer(copy, name);
  container.env = (container.env ?? []).map((e) => (e.name in env ? { name: e.name, value: env[e.name]! } : e));
  return copy;
}

/**
 * The end of every data-plane test file, in reverse order of its set-up and whatever failed:
 * the runtime's containers, the kubelet-style cgroups under `cgroupTop`, the one-node cluster,
 * the temp tree, then the hugepage lock.
 */
export async function tearDownDataplane(bed: {
  runtime: ContainerRuntime;
  cgroupTop: string;
  cluster?: { stop(): Promise<void> };
  tree?: { cleanup(): unknown };
  unlock?: () => void;
}): Promise<void> {
  try {
    await bed.runtime.removeContainers();
    removeKubeletCgroups(bed.cgroupTop);
    await bed.cluster?.stop();
    await bed.tree?.cleanup();
  } finally {
    bed.unlock?.();
  }
}
