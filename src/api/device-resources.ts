import { PAGE_SIZE_BYTES, type PageSize } from './common.js';
import type { NicDriver } from './virtual-network-function.js';

/**
 * Extended resources of the node agent's kubelet device plugins. For NICs the controller has
 * already chosen the exact devices, so every such resource stands for one thing and a pod requests
 * it with count 1: kubelet then hands the device nodes to the container runtime, which creates them
 * in the container and allows them in its device cgroup (v1 rules or v2 eBPF program) atomically
 * with the container. A hostPath of a char device would get EPERM from that cgroup instead.
 * Hugepages are counted instead: one resource per page size, one device per page.
 */
export const DEVICE_RESOURCE_DOMAIN = 'nfv.dev';

/** Drivers whose devices DPDK opens through /dev/uioN. */
export const UIO_DRIVERS: ReadonlySet<NicDriver> = new Set(['uio_pci_generic', 'igb_uio']);

const PCI_ADDRESS = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;

/** A device a VNF is placed on, as far as its resource is concerned. */
export interface ResourceDevice {
  pciAddress: string;
  iommuGroup: number;
  driver: NicDriver;
}

/** `nfv.dev/vfio-group-<N>`: one VFIO group, i.e. /dev/vfio/vfio and /dev/vfio/<N>. */
export function vfioGroupResource(group: number): string {
  if (!Number.isInteger(group) || group < 0) throw new RangeError(`IOMMU group ${group} is not a non-negative integer: vfio-pci needs an IOMMU`);
  return `${DEVICE_RESOURCE_DOMAIN}/vfio-group-${group}`;
}

/** `nfv.dev/uio-0000-3b-00.0`: the /dev/uioN of one PCI device (resource names allow no colon). */
export function uioDeviceResource(pciAddress: string): string {
  if (!PCI_ADDRESS.test(pciAddress)) throw new RangeError(`"${pciAddress}" is not a PCI address like 0000:3b:00.0`);
  return `${DEVICE_RESOURCE_DOMAIN}/uio-${pciAddress.replaceAll(':', '-')}`;
}

/**
 * `nfv.dev/hugepages-2Mi`: the pool pages of one size on a node, counted in pages. Not kubelet's
 * native `hugepages-<size>`, which kubelet reads from the kernel only when it starts: the agent's
 * device plugin lists the pages its pools hold whenever they change.
 */
export function hugepageResource(pageSize: PageSize): string {
  if (!Object.hasOwn(PAGE_SIZE_BYTES, pageSize)) throw new RangeError(`"${String(pageSize)}" is not a hugepage size: use ${Object.keys(PAGE_SIZE_BYTES).join(' or ')}`);
  return `${DEVICE_RESOURCE_DOMAIN}/hugepages-${pageSize}`;
}

/** Whether `resource` is one of the `nfv.dev/hugepages-<size>` resources. */
export function isHugepageResource(resource: string): boolean {
  return (Object.keys(PAGE_SIZE_BYTES) as PageSize[]).some((pageSize) => resource === hugepageResource(pageSize));
}

/**
 * The resource a device needs in the pod; undefined for a NIC the kernel driver keeps, and for
 * vfio-pci without an IOMMU, which the node agent refuses to prepare (NodePrepared names it).
 */
export function deviceResource(device: ResourceDevice): string | undefined {
  if (device.driver === 'vfio-pci') return device.iommuGroup >= 0 ? vfioGroupResource(device.iommuGroup) : undefined;
  if (UIO_DRIVERS.has(device.driver)) return uioDeviceResource(device.pciAddress);
  return undefined;
}

/** The resources of a placement, each once (two functions of one IOMMU group share it), sorted. */
export function deviceResources(devices: readonly ResourceDevice[]): string[] {
  return [...new Set(devices.map(deviceResource).filter((name): name is string => name !== undefined))].sort();
}
