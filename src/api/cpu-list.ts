/**
 * The Linux CPU list format used by sysfs, cpuset cgroups and DPDK's `-l` option:
 * "0-3,8,10-11". Lists are kept sorted and without duplicates.
 */

/** Parses "0-3,8" into [0, 1, 2, 3, 8]; an empty or blank string is the empty list. */
export function parseCpuList(text: string): number[] {
  const cpus = new Set<number>();
  for (const part of text.trim().split(',')) {
    if (part === '') continue;
    const match = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!match) throw new RangeError(`"${text}" is not a CPU list such as 0-3,8`);
    const first = Number(match[1]);
    const last = match[2] === undefined ? first : Number(match[2]);
    if (last < first) throw new RangeError(`"${part}" in CPU list "${text}" is a descending range`);
    for (let cpu = first; cpu <= last; cpu++) cpus.add(cpu);
  }
  return [...cpus].sort((a, b) => a - b);
}

/** Formats CPU ids as a compact list: [0, 1, 2, 3, 8] -> "0-3,8". */
export function formatCpuList(cpus: Iterable<number>): string {
  const sorted = [...new Set(cpus)].sort((a, b) => a - b);
  const ranges: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    ranges.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return ranges.join(',');
}
