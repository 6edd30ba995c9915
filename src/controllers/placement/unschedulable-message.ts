import { PAGE_SIZE_BYTES } from '../../api/common.js';
import { formatByteQuantity } from '../../api/quantity.js';
import type { VnfSpec } from '../../api/virtual-network-function.js';
import type { ChosenDevice } from './select-devices.js';

/** How well one NUMA node of one node fits a VNF. */
export interface NumaFit {
  node: string;
  numaNode: number;
  /** CPUs the VNF could take there. */
  freeCpus: number;
  /** The CPUs it would get; undefined when too few are free. */
  cpus: number[] | undefined;
  freePages: number;
  neededPages: number;
  devices: ChosenDevice[];
  /** Interfaces for which no free matching NIC is on this NUMA node. */
  missingInterfaces: string[];
}

function shortfalls(fit: NumaFit): number {
  return Number(fit.cpus === undefined) + Number(fit.freePages < fit.neededPages) + Number(fit.missingInterfaces.length > 0);
}

function deficit(fit: NumaFit, spec: VnfSpec): number {
  return Math.max(0, spec.cpus.count - fit.freeCpus) / spec.cpus.count + Math.max(0, fit.neededPages - fit.freePages) / fit.neededPages;
}

/**
 * "no node has 4 free isolated CPUs and 2Gi of 1Gi hugepages from pool gold on one NUMA node;
 * closest: node-3 NUMA 1 has 2 free CPUs; skipped: node-1 (cordoned)". The closest NUMA node is
 * the one short of the fewest things, then by the smallest relative shortfall.
 */
export function describeUnschedulable(spec: VnfSpec, fits: readonly NumaFit[], skipped: readonly string[]): string {
  const { pageSize, amount, pool } = spec.hugepages;
  const wants = [
    `${spec.cpus.count} free isolated ${spec.cpus.fullCores ? 'CPUs on whole cores' : 'CPUs'}`,
    `${amount} of ${pageSize} hugepages from pool ${pool}`,
  ];
  if (spec.interfaces.length > 0) wants.push(`NICs for ${spec.interfaces.map((i) => i.name).join(', ')}`);
  const numaClause = spec.cpus.numaNode === undefined ? 'one NUMA node' : `NUMA node ${spec.cpus.numaNode}`;
  let message = `no node has ${joinAnd(wants)} on ${numaClause}`;

  const closest = [...fits].sort(
    (a, b) => shortfalls(a) - shortfalls(b) || deficit(a, spec) - deficit(b, spec) || a.node.localeCompare(b.node) || a.numaNode - b.numaNode,
  )[0];
  if (closest) {
    const has = [`${closest.freeCpus} free CPUs`];
    if (closest.freePages < closest.neededPages) {
      has.push(`${formatByteQuantity(closest.freePages * PAGE_SIZE_BYTES[pageSize])} free in pool ${pool}`);
    }
    if (closest.missingInterfaces.length > 0) has.push(`no free NIC for ${closest.missingInterfaces.join(', ')}`);
    message += `; closest: ${closest.node} NUMA ${closest.numaNode} has ${joinAnd(has)}`;
  } else if (skipped.length === 0) {
    message += '; no NfvNode inventory is published yet: is the node agent running on the NFV nodes?';
  }
  if (skipped.length > 0) {
    const shown = skipped.slice(0, 5).join('; ');
    message += `; skipped ${shown}${skipped.length > 5 ? ` and ${skipped.length - 5} more` : ''}`;
  }
  return message;
}

function joinAnd(parts: readonly string[]): string {
  return parts.length <= 1 ? parts.join('') : `${parts.slice(0, -1).join(', ')} and ${parts.at(-1)}`;
}
