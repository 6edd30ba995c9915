import { networkInterfaces } from 'node:os';
import { readdir, readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { isErrno, listDir, readKernelText } from './kernel-files.js';
import { parseMountInfo } from './mounts.js';

/** Addresses and routes of the host's interfaces (the agent runs with hostNetwork). */
export interface HostNetwork {
  /** Addresses of an interface, link-local ones excluded. */
  addresses(interfaceName: string): Promise<string[]>;
  /** Routes through an interface, link-local and multicast ones excluded. */
  routeCount(interfaceName: string): Promise<number>;
}

/** {@link HostNetwork} from the kernel: the interface list and /proc/net/{route,ipv6_route}. */
export class KernelHostNetwork implements HostNetwork {
  constructor(private readonly procRoot = '/proc') {}

  async addresses(interfaceName: string): Promise<string[]> {
    return (networkInterfaces()[interfaceName] ?? [])
      .filter((address) => !(address.family === 'IPv6' && address.address.toLowerCase().startsWith('fe80')))
      .map((address) => address.cidr ?? address.address);
  }

  async routeCount(interfaceName: string): Promise<number> {
    let count = 0;
    const v4 = (await readFile(posix.join(this.procRoot, 'net/route'), 'utf8').catch(() => '')).split('\n').slice(1);
    for (const line of v4) if (line.split(/\s+/)[0] === interfaceName) count++;
    const v6 = (await readFile(posix.join(this.procRoot, 'net/ipv6_route'), 'utf8').catch(() => '')).split('\n');
    for (const line of v6) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || fields[9] !== interfaceName) continue;
      const destination = fields[0]!;
      if (destination.startsWith('fe80') || destination.startsWith('ff')) continue;
      count++;
    }
    return count;
  }
}

/** Why the host needs a PCI device, or nothing. */
export interface HostUseProbe {
  /** A sentence saying why the host uses the device, or `undefined` when it is free to take. */
  describe(pciAddress: string): Promise<string | undefined>;
}

/** Options of {@link KernelHostUseProbe}. */
export interface KernelHostUseProbeOptions {
  sysfsRoot?: string;
  procRoot?: string;
  network?: HostNetwork;
  /** Mount table of the host. Default `<procRoot>/1/mountinfo` (the agent runs with hostPID). */
  mountInfoPath?: string;
}

const IFF_UP = 0x1;

/**
 * Finds host use of a PCI device: a network interface of it that is up with addresses or routes,
 * or a disk behind it (or a partition of one) that is mounted or used as swap.
 */
export class KernelHostUseProbe implements HostUseProbe {
  private readonly sysfsRoot: string;
  private readonly procRoot: string;
  private readonly network: HostNetwork;
  private readonly mountInfoPath: string;

  constructor(options: KernelHostUseProbeOptions = {}) {
    this.sysfsRoot = options.sysfsRoot ?? '/sys';
    this.procRoot = options.procRoot ?? '/proc';
    this.network = options.network ?? new KernelHostNetwork(this.procRoot);
    this.mountInfoPath = options.mountInfoPath ?? posix.join(this.procRoot, '1/mountinfo');
  }

  async describe(pciAddress: string): Promise<string | undefined> {
    const deviceDir = posix.join(this.sysfsRoot, 'bus/pci/devices', pciAddress);
    const reasons: string[] = [];
    for (const { name, dir } of await deviceNetInterfaces(deviceDir)) {
      const flags = Number.parseInt((await readKernelText(posix.join(dir, 'flags'))) ?? '0', 16);
      const operstate = await readKernelText(posix.join(dir, 'operstate'));
      if (!(flags & IFF_UP) && operstate !== 'up') continue;
      const addresses = await this.network.addresses(name);
      const routes = await this.network.routeCount(name);
      if (addresses.length > 0 || routes > 0) {
        const what = [addresses.length > 0 ? `addresses ${addresses.join(', ')}` : '', routes > 0 ? `${routes} route(s)` : ''].filter(Boolean);
        reasons.push(`interface ${name} is up with ${what.join(' and ')}`);
      }
    }
    const disks = await blockDevices(deviceDir);
    if (disks.size > 0) {
      const mountInfo = await readFile(this.mountInfoPath, 'utf8').catch(() => '');
      const mounted = new Map(parseMountInfo(mountInfo).map((entry) => [entry.device, entry.mountPoint]));
      const swaps = await readFile(posix.join(this.procRoot, 'swaps'), 'utf8').catch(() => '');
      for (const [device, name] of disks) {
        const mountPoint = mounted.get(device);
        if (mountPoint) reasons.push(`disk ${name} is mounted at ${mountPoint}`);
        if (swaps.split('\n').some((line) => line.split(/\s+/)[0] === `/dev/${name}`)) reasons.push(`disk ${name} is used as swap`);
      }
    }
    return reasons.length > 0 ? reasons.join('; ') : undefined;
  }
}

/** Sub-directories of a device's sysfs directory, a few levels deep, without following symlinks (driver, subsystem and firmware_node lead out of the device). */
async function deviceSubdirs(deviceDir: string, visit: (name: string, path: string) => Promise<boolean>, maxDepth = 5): Promise<void> {
  const walk = async (dir: string, depth: number): Promise<void> => {
    if (depth > maxDepth) return;
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR') || isErrno(err, 'EACCES')) return;
      throw err;
    }
    for (const entry of entries) {
      if (!entry.isDirectory()) continue;
      const path = posix.join(dir, entry.name);
      if (await visit(entry.name, path)) await walk(path, depth + 1);
    }
  };
  await walk(deviceDir, 0);
}

/** Network interfaces of a PCI device: `net/<name>` directly under it or under a child (virtio). */
export async function deviceNetInterfaces(deviceDir: string): Promise<{ name: string; dir: string }[]> {
  const found: { name: string; dir: string }[] = [];
  await deviceSubdirs(deviceDir, async (name, path) => {
    if (name !== 'net') return true;
    for (const iface of await listDir(path)) found.push({ name: iface, dir: posix.join(path, iface) });
    return false;
  });
  return found;
}

/** `major:minor` → name of every disk and partition behind a PCI device. */
async function blockDevices(deviceDir: string): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  await deviceSubdirs(deviceDir, async (name, path) => {
    if (name !== 'block') return true;
    for (const disk of await listDir(path)) await collectDisk(posix.join(path, disk), disk, found);
    return false;
  });
  return found;
}

async function collectDisk(diskDir: string, name: string, found: Map<string, string>): Promise<void> {
  const dev = await readKernelText(posix.join(diskDir, 'dev'));
  if (dev) found.set(dev, name);
  for (const entry of await listDir(diskDir)) {
    if (!entry.startsWith(name)) continue;
    const partition = await readKernelText(posix.join(diskDir, entry, 'dev'));
    if (partition) found.set(partition, entry);
  }
}
