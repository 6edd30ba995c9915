import { stat } from 'node:fs/promises';
import { posix } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { isPciAddress } from '../../src/api/pci-address.js';
import type { HostUseProbe } from './host-use.js';
import { isErrno, readKernelText, readLinkName, writeKernelAttribute } from './kernel-files.js';

/** Drivers the agent binds devices to for user-space I/O. */
export const USERSPACE_DRIVERS = ['vfio-pci', 'uio_pci_generic', 'igb_uio'] as const;
/** One of {@link USERSPACE_DRIVERS}. */
export type UserspaceDriver = (typeof USERSPACE_DRIVERS)[number];

/** Why a binding was refused or failed; `reason` is a CamelCase condition reason. */
export class DriverBindingError extends Error {
  override readonly name = 'DriverBindingError';

  constructor(
    readonly reason: 'DeviceInUseByHost' | 'DeviceNotFound' | 'DriverNotLoaded' | 'DriverBindFailed',
    message: string,
  ) {
    super(message);
  }
}

/** Options of {@link DriverBinding}. */
export interface DriverBindingOptions {
  hostUse: HostUseProbe;
  /** How long a write may take to show its effect in sysfs, in ms. Default 5000. */
  settleTimeoutMs?: number;
}

/**
 * Rebinding PCI devices through sysfs: driver_override, unbind, then drivers_probe, so the
 * device goes to exactly the driver asked for and no other device of the same id is affected
 * (unlike new_id). Every write is checked by reading the `driver` link back.
 */
export class DriverBinding {
  private readonly hostUse: HostUseProbe;
  private readonly settleTimeoutMs: number;

  constructor(
    private readonly sysfsRoot: string,
    options: DriverBindingOptions,
  ) {
    this.hostUse = options.hostUse;
    this.settleTimeoutMs = options.settleTimeoutMs ?? 5000;
  }

  private deviceDir(address: string): string {
    if (!isPciAddress(address)) throw new RangeError(`"${address}" is not a PCI address such as 0000:3b:00.1`);
    return posix.join(this.sysfsRoot, 'bus/pci/devices', address);
  }

  /** Whether the device exists. */
  async exists(address: string): Promise<boolean> {
    try {
      await stat(this.deviceDir(address));
      return true;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false;
      throw err;
    }
  }

  /** The driver bound now, or '' when none. */
  async currentDriver(address: string): Promise<string> {
    return (await readLinkName(posix.join(this.deviceDir(address), 'driver'))) ?? '';
  }

  /**
   * Binds the device to `driver`. Refuses a device the host is using. Idempotent: a device already
   * bound to `driver` is left alone.
   */
  async bind(address: string, driver: UserspaceDriver): Promise<void> {
    const dir = this.deviceDir(address);
    if (!(await this.exists(address))) throw new DriverBindingError('DeviceNotFound', `PCI device ${address} does not exist on this node`);
    const current = await this.currentDriver(address);
    if (current === driver) return;
    const hostUse = await this.hostUse.describe(address);
    if (hostUse) {
      throw new DriverBindingError(
        'DeviceInUseByHost',
        `PCI device ${address} is in use by the host (${hostUse}); it cannot be handed to a VNF: remove it from the agent's NIC pools or free it on the host`,
      );
    }
    if (!(await this.driverLoaded(driver))) {
      throw new DriverBindingError('DriverNotLoaded', `driver ${driver} is not loaded on this node: load its kernel module (modprobe ${driver.replaceAll('-', '_')})`);
    }
    await writeKernelAttribute(posix.join(dir, 'driver_override'), `${driver}\n`);
    if (current) {
      await writeKernelAttribute(posix.join(this.sysfsRoot, 'bus/pci/drivers', current, 'unbind'), address);
      await this.waitForDriver(address, '');
    }
    await writeKernelAttribute(posix.join(this.sysfsRoot, 'bus/pci/drivers_probe'), address);
    await this.waitForDriver(address, driver);
  }

  /**
   * Gives the device back to `original` ('' = no driver) and clears driver_override. Idempotent;
   * a device that disappeared (hot-unplugged) is nothing to restore.
   */
  async restore(address: string, original: string): Promise<void> {
    const dir = this.deviceDir(address);
    if (!(await this.exists(address))) return;
    const current = await this.currentDriver(address);
    const override = ((await readKernelText(posix.join(dir, 'driver_override'))) ?? '(null)').split('\n')[0]!;
    // "(null)" is how the kernel shows no override.
    let overrideSet = override !== '(null)' && override !== '';
    if (current !== original) {
      if (original) {
        await writeKernelAttribute(posix.join(dir, 'driver_override'), `${original}\n`);
        overrideSet = true;
      }
      if (current) {
        await writeKernelAttribute(posix.join(this.sysfsRoot, 'bus/pci/drivers', current, 'unbind'), address);
        await this.waitForDriver(address, '');
      }
      if (original) {
        await writeKernelAttribute(posix.join(this.sysfsRoot, 'bus/pci/drivers_probe'), address);
        await this.waitForDriver(address, original);
      }
    }
    // An empty write clears the override.
    if (overrideSet) await writeKernelAttribute(posix.join(dir, 'driver_override'), '\n');
  }

  private async driverLoaded(driver: string): Promise<boolean> {
    try {
      return (await stat(posix.join(this.sysfsRoot, 'bus/pci/drivers', driver))).isDirectory();
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false;
      throw err;
    }
  }

  private async waitForDriver(address: string, expected: string): Promise<void> {
    const deadline = Date.now() + this.settleTimeoutMs;
    for (;;) {
      const current = await this.currentDriver(address);
      if (current === expected) return;
      if (Date.now() >= deadline) {
        throw new DriverBindingError(
          'DriverBindFailed',
          `PCI device ${address} is bound to "${current || 'no driver'}" instead of "${expected || 'no driver'}" after ${this.settleTimeoutMs}ms; see the kernel log (dmesg)`,
        );
      }
      await delay(5);
    }
  }
}
