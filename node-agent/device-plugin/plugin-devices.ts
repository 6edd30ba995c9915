import { uioDeviceResource, vfioGroupResource } from '../../src/api/device-resources.js';
import type { InventoryNic } from '../../src/api/nfv-node.js';
import type { ContainerAllocateResponse, Device, DeviceHealth, DeviceSpec } from './device-plugin-api.js';

/**
 * One device the agent offers kubelet, as the single device of its own resource: the controller
 * has already chosen it for one VNF, so kubelet never has to pick.
 */
export type PluginDevice =
  | { kind: 'vfio'; resource: string; group: number; numaNode: number }
  | { kind: 'uio'; resource: string; pciAddress: string; numaNode: number };

/** What the host shows of the device nodes (read by {@link DeviceNodes}). */
export interface DeviceNodeView {
  /** /dev/vfio/vfio exists (vfio-pci is loaded). */
  vfioContainer: boolean;
  /** Groups whose /dev/vfio/<N> exists: a device of the group is bound to vfio-pci. */
  vfioGroups: ReadonlySet<number>;
  /** `/dev/uioN` (host path) of each PCI device a uio driver holds, from sysfs `<device>/uio/uioN`. */
  uioNodes: ReadonlyMap<string, string>;
}

/** Reads the device nodes the plugins advertise. */
export interface DeviceNodes {
  view(devices: readonly PluginDevice[]): Promise<DeviceNodeView>;
}

/**
 * The devices of a node's NICs: one VFIO group resource per IOMMU group and one uio resource per
 * NIC, since the VNF's spec, not the node, decides which driver a NIC gets. NICs the host uses are
 * left out, as the controller never places them. Sorted by resource.
 */
export function pluginDevicesOf(nics: readonly InventoryNic[]): PluginDevice[] {
  const byResource = new Map<string, PluginDevice>();
  for (const nic of nics) {
    if (nic.hostUse) continue;
    if (nic.iommuGroup >= 0) {
      const resource = vfioGroupResource(nic.iommuGroup);
      if (!byResource.has(resource)) byResource.set(resource, { kind: 'vfio', resource, group: nic.iommuGroup, numaNode: nic.numaNode });
    }
    const resource = uioDeviceResource(nic.pciAddress);
    byResource.set(resource, { kind: 'uio', resource, pciAddress: nic.pciAddress, numaNode: nic.numaNode });
  }
  return [...byResource.values()].sort((a, b) => a.resource.localeCompare(b.resource));
}

/** The device's ID in ListAndWatch and Allocate: the group number or the PCI address. */
export function pluginDeviceId(device: PluginDevice): string {
  return device.kind === 'vfio' ? String(device.group) : device.pciAddress;
}

/** The device nodes the container gets, on the host and in the container alike; undefined while one is missing. */
export function deviceSpecs(device: PluginDevice, view: DeviceNodeView): DeviceSpec[] | undefined {
  const rw = (path: string): DeviceSpec => ({ container_path: path, host_path: path, permissions: 'rw' });
  if (device.kind === 'vfio') {
    return view.vfioContainer && view.vfioGroups.has(device.group) ? [rw('/dev/vfio/vfio'), rw(`/dev/vfio/${device.group}`)] : undefined;
  }
  const node = view.uioNodes.get(device.pciAddress);
  return node ? [rw(node)] : undefined;
}

/** Healthy exactly when its device nodes exist, i.e. after the agent bound the driver. */
export function deviceHealth(device: PluginDevice, view: DeviceNodeView): DeviceHealth {
  return deviceSpecs(device, view) ? 'Healthy' : 'Unhealthy';
}

/** The ListAndWatch entry of the device, with its NUMA node for kubelet's topology manager. */
export function listedDevice(device: PluginDevice, view: DeviceNodeView): Device {
  return {
    ID: pluginDeviceId(device),
    health: deviceHealth(device, view),
    ...(device.numaNode >= 0 ? { topology: { nodes: [{ ID: device.numaNode }] } } : {}),
  };
}

/** A request kubelet cannot be given what it asks for; answered with FAILED_PRECONDITION. */
export class AllocationError extends Error {
  override readonly name = 'AllocationError';
}

/**
 * The answer to one container's Allocate: the device nodes, created and allowed by the runtime
 * with the container. Refuses an unknown ID or a device whose nodes vanished since it was listed.
 */
export function containerAllocation(device: PluginDevice, requestedIds: readonly string[], view: DeviceNodeView): ContainerAllocateResponse {
  const id = pluginDeviceId(device);
  const unknown = requestedIds.filter((requested) => requested !== id);
  if (unknown.length > 0) throw new AllocationError(`${device.resource} has only device ${id}; kubelet asked for ${unknown.join(', ')}`);
  const devices = requestedIds.length === 0 ? [] : deviceSpecs(device, view);
  if (!devices) throw new AllocationError(`${device.resource}: ${describeMissing(device)} does not exist (any more); the node agent binds the driver before the pod can start`);
  return { envs: {}, mounts: [], devices, annotations: {}, cdi_devices: [] };
}

function describeMissing(device: PluginDevice): string {
  return device.kind === 'vfio' ? `/dev/vfio/${device.group}` : `the uio device of ${device.pciAddress}`;
}
