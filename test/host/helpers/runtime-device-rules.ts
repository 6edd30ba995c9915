/**
 * The devices cgroup (v1) a container runtime gives every container: deny all, then its default
 * device list. Test kubelets use it so container cgroups look like runc's.
 */

/** One devices-cgroup rule: `c 10:196 rwm`. */
export interface DeviceRule {
  type: 'c' | 'b';
  major: number | '*';
  minor: number | '*';
  access: string;
}

/** The rule as the devices cgroup files spell it. */
export function formatDeviceRule(rule: DeviceRule): string {
  return `${rule.type} ${rule.major}:${rule.minor} ${rule.access}`;
}

const char = (major: number | '*', minor: number | '*', access = 'rwm'): DeviceRule => ({ type: 'c', major, minor, access });

/** runc's default list: mknod, null, zero, full, random, urandom, tty, console, ptmx, pts and tun. */
export const BASELINE_DEVICE_RULES: readonly DeviceRule[] = [
  char('*', '*', 'm'),
  { type: 'b', major: '*', minor: '*', access: 'm' },
  char(1, 3),
  char(1, 5),
  char(1, 7),
  char(1, 8),
  char(1, 9),
  char(5, 0),
  char(5, 1),
  char(5, 2),
  char(136, '*'),
  char(10, 200),
];
