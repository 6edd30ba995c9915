import { stat } from 'node:fs/promises';
import { posix } from 'node:path';
import type { DeviceNodeView, DeviceNodes, PluginDevice } from '../device-plugin/plugin-devices.js';
import { isErrno, listDir } from './kernel-files.js';

/**
 * The device nodes vfio-pci and the uio drivers make, read from the kernel under the agent's
 * roots (`/host/dev` and `/host/sys` in the DaemonSet, built trees in tests). The paths handed to
 * kubelet stay the host's `/dev/...`, which is where the container runtime looks.
 */
export class KernelDeviceNodes implements DeviceNodes {
  constructor(
    private readonly sysfsRoot: string,
    private readonly devRoot: string,
  ) {}

  async view(devices: readonly PluginDevice[]): Promise<DeviceNodeView> {
    const vfioGroups = new Set<number>();
    const uioNodes = new Map<string, string>();
    for (const device of devices) {
      if (device.kind === 'vfio') {
        if (await this.isCharDevice(posix.join('vfio', String(device.group)))) vfioGroups.add(device.group);
        continue;
      }
      // The kernel names the node after the uio class device: <pci device>/uio/uio3 -> /dev/uio3.
      const names = (await listDir(posix.join(this.sysfsRoot, 'bus/pci/devices', device.pciAddress, 'uio'))).filter((name) => /^uio\d+$/.test(name));
      for (const name of names) if (await this.isCharDevice(name)) uioNodes.set(device.pciAddress, `/dev/${name}`);
    }
    return { vfioContainer: await this.isCharDevice('vfio/vfio'), vfioGroups, uioNodes };
  }

  private async isCharDevice(relative: string): Promise<boolean> {
    try {
      return (await stat(posix.join(this.devRoot, relative))).isCharacterDevice();
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return false;
      throw err;
    }
  }
}
