/**
 * Reads what EAL and dpdk-testpmd print: what EAL detected (lcores, NUMA nodes, PCI devices),
 * the ports and forwarding lcores testpmd set up, the periodic port statistics, the final
 * forward statistics and errors. Pure, so the parsing is tested without DPDK.
 */

/** One periodic "NIC statistics for port N" block. */
export interface PortStats {
  port: number;
  rxPackets: number;
  txPackets: number;
  rxPps: number;
  txPps: number;
}

/** What one testpmd run printed. */
export interface TestpmdReport {
  /** "EAL: Detected CPU lcores: N". */
  detectedLcores?: number;
  /** "EAL: Detected NUMA nodes: N". */
  numaNodes?: number;
  /** PCI devices EAL found and tried to probe, from "PCI device X on NUMA socket" and "Requested device X cannot be used". */
  pciDevices: string[];
  /** Ports by id, with their MAC address. */
  ports: Map<number, string>;
  /** Lcores that forward, from "Logical Core N (socket S) forwards packets on K streams". */
  forwardingLcores: number[];
  /** Periodic statistics blocks, in order. */
  stats: PortStats[];
  /** Accumulated RX and TX packets over all ports, from the final forward statistics. */
  totals?: { rxPackets: number; txPackets: number };
  /** "CPU cycles/packet=X" of the final statistics (with --record-core-cycles). */
  cyclesPerPacket?: number;
  /** "EAL: Error - exiting with code: N" and its "Cause:" line. */
  fatal?: { code: number; cause: string };
  /** Lines that say an EAL memory allocation failed. */
  memoryErrors: string[];
}

/** testpmd clears the screen before each statistics block. */
const ANSI_ESCAPE = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*[A-Za-z]`, 'g');

const number = (text: string | undefined) => (text === undefined ? undefined : Number(text));

/** Parses testpmd's (and EAL's) combined stdout and stderr. */
export function parseTestpmdOutput(output: string): TestpmdReport {
  const text = output.replace(ANSI_ESCAPE, '');
  const report: TestpmdReport = { pciDevices: [], ports: new Map(), forwardingLcores: [], stats: [], memoryErrors: [] };
  report.detectedLcores = number(/EAL: Detected CPU lcores: (\d+)/.exec(text)?.[1]);
  report.numaNodes = number(/EAL: Detected NUMA nodes: (\d+)/.exec(text)?.[1]);
  const pci = new Set<string>();
  for (const match of text.matchAll(/EAL: (?:PCI device|Requested device) ([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])/g)) pci.add(match[1]!);
  report.pciDevices = [...pci].sort();
  for (const match of text.matchAll(/^Port (\d+): ([0-9A-F]{2}(?::[0-9A-F]{2}){5})$/gm)) report.ports.set(Number(match[1]), match[2]!);
  for (const match of text.matchAll(/Logical Core (\d+) \(socket \d+\) forwards packets/g)) report.forwardingLcores.push(Number(match[1]));
  const statsBlock = /NIC statistics for port (\d+)\s+#+\s+RX-packets:\s+(\d+)[\s\S]*?TX-packets:\s+(\d+)[\s\S]*?Rx-pps:\s+(\d+)[\s\S]*?Tx-pps:\s+(\d+)/g;
  for (const match of text.matchAll(statsBlock)) {
    report.stats.push({ port: Number(match[1]), rxPackets: Number(match[2]), txPackets: Number(match[3]), rxPps: Number(match[4]), txPps: Number(match[5]) });
  }
  const totals = /Accumulated forward statistics for all ports\+*\s+RX-packets:\s+(\d+)[\s\S]*?TX-packets:\s+(\d+)/.exec(text);
  if (totals) report.totals = { rxPackets: Number(totals[1]), txPackets: Number(totals[2]) };
  report.cyclesPerPacket = number(/CPU cycles\/packet=([\d.]+)/.exec(text)?.[1]);
  const fatal = /EAL: Error - exiting with code: (\d+)\s*\n\s*Cause: (.*)/.exec(text);
  if (fatal) report.fatal = { code: Number(fatal[1]), cause: fatal[2]!.trim() };
  report.memoryErrors = text.split('\n').filter((line) => /Cannot init memory|Cannot allocate memory|SIGBUS: Cannot mmap more hugepages|mmap\(\) failed/.test(line)).map((line) => line.trim());
  return report;
}

/** The latest RX packet counter of `port` in the periodic statistics, or 0 before the first. */
export function latestRxPackets(report: TestpmdReport, port: number): number {
  return report.stats.filter((s) => s.port === port).at(-1)?.rxPackets ?? 0;
}

/**
 * The most hugepage memory EAL held at any point, from its debug lines: the pages preallocated
 * for --socket-mem ("Allocating N pages of size 2M") and the heap's growth and shrinking
 * ("Heap on socket N was expanded/shrunk by XMB").
 */
export function maxHeapBytes(output: string): number {
  let bytes = 0;
  let max = 0;
  for (const match of output.matchAll(/Allocating (\d+) pages of size (\d+)M on socket|Heap on socket \d+ was (expanded|shrunk) by (\d+)MB/g)) {
    if (match[1] !== undefined) bytes += Number(match[1]) * Number(match[2]) * 2 ** 20;
    else bytes += (match[3] === 'expanded' ? 1 : -1) * Number(match[4]) * 2 ** 20;
    max = Math.max(max, bytes);
  }
  return max;
}

/**
 * EAL lcore options for `cpus`: one lcore per CPU with -l, or, for a VNF with a single CPU,
 * the main and the forwarding lcore both on it (testpmd needs a forwarding lcore besides main).
 */
export function lcoreArgs(cpus: readonly number[]): string[] {
  if (cpus.length >= 2) return ['-l', cpus.join(',')];
  const [cpu] = cpus;
  return ['--lcores', `0@${cpu},1@${cpu}`];
}
