/**
 * Checks the one invariant that must never break: no CPU, device or hugepage is held twice, and
 * the ledgers and the VNF statuses tell the same story.
 */
import { parseCpuList } from '../../src/api/cpu-list.js';
import type { NfvNode } from '../../src/api/nfv-node.js';
import type { VirtualNetworkFunction } from '../../src/api/virtual-network-function.js';
import { resources } from '../../src/controllers/resources.js';
import type { KubeClient } from '../../src/runtime/kube-client.js';

/** What the audit found; `problems` is empty when all is well. */
export interface AllocationAudit {
  problems: string[];
  /** Ledger entries over the audited nodes. */
  entries: number;
  /** VNFs whose status has a placement. */
  placed: number;
}

/** Audits the ledgers of `nodeNames` against the VNFs of `namespace`. */
export async function auditAllocations(client: KubeClient, nodeNames: readonly string[], namespace: string): Promise<AllocationAudit> {
  const problems: string[] = [];
  const { items: vnfs } = await client.list<VirtualNetworkFunction>(resources.vnfs, { namespace });
  const byUid = new Map(vnfs.map((v) => [v.metadata.uid!, v]));
  let entries = 0;
  const ledgerOf = new Map<string, { node: string; cpus: string }>();
  for (const name of nodeNames) {
    const node = await client.get<NfvNode>(resources.nfvNodes, name);
    const cpuOwner = new Map<number, string>();
    const deviceOwner = new Map<string, string>();
    for (const entry of node.status?.allocations ?? []) {
      if (!entry.vnf.startsWith(`${namespace}/`)) continue;
      entries++;
      ledgerOf.set(entry.uid, { node: name, cpus: entry.cpus });
      for (const cpu of parseCpuList(entry.cpus)) {
        if (cpuOwner.has(cpu)) problems.push(`${name}: CPU ${cpu} held by ${cpuOwner.get(cpu)} and ${entry.vnf}`);
        cpuOwner.set(cpu, entry.vnf);
      }
      for (const device of entry.devices) {
        if (deviceOwner.has(device.pciAddress)) problems.push(`${name}: ${device.pciAddress} held by ${deviceOwner.get(device.pciAddress)} and ${entry.vnf}`);
        deviceOwner.set(device.pciAddress, entry.vnf);
      }
      if (!byUid.has(entry.uid)) problems.push(`${name}: ledger entry of ${entry.vnf} (${entry.uid}) has no VNF`);
    }
    for (const pool of node.status?.hugepagePools ?? []) {
      const claimed = (node.status?.allocations ?? [])
        .filter((a) => a.hugepages.pool === pool.pool && a.numaNode === pool.numaNode)
        .reduce((sum, a) => sum + a.hugepages.bytes, 0);
      if (claimed > pool.allocated * (pool.pageSize === '1Gi' ? 2 ** 30 : 2 ** 21)) {
        problems.push(`${name}: pool ${pool.pool} NUMA ${pool.numaNode} claims ${claimed} bytes, more than allocated`);
      }
    }
  }
  let placed = 0;
  for (const vnf of vnfs) {
    const placement = vnf.status?.placement;
    if (!placement) continue;
    placed++;
    const ledger = ledgerOf.get(vnf.metadata.uid!);
    if (!ledger) problems.push(`VNF ${vnf.metadata.name} says ${placement.node} CPUs ${placement.cpus} but no ledger holds it`);
    else if (ledger.node !== placement.node || ledger.cpus !== placement.cpus) {
      problems.push(`VNF ${vnf.metadata.name} says ${placement.node} CPUs ${placement.cpus}, ledger says ${ledger.node} CPUs ${ledger.cpus}`);
    }
  }
  return { problems, entries, placed };
}
