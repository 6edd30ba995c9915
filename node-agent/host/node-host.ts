import type { DeviceNodes } from '../device-plugin/plugin-devices.js';
import { KernelDeviceNodes } from './device-nodes.js';
import { DriverBinding } from './driver-binding.js';
import { HugepageReservation } from './hugepage-reservation.js';
import { HugetlbfsMount } from './hugetlbfs-mount.js';
import { KernelHostUseProbe, type HostNetwork, type HostUseProbe } from './host-use.js';
import { CommandMounter, type Mounter } from './mounts.js';
import { PodCgroups } from './pod-cgroups.js';
import { SysfsMasks } from './sysfs-masks.js';

/** Where the agent finds the kernel. In a DaemonSet these are host mounts; in tests, built trees. */
export interface HostRoots {
  /** sysfs. Default `/sys`. */
  sysfs: string;
  /** procfs. Default `/proc`. */
  proc: string;
  /** cgroup mounts. Default `/sys/fs/cgroup`. */
  cgroup: string;
  /** Device nodes (/dev/vfio, /dev/uioN). Default `/dev`. */
  dev: string;
}

/** The default roots: the real kernel. */
export const DEFAULT_HOST_ROOTS: HostRoots = { sysfs: '/sys', proc: '/proc', cgroup: '/sys/fs/cgroup', dev: '/dev' };

/** Every host mechanism of the agent, each behind its own small interface. */
export interface NodeHost {
  roots: HostRoots;
  mounter: Mounter;
  hugetlbfs: HugetlbfsMount;
  masks: SysfsMasks;
  drivers: DriverBinding;
  podCgroups: PodCgroups;
  reservation: HugepageReservation;
  hostUse: HostUseProbe;
  /** The VFIO and uio device nodes the device plugins hand to kubelet. */
  deviceNodes: DeviceNodes;
}

/** Options of {@link createNodeHost}. */
export interface NodeHostOptions {
  /** Mount namespace to run mount(8) in (`/proc/1/ns/mnt`). Default: the agent's own. */
  mountNamespace?: string;
  /** Host interfaces' addresses and routes. Default: the kernel's. */
  network?: HostNetwork;
  /** Mount table checked for disks in use. Default `<proc>/1/mountinfo`. */
  hostMountInfo?: string;
  /** How long a sysfs driver write may take to show, in ms. Default 5000. */
  driverSettleTimeoutMs?: number;
  /** Replace single mechanisms (tests). */
  overrides?: Partial<Omit<NodeHost, 'roots'>>;
}

/** Builds the host mechanisms over `roots`. */
export function createNodeHost(roots: Partial<HostRoots> = {}, options: NodeHostOptions = {}): NodeHost {
  const all: HostRoots = { ...DEFAULT_HOST_ROOTS, ...roots };
  const mounter = options.overrides?.mounter ?? new CommandMounter({ procRoot: all.proc, mountNamespace: options.mountNamespace });
  const hostUse =
    options.overrides?.hostUse ??
    new KernelHostUseProbe({ sysfsRoot: all.sysfs, procRoot: all.proc, network: options.network, mountInfoPath: options.hostMountInfo });
  return {
    roots: all,
    mounter,
    hostUse,
    hugetlbfs: options.overrides?.hugetlbfs ?? new HugetlbfsMount(mounter),
    masks: options.overrides?.masks ?? new SysfsMasks(all.sysfs),
    drivers: options.overrides?.drivers ?? new DriverBinding(all.sysfs, { hostUse, settleTimeoutMs: options.driverSettleTimeoutMs }),
    podCgroups: options.overrides?.podCgroups ?? new PodCgroups(all.cgroup),
    deviceNodes: options.overrides?.deviceNodes ?? new KernelDeviceNodes(all.sysfs, all.dev),
    reservation: options.overrides?.reservation ?? new HugepageReservation(all.sysfs, { procRoot: all.proc }),
  };
}
