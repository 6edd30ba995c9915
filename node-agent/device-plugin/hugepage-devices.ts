import type { PageSize } from '../../src/api/common.js';
import { hugepageResource } from '../../src/api/device-resources.js';
import { hugepageDeviceCounts } from '../../src/api/hugepage-devices.js';
import type { NfvNodeStatus } from '../../src/api/nfv-node.js';
import type { ContainerAllocateResponse, Device } from './device-plugin-api.js';
import { AllocationError } from './plugin-devices.js';

/**
 * The pool pages of one size on this node, offered to kubelet as `nfv.dev/hugepages-<size>` with
 * one device per page: the scheduler and kubelet's admission count them like any extended
 * resource, and the list follows the pools at runtime (ListAndWatch), where kubelet's native
 * `hugepages-<size>` is read once when kubelet starts.
 */
export interface HugepageDevices {
  kind: 'hugepages';
  resource: string;
  pageSize: PageSize;
  /** Pages per NUMA node, sorted by NUMA node. */
  numaNodes: readonly { numaNode: number; pages: number }[];
}

/**
 * One {@link HugepageDevices} per page size the node's NfvNode status has reservations or ledger
 * entries of, with the counts of {@link hugepageDeviceCounts}: the figure the controller places
 * from, never below what VNFs hold. Sorted by resource.
 */
export function hugepageDevicesOf(status: Pick<NfvNodeStatus, 'hugepagePools' | 'allocations'> | undefined): HugepageDevices[] {
  const bySize = new Map<PageSize, { numaNode: number; pages: number }[]>();
  for (const { pageSize, numaNode, pages } of hugepageDeviceCounts(status)) bySize.set(pageSize, [...(bySize.get(pageSize) ?? []), { numaNode, pages }]);
  return [...bySize]
    .map(([pageSize, numaNodes]): HugepageDevices => ({ kind: 'hugepages', resource: hugepageResource(pageSize), pageSize, numaNodes }))
    .sort((a, b) => a.resource.localeCompare(b.resource));
}

/**
 * The device ID of page `index` on a NUMA node: `numa0-17`. Growing a pool adds IDs at the end of
 * its NUMA node and shrinking removes the last ones. The pages are interchangeable (kubelet counts
 * them; the VNF's pages are its hugetlbfs mount), so a shrink that removes an ID kubelet gave a
 * running pod costs nothing while the pod runs: the list never drops below what VNFs hold, so the
 * counts of the scheduler and of kubelet's admission stay right. Only a re-admission of that pod
 * (a kubelet restart while its container is not running) would fail, on the missing ID.
 */
export function hugepageDeviceId(numaNode: number, index: number): string {
  return `numa${numaNode}-${index}`;
}

/** The ListAndWatch list: every page Healthy (the kernel holds it), with its NUMA node for kubelet's topology manager. */
export function listedHugepages(devices: HugepageDevices): Device[] {
  return devices.numaNodes.flatMap(({ numaNode, pages }) =>
    Array.from({ length: pages }, (_, index): Device => ({ ID: hugepageDeviceId(numaNode, index), health: 'Healthy', topology: { nodes: [{ ID: numaNode }] } })),
  );
}

/**
 * The answer to one container's Allocate of pages: nothing to add to the container (the VNF's
 * hugetlbfs mount is a pod volume and its limits are the agent's cgroup writes), once every
 * requested ID is one the plugin lists now.
 */
export function hugepageAllocation(devices: HugepageDevices, requestedIds: readonly string[]): ContainerAllocateResponse {
  const listed = new Set(listedHugepages(devices).map((device) => device.ID));
  const unknown = requestedIds.filter((id) => !listed.has(id));
  if (unknown.length > 0) {
    throw new AllocationError(`${devices.resource} lists ${describeCounts(devices)}; kubelet asked for ${unknown.join(', ')}, which it does not list (any more)`);
  }
  return { envs: {}, mounts: [], devices: [], annotations: {}, cdi_devices: [] };
}

function describeCounts(devices: HugepageDevices): string {
  const listed = devices.numaNodes.filter((n) => n.pages > 0).map((n) => `${hugepageDeviceId(n.numaNode, 0)}..${hugepageDeviceId(n.numaNode, n.pages - 1)}`);
  return listed.length > 0 ? listed.join(', ') : 'no pages';
}
