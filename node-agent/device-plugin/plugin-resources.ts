import type { ContainerAllocateResponse, Device } from './device-plugin-api.js';
import { hugepageAllocation, listedHugepages, type HugepageDevices } from './hugepage-devices.js';
import { containerAllocation, listedDevice, type DeviceNodeView, type PluginDevice } from './plugin-devices.js';

/** What one of the agent's device plugins serves: a NIC's device, alone in its resource, or the pool pages of one size. */
export type PluginResource = PluginDevice | HugepageDevices;

/** The NIC devices among `resources`: those whose health depends on device nodes of the host. */
export function nicDevices(resources: readonly PluginResource[]): PluginDevice[] {
  return resources.filter((resource): resource is PluginDevice => resource.kind !== 'hugepages');
}

/** The resource's ListAndWatch device list. */
export function listedDevices(resource: PluginResource, view: DeviceNodeView): Device[] {
  return resource.kind === 'hugepages' ? listedHugepages(resource) : [listedDevice(resource, view)];
}

/** The answer to one container's Allocate; throws an AllocationError for what kubelet cannot be given. */
export function allocateContainer(resource: PluginResource, requestedIds: readonly string[], view: DeviceNodeView): ContainerAllocateResponse {
  return resource.kind === 'hugepages' ? hugepageAllocation(resource, requestedIds) : containerAllocation(resource, requestedIds, view);
}
