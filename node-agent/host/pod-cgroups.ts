import type { PageSize } from '../../src/api/common.js';
import { detectCgroupLayout, findPodCgroup, type CgroupController, type CgroupLayout } from './cgroup-layout.js';
import { CgroupV1, type DevicesOutcome } from './cgroup-v1.js';
import { CgroupV2 } from './cgroup-v2.js';
import { vfioDeviceRules } from './device-rules.js';

/** Limits of one VNF pod. */
export interface PodLimits {
  cpus: readonly number[];
  /** NUMA nodes (cpuset.mems). */
  mems: readonly number[];
  pageSize: PageSize;
  hugepageBytes: number;
  /** IOMMU groups of the VNF's vfio-pci devices. */
  vfioGroups: readonly number[];
}

/** What was applied, per controller, for the journal and the logs. */
export interface AppliedPodLimits {
  cgroups: Partial<Record<CgroupController, string>>;
  /** Whether the hugetlb reservation limit (rsvd) exists on this kernel and was set. */
  hugetlbReservationLimit: boolean;
  /** How devices are fenced: v1 rules per cgroup, or `runtimeEbpf` on v2 (see {@link PodCgroups}). */
  devices: DevicesOutcome[] | 'runtimeEbpf' | 'none';
}

/** The pod's cgroup does not exist (yet) in a hierarchy the agent needs. */
export class PodCgroupMissingError extends Error {
  override readonly name = 'PodCgroupMissingError';
}

/**
 * Applies a VNF's limits to its pod's cgroups on v1, v2 and hybrid hosts.
 *
 * Devices on cgroup v2: there are no devices files, only eBPF programs (BPF_CGROUP_DEVICE) that
 * the container runtime attaches to each container cgroup from the OCI spec's device list. When
 * several programs are attached every one must allow an access, so an extra program could only
 * narrow the runtime's; it could not grant /dev/vfio. The agent therefore attaches none: the fence
 * on v2 is the runtime's program, which denies every device not in the container spec, and the
 * VFIO nodes reach the spec only through the pod's own /dev/vfio/<group> mounts.
 */
export class PodCgroups {
  private layout?: CgroupLayout;
  private readonly v1 = new CgroupV1();

  constructor(
    private readonly cgroupRoot: string,
    private readonly devRoot = '/dev',
  ) {}

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
    for (const controller of ['cpuset', 'hugetlb', 'devices'] as const) {
      const hierarchy = layout[controller];
      if (!hierarchy) {
        if (controller !== 'devices') throw new Error(`no cgroup hierarchy under ${this.cgroupRoot} has the ${controller} controller; enable it in the kernel`);
        continue;
      }
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

    let devices: AppliedPodLimits['devices'] = 'none';
    if (layout.devices?.version === 2) devices = 'runtimeEbpf';
    else if (layout.devices && cgroups.devices && limits.vfioGroups.length > 0) {
      const rules = await vfioDeviceRules(this.devRoot, limits.vfioGroups);
      if (rules.missing.length > 0) throw new Error(`/dev/vfio/${rules.missing.join(', /dev/vfio/')} does not exist: is the device bound to vfio-pci with an IOMMU enabled?`);
      devices = await this.v1.setDevices(cgroups.devices, rules.allow, rules.denyForeign);
    }
    return { cgroups, hugetlbReservationLimit, devices };
  }
}
