import { PAGE_SIZE_BYTES } from '../../api/common.js';
import type { HugepagePoolSpec } from '../../api/hugepage-pool.js';
import { parseCpuList } from '../../api/cpu-list.js';
import { parseByteQuantity } from '../../api/quantity.js';
import type { VnfSpec } from '../../api/virtual-network-function.js';
import type { CandidateNode } from './candidate-node.js';
import { ineligibility } from './node-eligibility.js';
import { usableCpus } from './usable-cpus.js';
import { selectDevices, type ChosenDevice } from './select-devices.js';
import { describeUnschedulable, type NumaFit } from './unschedulable-message.js';

/** What one VNF asks the planner for. */
export interface PlacementRequest {
  spec: VnfSpec;
  /** The HugepagePool named by spec.hugepages.pool. */
  poolSpec: HugepagePoolSpec;
  /** A linked VNF that is already placed: memif needs both ends on one node. */
  peer?: { name: string; node: string };
}

/** The allocation chosen for a VNF. */
export interface PlacementDecision {
  node: string;
  numaNode: number;
  cpus: number[];
  hugepages: { pool: string; pageSize: VnfSpec['hugepages']['pageSize']; bytes: number };
  devices: ChosenDevice[];
}

/** Either a decision or, when nothing fits, a message that names what is short and where. */
export type PlacementPlan = { placed: true; decision: PlacementDecision } | { placed: false; message: string };

/**
 * Chooses a node and one NUMA node on it that hold all of the VNF's CPUs, hugepages and NICs,
 * from the inventory minus what the ledger says other VNFs hold. Pure and deterministic: the
 * same input gives the same answer on every replica. Among the NUMA nodes that fit, the one that
 * is left with the fewest free CPUs wins (best fit), so large NUMA nodes stay whole for large VNFs.
 */
export function planPlacement(request: PlacementRequest, nodes: readonly CandidateNode[]): PlacementPlan {
  const { spec } = request;
  const fits: NumaFit[] = [];
  const skipped: string[] = [];
  for (const node of [...nodes].sort((a, b) => a.name.localeCompare(b.name))) {
    const reason = skipReason(request, node);
    if (reason) skipped.push(reason);
    else fits.push(...numaFits(request, node));
  }
  const best = fits
    .filter((fit) => fit.cpus !== undefined && fit.freePages >= fit.neededPages && fit.missingInterfaces.length === 0)
    .sort((a, b) => a.freeCpus - b.freeCpus || a.node.localeCompare(b.node) || a.numaNode - b.numaNode)[0];
  if (!best) return { placed: false, message: describeUnschedulable(spec, fits, skipped) };
  return {
    placed: true,
    decision: {
      node: best.node,
      numaNode: best.numaNode,
      cpus: best.cpus!,
      hugepages: { pool: spec.hugepages.pool, pageSize: spec.hugepages.pageSize, bytes: parseByteQuantity(spec.hugepages.amount) },
      devices: best.devices,
    },
  };
}

function skipReason(request: PlacementRequest, node: CandidateNode): string | undefined {
  const { spec, peer } = request;
  if (peer && peer.node !== node.name) return `${node.name}: not the node of linked VNF ${peer.name}`;
  const reason = ineligibility(node, spec, request.poolSpec.nodeSelector);
  if (reason) return `${node.name}: ${reason}`;
  if (request.poolSpec.pageSize !== spec.hugepages.pageSize) {
    return `${node.name}: HugepagePool ${spec.hugepages.pool} has ${request.poolSpec.pageSize} pages, not ${spec.hugepages.pageSize}`;
  }
  const threads = node.inventory.threadsPerCore;
  if (spec.cpus.fullCores && spec.cpus.count % threads !== 0) {
    return `${node.name}: fullCores needs a multiple of its ${threads} threads per core (set spec.cpus.count accordingly or fullCores: false)`;
  }
  return undefined;
}

function numaFits(request: PlacementRequest, node: CandidateNode): NumaFit[] {
  const { spec } = request;
  const pageBytes = PAGE_SIZE_BYTES[spec.hugepages.pageSize];
  const neededPages = parseByteQuantity(spec.hugepages.amount) / pageBytes;
  const takenCpus = new Set(node.allocations.flatMap((a) => parseCpuList(a.cpus)));
  const numaIds = node.inventory.numaNodes.map((n) => n.id).filter((id) => spec.cpus.numaNode === undefined || id === spec.cpus.numaNode);
  return numaIds.map((numaNode) => {
    const usable = usableCpus(
      node.inventory.cpus.filter((cpu) => cpu.numaNode === numaNode),
      takenCpus,
      spec.cpus.fullCores,
    );
    const reserved = node.pools
      .filter((p) => p.pool === spec.hugepages.pool && p.numaNode === numaNode)
      .reduce((sum, p) => sum + p.allocated, 0);
    const claimedBytes = node.allocations
      .filter((a) => a.numaNode === numaNode && a.hugepages.pool === spec.hugepages.pool)
      .reduce((sum, a) => sum + a.hugepages.bytes, 0);
    const { devices, missing } = selectDevices(
      node.inventory.nics,
      node.allocations,
      spec.interfaces,
      numaNode,
      node.inventory.numaNodes.length === 1,
    );
    return {
      node: node.name,
      numaNode,
      freeCpus: usable.length,
      cpus: usable.length >= spec.cpus.count ? usable.slice(0, spec.cpus.count).map((c) => c.id).sort((a, b) => a - b) : undefined,
      freePages: Math.max(0, reserved - Math.ceil(claimedBytes / pageBytes)),
      neededPages,
      devices,
      missingInterfaces: missing,
    };
  });
}
