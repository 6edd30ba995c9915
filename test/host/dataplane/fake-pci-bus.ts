/**
 * A fake PCI bus with a few NICs bound to vfio-pci, under a directory of the test: the tests never
 * show the machine's real PCI devices to a VNF, and the kernel here has no VFIO anyway.
 *
 * It is shaped like sysfs where the node agent and EAL read it: `devices/pci0000:81/<addr>` with
 * vendor, device, class, numa_node, resource and a driver link, and `bus/pci/devices/<addr>`
 * linking to it. The links are absolute, so the agent's PCI mask (which copies the bus links)
 * resolves inside a container that mounts this tree at the same path, as the real links resolve
 * in the container's own /sys. A device with no driver link would be dropped silently by EAL
 * 22.11's scan, hence the fake vfio-pci.
 */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { posix } from 'node:path';

/** Vendor and device of the fake NICs: an Intel X710, which Debian's net_i40e PMD claims. */
export const FAKE_NIC = { vendor: '8086', device: '1572' } as const;

/** A fake PCI bus with NICs bound to a fake vfio-pci, under `root`. */
export class FakePciBus {
  readonly devicesDir: string;

  constructor(
    readonly root: string,
    readonly addresses: readonly string[],
  ) {
    const driver = posix.join(root, 'bus/pci/drivers/vfio-pci');
    const bus = posix.join(root, 'bus/pci/devices');
    for (const dir of [driver, bus]) mkdirSync(dir, { recursive: true });
    this.devicesDir = posix.join(root, 'devices/pci0000:81');
    for (const address of addresses) {
      const dir = this.devicePath(address);
      mkdirSync(dir, { recursive: true });
      const files: Record<string, string> = {
        vendor: `0x${FAKE_NIC.vendor}`,
        device: `0x${FAKE_NIC.device}`,
        subsystem_vendor: `0x${FAKE_NIC.vendor}`,
        subsystem_device: '0x0000',
        class: '0x020000',
        numa_node: '0',
        resource: '0x0000000000000000 0x0000000000000000 0x0000000000000000\n'.repeat(7),
      };
      for (const [file, value] of Object.entries(files)) writeFileSync(posix.join(dir, file), `${value.trimEnd()}\n`);
      symlinkSync(driver, posix.join(dir, 'driver'));
      symlinkSync(dir, posix.join(bus, address));
    }
  }

  devicePath(address: string): string {
    return posix.join(this.devicesDir, address);
  }
}
