/**
 * A fake PCI "kernel" for driver-binding tests: it builds a sysfs tree shaped like the kernel's
 * (/sys/bus/pci/devices/<addr> -> ../../../devices/pci0000:00/<addr>, driver and iommu_group
 * links, drivers/<name>/{bind,unbind}, drivers_probe, driver_override) in a temp directory and
 * reacts to writes the way the kernel does: unbind drops the driver link, drivers_probe binds the
 * driver_override driver (or the device's native one), bind binds the named driver.
 *
 * It runs in the test process and watches the attribute files with inotify, so the agent code
 * (in-process or in a child process that gets SIGKILLed) writes plain files, exactly as it writes
 * the real sysfs. Devices of this tree never exist on the machine: real PCI devices are never touched.
 */
import { watch, type FSWatcher } from 'node:fs';
import { mkdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, truncateSync, writeFileSync, existsSync, unlinkSync } from 'node:fs';
import { posix } from 'node:path';

/** A device of the fake tree. */
export interface FakePciDevice {
  address: string;
  vendor: string;
  device: string;
  /** e.g. 0x020000 for Ethernet. */
  pciClass: string;
  numaNode: number;
  iommuGroup?: number;
  /** Driver bound at start; '' for none. */
  driver: string;
  /** Driver drivers_probe picks when no override is set (the kernel's id match). Default: `driver`. */
  nativeDriver?: string;
  sriovTotalVfs?: number;
  /** A network interface of the device (net/<name>), with IFF_UP when `up`. */
  netInterface?: { name: string; up: boolean };
  /** A disk behind the device (nvme), as major:minor. */
  disk?: { name: string; dev: string };
}

export class FakePciKernel {
  readonly sysfs: string;
  private readonly watchers: FSWatcher[] = [];
  private readonly devices = new Map<string, FakePciDevice>();
  /** Every operation the fake kernel carried out, for assertions. */
  readonly log: string[] = [];

  constructor(root: string) {
    this.sysfs = root;
    for (const dir of ['bus/pci/devices', 'bus/pci/drivers', 'devices/pci0000:00', 'kernel/iommu_groups']) mkdirSync(posix.join(root, dir), { recursive: true });
    const probe = posix.join(root, 'bus/pci/drivers_probe');
    writeFileSync(probe, '');
    this.watchFile(probe, (value) => this.probe(value));
  }

  addDriver(name: string): void {
    const dir = posix.join(this.sysfs, 'bus/pci/drivers', name);
    if (existsSync(dir)) return;
    mkdirSync(dir, { recursive: true });
    for (const file of ['bind', 'unbind', 'new_id']) writeFileSync(posix.join(dir, file), '');
    this.watchFile(posix.join(dir, 'bind'), (value) => this.bind(name, value));
    this.watchFile(posix.join(dir, 'unbind'), (value) => this.unbind(name, value));
  }

  addDevice(device: FakePciDevice): void {
    this.devices.set(device.address, device);
    const dir = this.deviceDir(device.address);
    mkdirSync(dir, { recursive: true });
    writeFileSync(posix.join(dir, 'vendor'), `0x${device.vendor}\n`);
    writeFileSync(posix.join(dir, 'device'), `0x${device.device}\n`);
    writeFileSync(posix.join(dir, 'class'), `${device.pciClass}\n`);
    writeFileSync(posix.join(dir, 'numa_node'), `${device.numaNode}\n`);
    writeFileSync(posix.join(dir, 'driver_override'), '(null)\n');
    if (device.sriovTotalVfs !== undefined) writeFileSync(posix.join(dir, 'sriov_totalvfs'), `${device.sriovTotalVfs}\n`);
    if (device.iommuGroup !== undefined) {
      const group = posix.join(this.sysfs, 'kernel/iommu_groups', String(device.iommuGroup), 'devices');
      mkdirSync(group, { recursive: true });
      symlinkSync(`../../../../devices/pci0000:00/${device.address}`, posix.join(group, device.address));
      symlinkSync(`../../../kernel/iommu_groups/${device.iommuGroup}`, posix.join(dir, 'iommu_group'));
    }
    if (device.netInterface) {
      const net = posix.join(dir, 'net', device.netInterface.name);
      mkdirSync(net, { recursive: true });
      writeFileSync(posix.join(net, 'flags'), device.netInterface.up ? '0x1003\n' : '0x1002\n');
      writeFileSync(posix.join(net, 'operstate'), device.netInterface.up ? 'up\n' : 'down\n');
    }
    if (device.disk) {
      const disk = posix.join(dir, 'nvme/nvme0/block', device.disk.name);
      mkdirSync(disk, { recursive: true });
      writeFileSync(posix.join(disk, 'dev'), `${device.disk.dev}\n`);
    }
    symlinkSync(`../../../devices/pci0000:00/${device.address}`, posix.join(this.sysfs, 'bus/pci/devices', device.address));
    if (device.driver) {
      this.addDriver(device.driver);
      this.link(device.address, device.driver);
    }
  }

  /** Driver bound now ('' for none), read from the tree. */
  driverOf(address: string): string {
    try {
      return posix.basename(readlinkSync(posix.join(this.deviceDir(address), 'driver')));
    } catch {
      return '';
    }
  }

  /** driver_override as the kernel shows it. */
  overrideOf(address: string): string {
    return this.override(address) || '(null)';
  }

  stop(): void {
    for (const watcher of this.watchers.splice(0)) watcher.close();
  }

  /** Stops and deletes the tree. */
  destroy(): void {
    this.stop();
    rmSync(this.sysfs, { recursive: true, force: true });
  }

  private deviceDir(address: string): string {
    return posix.join(this.sysfs, 'devices/pci0000:00', address);
  }

  private override(address: string): string {
    const text = readFileSync(posix.join(this.deviceDir(address), 'driver_override'), 'utf8').split('\n')[0]!.trim();
    return text === '(null)' ? '' : text;
  }

  private watchFile(path: string, onWrite: (value: string) => void): void {
    const handle = () => {
      let value: string;
      try {
        value = readFileSync(path, 'utf8').trim();
      } catch {
        return;
      }
      if (!value) return;
      truncateSync(path, 0);
      onWrite(value);
    };
    this.watchers.push(watch(path, handle));
  }

  private link(address: string, driver: string): void {
    symlinkSync(`../../../bus/pci/drivers/${driver}`, posix.join(this.deviceDir(address), 'driver'));
    symlinkSync(`../../../../devices/pci0000:00/${address}`, posix.join(this.sysfs, 'bus/pci/drivers', driver, address));
    this.log.push(`bind ${address} ${driver}`);
  }

  private unbind(driver: string, address: string): void {
    if (this.driverOf(address) !== driver) {
      this.log.push(`unbind ${address} ${driver}: ENODEV`);
      return;
    }
    unlinkSync(posix.join(this.deviceDir(address), 'driver'));
    rmSync(posix.join(this.sysfs, 'bus/pci/drivers', driver, address), { force: true });
    this.log.push(`unbind ${address} ${driver}`);
  }

  private bind(driver: string, address: string): void {
    if (!this.devices.has(address) || this.driverOf(address)) {
      this.log.push(`bind ${address} ${driver}: EBUSY`);
      return;
    }
    const override = this.override(address);
    if (override && override !== driver) {
      this.log.push(`bind ${address} ${driver}: override ${override}`);
      return;
    }
    this.link(address, driver);
  }

  private probe(address: string): void {
    const device = this.devices.get(address);
    if (!device || this.driverOf(address)) return;
    const override = this.override(address);
    const driver = override || device.nativeDriver || device.driver;
    if (!driver || !existsSync(posix.join(this.sysfs, 'bus/pci/drivers', driver))) {
      this.log.push(`probe ${address}: no driver`);
      return;
    }
    this.link(address, driver);
  }
}
