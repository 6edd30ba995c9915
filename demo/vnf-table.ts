import type { VirtualNetworkFunction } from '../src/api/virtual-network-function.js';
import { PAGE_SIZE_BYTES } from '../src/api/common.js';
import { findCondition } from '../src/runtime/conditions.js';

const COLUMNS = ['NAMESPACE', 'NAME', 'PHASE', 'READY', 'NODE', 'NUMA', 'CPUS', 'HUGEPAGES', 'NICS', 'REASON'];

/** A `kubectl get vnf -o wide`-like table of VNFs, with the reason of their Ready condition. */
export function renderVnfTable(vnfs: readonly VirtualNetworkFunction[]): string {
  const rows = [...vnfs]
    .sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`))
    .map((vnf) => {
      const placement = vnf.status?.placement;
      const ready = findCondition(vnf.status?.conditions, 'Ready');
      return [
        vnf.metadata.namespace ?? '',
        vnf.metadata.name ?? '',
        vnf.status?.phase ?? '',
        ready?.status ?? 'Unknown',
        placement?.node ?? '-',
        placement ? String(placement.numaNode) : '-',
        placement?.cpus ?? '-',
        placement ? `${placement.hugepages.bytes / PAGE_SIZE_BYTES[placement.hugepages.pageSize]}x${placement.hugepages.pageSize}` : '-',
        placement ? placement.devices.map((d) => d.pciAddress).join(',') || '-' : '-',
        ready?.reason ?? '',
      ];
    });
  const widths = COLUMNS.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(COLUMNS), ...rows.map(line)].join('\n');
}
