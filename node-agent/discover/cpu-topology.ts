import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { parseCpuList } from '../../src/api/cpu-list.js';
import type { InventoryCpu } from '../../src/api/nfv-node.js';
import { listDir, readKernelInt, readKernelText } from '../host/kernel-files.js';

/** Where discovery reads the kernel from. */
export interface DiscoveryRoots {
  /** sysfs root. Default `/sys`. */
  sysfs: string;
  /** procfs root (cmdline). Default `/proc`. */
  proc: string;
}

/**
 * CPUs the scheduler leaves alone: /sys/devices/system/cpu/isolated plus the isolcpus= and
 * nohz_full= kernel parameters (isolcpus may carry flags first: `isolcpus=domain,managed_irq,2-7`).
 */
export function parseIsolatedFromCmdline(cmdline: string): number[] {
  const cpus = new Set<number>();
  for (const word of cmdline.split(/\s+/)) {
    if (word === '--') break;
    const match = /^(isolcpus|nohz_full)=(.*)$/.exec(word);
    if (!match) continue;
    const list = match[2]!
      .split(',')
      .filter((part) => /^\d/.test(part))
      .join(',');
    try {
      for (const cpu of parseCpuList(list)) cpus.add(cpu);
    } catch {
      // A kernel parameter we cannot read isolates nothing we can rely on.
    }
  }
  return [...cpus].sort((a, b) => a - b);
}

/** Isolated CPUs from sysfs and the kernel command line. */
export async function discoverIsolatedCpus(roots: DiscoveryRoots): Promise<Set<number>> {
  const isolated = new Set(parseCpuList((await readKernelText(posix.join(roots.sysfs, 'devices/system/cpu/isolated'))) ?? ''));
  const cmdline = await readFile(posix.join(roots.proc, 'cmdline'), 'utf8').catch(() => '');
  for (const cpu of parseIsolatedFromCmdline(cmdline)) isolated.add(cpu);
  return isolated;
}

/** NUMA node of each CPU, from /sys/devices/system/node/nodeN/cpulist; CPU → 0 on kernels without NUMA. */
export async function discoverCpuNumaNodes(roots: DiscoveryRoots): Promise<Map<number, number>> {
  const byCpu = new Map<number, number>();
  const nodeDir = posix.join(roots.sysfs, 'devices/system/node');
  for (const entry of await listDir(nodeDir)) {
    const match = /^node(\d+)$/.exec(entry);
    if (!match) continue;
    const cpus = parseCpuList((await readKernelText(posix.join(nodeDir, entry, 'cpulist'))) ?? '');
    for (const cpu of cpus) byCpu.set(cpu, Number(match[1]));
  }
  return byCpu;
}

/** Online CPU ids. */
export async function discoverOnlineCpus(roots: DiscoveryRoots): Promise<number[]> {
  const cpuDir = posix.join(roots.sysfs, 'devices/system/cpu');
  const online = await readKernelText(posix.join(cpuDir, 'online'));
  if (online !== undefined) return parseCpuList(online);
  return (await listDir(cpuDir))
    .map((entry) => /^cpu(\d+)$/.exec(entry)?.[1])
    .filter((id): id is string => id !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

/** Every online CPU with its NUMA node, socket, core and isolation, and the threads per core. */
export async function discoverCpus(roots: DiscoveryRoots): Promise<{ cpus: InventoryCpu[]; threadsPerCore: number }> {
  const cpuDir = posix.join(roots.sysfs, 'devices/system/cpu');
  const isolated = await discoverIsolatedCpus(roots);
  const numa = await discoverCpuNumaNodes(roots);
  const cpus: InventoryCpu[] = [];
  let threadsPerCore = 1;
  for (const id of await discoverOnlineCpus(roots)) {
    const topology = posix.join(cpuDir, `cpu${id}`, 'topology');
    const socket = Math.max(0, (await readKernelInt(posix.join(topology, 'physical_package_id'))) ?? 0);
    const core = Math.max(0, (await readKernelInt(posix.join(topology, 'core_id'))) ?? id);
    const siblings = parseCpuList((await readKernelText(posix.join(topology, 'thread_siblings_list'))) ?? String(id));
    threadsPerCore = Math.max(threadsPerCore, siblings.length);
    cpus.push({ id, numaNode: numa.get(id) ?? 0, socket, core, isolated: isolated.has(id) });
  }
  return { cpus, threadsPerCore };
}
