import { posix } from 'node:path';
import { PAGE_SIZE_BYTES, PAGE_SIZES, type PageSize } from '../src/api/common.js';
import { parseCpuList } from '../src/api/cpu-list.js';
import { memifLinkDir, vnfHostPaths } from '../src/api/host-paths.js';
import { isPciAddress } from '../src/api/pci-address.js';
import { NIC_DRIVERS, type HostPaths, type NicDriver, type VirtualNetworkFunction } from '../src/api/virtual-network-function.js';

/** A value from a custom resource that the agent refuses to act on; `field` names where it came from. */
export class InvalidPlacementError extends Error {
  override readonly name = 'InvalidPlacementError';
  /** Condition reason. */
  readonly reason = 'InvalidPlacement';

  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** A device to hand to the VNF, validated. */
export interface PlannedDevice {
  pciAddress: string;
  iommuGroup: number;
  driver: NicDriver;
}

/**
 * Everything the agent does on the host for one VNF, derived from its placement and validated:
 * nothing here reaches the host without having passed {@link planVnfHost}. It is written to the
 * journal before the first step, so teardown never needs the VNF object again.
 */
export interface VnfHostPlan {
  uid: string;
  namespace: string;
  name: string;
  numaNode: number;
  cpus: number[];
  pageSize: PageSize;
  hugepageBytes: number;
  pool: string;
  devices: PlannedDevice[];
  paths: HostPaths;
  /** memif link directories of the VNF's links, under paths.memif. */
  memifDirs: string[];
}

/** What the host offers, to check a placement against. */
export interface HostFacts {
  /** The agent's state root; every path must stay under it. */
  stateRoot: string;
  nodeName: string;
  /** Online CPU ids of the node. Default: not checked. */
  cpus?: ReadonlySet<number>;
  /** NUMA node ids. Default: not checked. */
  numaNodes?: ReadonlySet<number>;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const UID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MAX_CPU_ID = 8191;
const MAX_HUGEPAGE_BYTES = 2 ** 40;

function isUnder(root: string, path: string): boolean {
  const relative = posix.relative(posix.resolve(root), posix.resolve(path));
  return relative !== '' && !relative.startsWith('..') && !posix.isAbsolute(relative);
}

/**
 * Validates the VNF's placement for this node and turns it into a {@link VnfHostPlan}: UID and
 * names, CPU ids, NUMA node, page size and byte count, PCI addresses, IOMMU groups and drivers,
 * and host paths that must equal the deterministic ones under the state root.
 *
 * @throws InvalidPlacementError naming the first bad field.
 */
export function planVnfHost(vnf: VirtualNetworkFunction, facts: HostFacts): VnfHostPlan {
  const { uid, namespace, name } = vnf.metadata;
  if (!uid || !UID.test(uid)) throw new InvalidPlacementError('metadata.uid', `"${uid}" is not a Kubernetes UID`);
  if (!namespace || !DNS_LABEL.test(namespace)) throw new InvalidPlacementError('metadata.namespace', `"${namespace}" is not a namespace name`);
  if (!name || name.length > 253) throw new InvalidPlacementError('metadata.name', `"${name}" is not an object name`);
  const placement = vnf.status?.placement;
  if (!placement) throw new InvalidPlacementError('status.placement', 'the VNF is not placed');
  if (placement.node !== facts.nodeName) {
    throw new InvalidPlacementError('status.placement.node', `the VNF is placed on "${placement.node}", not on this node "${facts.nodeName}"`);
  }

  const numaNode = placement.numaNode;
  if (!Number.isInteger(numaNode) || numaNode < 0 || numaNode > 63 || (facts.numaNodes && !facts.numaNodes.has(numaNode))) {
    throw new InvalidPlacementError('status.placement.numaNode', `NUMA node ${numaNode} does not exist on this node`);
  }

  let cpus: number[];
  try {
    cpus = parseCpuList(String(placement.cpus));
  } catch (err) {
    throw new InvalidPlacementError('status.placement.cpus', (err as Error).message);
  }
  if (cpus.length === 0) throw new InvalidPlacementError('status.placement.cpus', 'no CPUs are listed');
  for (const cpu of cpus) {
    if (cpu > MAX_CPU_ID || (facts.cpus && !facts.cpus.has(cpu))) {
      throw new InvalidPlacementError('status.placement.cpus', `CPU ${cpu} is not an online CPU of this node`);
    }
  }

  const { pageSize, bytes, pool } = placement.hugepages ?? ({} as Partial<typeof placement.hugepages>);
  if (!(PAGE_SIZES as readonly string[]).includes(pageSize as string)) {
    throw new InvalidPlacementError('status.placement.hugepages.pageSize', `"${pageSize}" is not one of ${PAGE_SIZES.join(', ')}`);
  }
  const pageBytes = PAGE_SIZE_BYTES[pageSize as PageSize];
  if (!Number.isSafeInteger(bytes) || bytes! <= 0 || bytes! > MAX_HUGEPAGE_BYTES || bytes! % pageBytes !== 0) {
    throw new InvalidPlacementError('status.placement.hugepages.bytes', `${bytes} is not a positive multiple of ${pageSize} up to 1Ti`);
  }
  if (typeof pool !== 'string' || !DNS_LABEL.test(pool)) throw new InvalidPlacementError('status.placement.hugepages.pool', `"${pool}" is not a pool name`);

  const devices: PlannedDevice[] = [];
  const seen = new Set<string>();
  for (const [index, device] of (placement.devices ?? []).entries()) {
    const field = `status.placement.devices[${index}]`;
    if (!isPciAddress(device.pciAddress)) throw new InvalidPlacementError(`${field}.pciAddress`, `"${device.pciAddress}" is not a PCI address such as 0000:3b:00.1`);
    if (seen.has(device.pciAddress)) throw new InvalidPlacementError(`${field}.pciAddress`, `${device.pciAddress} is listed twice`);
    seen.add(device.pciAddress);
    if (!(NIC_DRIVERS as readonly string[]).includes(device.driver)) throw new InvalidPlacementError(`${field}.driver`, `"${device.driver}" is not one of ${NIC_DRIVERS.join(', ')}`);
    if (!Number.isInteger(device.iommuGroup) || device.iommuGroup < -1 || device.iommuGroup > 1_000_000) {
      throw new InvalidPlacementError(`${field}.iommuGroup`, `${device.iommuGroup} is not an IOMMU group`);
    }
    if (device.driver === 'vfio-pci' && device.iommuGroup < 0) {
      throw new InvalidPlacementError(`${field}.iommuGroup`, `vfio-pci needs an IOMMU group; enable the IOMMU (intel_iommu=on / amd_iommu=on) or use uio_pci_generic`);
    }
    devices.push({ pciAddress: device.pciAddress, iommuGroup: device.iommuGroup, driver: device.driver });
  }

  const expected = vnfHostPaths(facts.stateRoot, uid);
  for (const key of Object.keys(expected) as (keyof HostPaths)[]) {
    const actual = placement.hostPaths?.[key];
    if (actual !== expected[key]) {
      throw new InvalidPlacementError(
        `status.placement.hostPaths.${key}`,
        `"${actual}" is not "${expected[key]}": host paths must be the agent's own, under ${facts.stateRoot}; the controller and the agent disagree on the state root`,
      );
    }
  }

  const memifDirs: string[] = [];
  for (const [index, link] of (vnf.spec.links ?? []).entries()) {
    const field = `spec.links[${index}]`;
    if (!DNS_LABEL.test(link.name)) throw new InvalidPlacementError(`${field}.name`, `"${link.name}" is not a DNS label`);
    if (!DNS_LABEL.test(link.peer)) throw new InvalidPlacementError(`${field}.peer`, `"${link.peer}" is not a VNF name`);
    if (!DNS_LABEL.test(name)) throw new InvalidPlacementError('metadata.name', `"${name}" must be a DNS label to have memif links`);
    const [server, client] = link.role === 'server' ? [name, link.peer] : [link.peer, name];
    const dir = memifLinkDir(expected.memif!, namespace, server, client);
    if (!isUnder(expected.memif!, dir)) throw new InvalidPlacementError(field, `memif directory ${dir} leaves ${expected.memif}`);
    memifDirs.push(dir);
  }

  for (const path of [...Object.values(expected), ...memifDirs]) {
    if (!isUnder(facts.stateRoot, path)) throw new InvalidPlacementError('status.placement.hostPaths', `${path} is not under ${facts.stateRoot}`);
  }

  return {
    uid,
    namespace,
    name,
    numaNode,
    cpus,
    pageSize: pageSize as PageSize,
    hugepageBytes: bytes!,
    pool: pool!,
    devices,
    paths: expected,
    memifDirs: [...new Set(memifDirs)],
  };
}
