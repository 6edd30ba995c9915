/** Builds sysfs and procfs trees shaped like the kernel's, for discovery and reservation tests. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { posix } from 'node:path';
import { formatCpuList } from '../../../src/api/cpu-list.js';

/** Shape of a built machine. */
export interface FakeMachine {
  numaNodes: number;
  coresPerNode: number;
  threadsPerCore: number;
  /** /sys/devices/system/cpu/isolated. */
  isolated?: number[];
  /** /proc/cmdline. */
  cmdline?: string;
  /** nr_hugepages/free_hugepages per node, by kB size. */
  hugepages?: Record<string, { total: number; free: number }>;
}

function write(path: string, text: string): void {
  mkdirSync(posix.dirname(path), { recursive: true });
  writeFileSync(path, text);
}

/**
 * Linux numbering: cpu ids run over all cores of all nodes first, then the second hyperthreads
 * (cpu N and N + cores are siblings).
 */
export function buildFakeMachine(sysfs: string, proc: string, machine: FakeMachine): void {
  const cores = machine.numaNodes * machine.coresPerNode;
  const cpuDir = posix.join(sysfs, 'devices/system/cpu');
  const cpusOfNode = new Map<number, number[]>();
  for (let thread = 0; thread < machine.threadsPerCore; thread++) {
    for (let core = 0; core < cores; core++) {
      const id = thread * cores + core;
      const node = Math.floor(core / machine.coresPerNode);
      const siblings = Array.from({ length: machine.threadsPerCore }, (_, t) => t * cores + core);
      write(posix.join(cpuDir, `cpu${id}/topology/core_id`), `${core % machine.coresPerNode}\n`);
      write(posix.join(cpuDir, `cpu${id}/topology/physical_package_id`), `${node}\n`);
      write(posix.join(cpuDir, `cpu${id}/topology/thread_siblings_list`), `${formatCpuList(siblings)}\n`);
      cpusOfNode.set(node, [...(cpusOfNode.get(node) ?? []), id]);
    }
  }
  const all = formatCpuList(Array.from({ length: cores * machine.threadsPerCore }, (_, i) => i));
  for (const file of ['online', 'present', 'possible']) write(posix.join(cpuDir, file), `${all}\n`);
  write(posix.join(cpuDir, 'isolated'), `${formatCpuList(machine.isolated ?? [])}\n`);
  for (const [node, cpus] of cpusOfNode) {
    const nodeDir = posix.join(sysfs, 'devices/system/node', `node${node}`);
    write(posix.join(nodeDir, 'cpulist'), `${formatCpuList(cpus)}\n`);
    for (const [kb, counts] of Object.entries(machine.hugepages ?? { '2048': { total: 0, free: 0 }, '1048576': { total: 0, free: 0 } })) {
      const dir = posix.join(nodeDir, 'hugepages', `hugepages-${kb}kB`);
      write(posix.join(dir, 'nr_hugepages'), `${counts.total}\n`);
      write(posix.join(dir, 'free_hugepages'), `${counts.free}\n`);
      write(posix.join(dir, 'surplus_hugepages'), '0\n');
    }
  }
  write(posix.join(proc, 'cmdline'), `${machine.cmdline ?? 'root=/dev/sda1 quiet'}\n`);
}
