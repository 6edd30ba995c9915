import type { PageSize } from '../../src/api/common.js';
import { detectCgroupLayout, findPodCgroup, type CgroupController, type CgroupLayout } from './cgroup-layout.js';
import { CgroupV1 } from './cgroup-v1.js';
import { CgroupV2 } from './cgroup-v2.js';

/** Limits of one VNF pod. */
export interface PodLimits {
  cpus: readonly number[];
  /** NUMA nodes (cpuset.mems). */
  mems: readonly number[];
  pageSize: PageSize;
  hugepageBytes: number;
}

/** What was applied, per controller, for the journal and the logs. */
export interface AppliedPodLimits {
  cgroups: Partial<Record<CgroupController, string>>;
  /** Whether the hugetlb reservation limit (rsvd) exists on this kernel and was set. */
  hugetlbReservationLimit: boolean;
}

/** The pod's cgroup does not exist (yet) in a hierarchy the agent needs. */
export class PodCgroupMissingError extends Error {
  override readonly name = 'PodCgroupMissingError';
}

/**
 * Applies a VNF's CPU and hugepage limits to its pod's cgroups on v1, v2 and hybrid hosts.
 *
 * The pod-level hugetlb limit and its reservation limit are the agent's alone: the pod requests
 * its pages as `nfv.dev/hugepages-<size>` (kubelet reads native hugepage capacity only at its
 * start), so where kubelet manages hugetlb it creates the pod cgroup with 0 for every size, and
 * this write, before the init gate opens, replaces that. The `rsvd` limit makes an
 * over-allocation fail with ENOMEM at mmap instead of SIGBUS at first touch. The container's own
 * limit comes from the agent's NRI plugin (node-agent/nri/).
 *
 * Devices are not the agent's business here: the pod requests each VFIO group and uio device from
 * the agent's device plugins, so the container runtime lists exactly those in the container's
 * spec and fences everything else itself, on v1 (devices.allow of the container cgroup) as on v2
 * (its eBPF device program), from the first instruction of the container.
 */
export class PodCgroups {
  private layout?: CgroupLayout;
  private readonly v1 = new CgroupV1();

  constructor(private readonly cgroupRoot: string) {}

  /** The controller hierarchies of this host (detected once). */
  async hierarchies(): Promise<CgroupLayout> {
    this.layout ??= await detectCgroupLayout(this.cgroupRoot);
    return this.layout;
  }

  /** The pod's cgroup in each hierarchy the agent writes to; throws {@link PodCgroupMissingError} if one is missing. */
  async locate(podUid: string): Promise<Partial<Record<CgroupController, string>>> {
    const layout = await this.hierarchies();
    const found: Partial<Record<CgroupController, string>> = {};
    const missing: string[] = [];
    for (const controller of ['cpuset', 'hugetlb'] as const) {
      const hierarchy = layout[controller];
      if (!hierarchy) throw new Error(`no cgroup hierarchy under ${this.cgroupRoot} has the ${controller} controller; enable it in the kernel`);
      const dir = await findPodCgroup(hierarchy.path, podUid);
      if (dir) found[controller] = dir;
      else missing.push(`${controller} (${hierarchy.path})`);
    }
    if (missing.length > 0) throw new PodCgroupMissingError(`cgroup of pod ${podUid} not found yet under ${missing.join(', ')}`);
    return found;
  }

  /** Applies every limit. Idempotent: re-applying converges container cgroups created since. */
  async apply(podUid: string, limits: PodLimits): Promise<AppliedPodLimits> {
    const layout = await this.hierarchies();
    const cgroups = await this.locate(podUid);
    const cpuset = layout.cpuset!;
    if (cpuset.version === 1) await this.v1.setCpuset(cgroups.cpuset!, limits.cpus, limits.mems);
    else await new CgroupV2(cpuset.path).setCpuset(cgroups.cpuset!, limits.cpus, limits.mems);

    const hugetlb = layout.hugetlb!;
    const hugetlbReservationLimit =
      hugetlb.version === 1
        ? await this.v1.setHugetlb(cgroups.hugetlb!, limits.pageSize, limits.hugepageBytes)
        : await new CgroupV2(hugetlb.path).setHugetlb(cgroups.hugetlb!, limits.pageSize, limits.hugepageBytes);

    return { cgroups, hugetlbReservationLimit };
  }
}
