import type { InventoryCpu } from '../../api/nfv-node.js';

const coreKey = (cpu: InventoryCpu) => `${cpu.socket}/${cpu.core}`;

/**
 * The free isolated CPUs of one NUMA node that a VNF may take, best first. With `fullCores`, only
 * cores whose every sibling is isolated and free count, listed core by core, so no other workload
 * shares a core with the VNF. Without it, CPUs of cores that are already partly used go first,
 * which keeps whole cores free for VNFs that need them. Ties go to the lowest CPU id.
 */
export function usableCpus(numaCpus: readonly InventoryCpu[], taken: ReadonlySet<number>, fullCores: boolean): InventoryCpu[] {
  const cores = new Map<string, { size: number; free: InventoryCpu[] }>();
  for (const cpu of numaCpus) {
    const core = cores.get(coreKey(cpu)) ?? { size: 0, free: [] };
    core.size++;
    if (cpu.isolated && !taken.has(cpu.id)) core.free.push(cpu);
    cores.set(coreKey(cpu), core);
  }
  const byId = (a: InventoryCpu, b: InventoryCpu) => a.id - b.id;
  if (fullCores) {
    return [...cores.values()]
      .filter((core) => core.free.length > 0 && core.free.length === core.size)
      .map((core) => core.free.sort(byId))
      .sort((a, b) => a[0]!.id - b[0]!.id)
      .flat();
  }
  const partlyUsed = (cpu: InventoryCpu) => {
    const core = cores.get(coreKey(cpu))!;
    return core.free.length < core.size ? 0 : 1;
  };
  return [...cores.values()].flatMap((core) => core.free).sort((a, b) => partlyUsed(a) - partlyUsed(b) || byId(a, b));
}
