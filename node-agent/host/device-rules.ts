import { stat } from 'node:fs/promises';
import { posix } from 'node:path';
import { isErrno, listDir } from './kernel-files.js';

/** One devices-cgroup rule: `c 10:196 rwm`. */
export interface DeviceRule {
  type: 'c' | 'b' | 'a';
  major: number | '*';
  minor: number | '*';
  access: string;
}

/** The rule as the devices cgroup files spell it. */
export function formatDeviceRule(rule: DeviceRule): string {
  return rule.type === 'a' ? 'a' : `${rule.type} ${rule.major}:${rule.minor} ${rule.access}`;
}

const char = (major: number | '*', minor: number | '*', access = 'rwm'): DeviceRule => ({ type: 'c', major, minor, access });

/**
 * What every container needs (the container runtimes' default list): mknod, null, zero, full,
 * random, urandom, tty, console, ptmx, pts and tun.
 */
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

/** /dev/vfio/vfio, the VFIO container device. */
export const VFIO_CONTAINER_RULE: DeviceRule = char(10, 196);

/** Device numbers of a character device node. */
export async function charDeviceRule(path: string): Promise<DeviceRule | undefined> {
  try {
    const info = await stat(path);
    if (!info.isCharacterDevice()) return undefined;
    // Linux dev_t: major in bits 8-19 (and 32+), minor in bits 0-7 and 20-31.
    const rdev = info.rdev;
    const major = ((rdev >> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
    const minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
    return char(major, minor);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

/** The device rules of a VNF: its own VFIO groups allowed, every other group on the host denied. */
export interface VfioDeviceRules {
  allow: DeviceRule[];
  denyForeign: DeviceRule[];
  /** Groups the VNF needs whose /dev/vfio node does not exist (vfio-pci not bound yet). */
  missing: number[];
}

/** Reads /dev/vfio under `devRoot` and splits its groups into the VNF's and everyone else's. */
export async function vfioDeviceRules(devRoot: string, groups: readonly number[]): Promise<VfioDeviceRules> {
  const rules: VfioDeviceRules = { allow: [], denyForeign: [], missing: [] };
  if (groups.length === 0) return rules;
  const vfioDir = posix.join(devRoot, 'vfio');
  rules.allow.push(VFIO_CONTAINER_RULE);
  const wanted = new Set(groups.map(String));
  for (const group of wanted) {
    const rule = await charDeviceRule(posix.join(vfioDir, group));
    if (rule) rules.allow.push(rule);
    else rules.missing.push(Number(group));
  }
  for (const entry of await listDir(vfioDir)) {
    if (entry === 'vfio' || wanted.has(entry) || !/^\d+$/.test(entry)) continue;
    const rule = await charDeviceRule(posix.join(vfioDir, entry));
    if (rule) rules.denyForeign.push(rule);
  }
  return rules;
}
