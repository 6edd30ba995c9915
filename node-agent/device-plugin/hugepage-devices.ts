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
  /** IDs kubelet has handed to running pods (its PodResources API): listed first, whatever their index. */
  inUse: ReadonlySet<string>;
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
    .map(([pageSize, numaNodes]): HugepageDevices => ({ kind: 'hugepages', resource: hugepageResource(pageSize), pageSize, numaNodes, inUse: new Set() }))
    .sort((a, b) => a.resource.localeCompare(b.resource));
}

/** The device ID of page `index` on a NUMA node: `numa0-17`. */
export function hugepageDeviceId(numaNode: number, index: number): string {
  return `numa${numaNode}-${index}`;
}

const DEVICE_ID = /^numa(\d+)-(\d+)$/;

/**
 * The IDs listed on one NUMA node: those kubelet has handed to running pods, then the lowest free
 * indices up to `pages`. The pages are interchangeable (kubelet counts them; a VNF's pages are its
 * hugetlbfs mount), but kubelet remembers which IDs each pod got: when a pool shrinks, dropping an
 * ID a running pod holds would make kubelet count that pod's pages as free again and refuse to
 * admit the pod after its own restart. So a shrink drops free IDs only, and a growth adds the
 * lowest free ones, which leaves every listed ID listed while the count does not fall.
 */
export function hugepageIdsOn(numaNode: number, pages: number, inUse: ReadonlySet<string>): string[] {
  const held = [...inUse]
    .map((id) => DEVICE_ID.exec(id))
    .filter((match): match is RegExpExecArray => match !== null && Number(match[1]) === numaNode)
    .map((match) => Number(match[2]))
    .sort((a, b) => a - b);
  const listed = new Set(held);
  for (let index = 0; listed.size < pages; index++) listed.add(index);
  return [...listed].sort((a, b) => a - b).map((index) => hugepageDeviceId(numaNode, index));
}

/** The ListAndWatch list: every page Healthy (the kernel holds it), with its NUMA node for kubelet's topology manager. */
export function listedHugepages(devices: HugepageDevices): Device[] {
  return devices.numaNodes.flatMap(({ numaNode, pages }) =>
    hugepageIdsOn(numaNode, pages, devices.inUse).map((ID): Device => ({ ID, health: 'Healthy', topology: { nodes: [{ ID: numaNode }] } })),
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
  const listed = devices.numaNodes.filter((n) => n.pages > 0).map((n) => `${n.pages} pages on NUMA node ${n.numaNode}`);
  return listed.length > 0 ? listed.join(', ') : 'no pages';
}
