/**
 * Fixtures for tests on the real kernel: temp directories that are unmounted before they are
 * deleted, extra hugepages that are given back, and pod cgroups laid out as kubelet lays them.
 * Every fixture undoes itself in `cleanup()`, which tests call from afterAll/finally.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { posix } from 'node:path';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { mountsUnder, parseMountInfo } from '../../../node-agent/host/mounts.js';
import { BASELINE_DEVICE_RULES, formatDeviceRule } from './runtime-device-rules.js';
import { detectCgroupLayout, type CgroupController, type CgroupLayout } from '../../../node-agent/host/cgroup-layout.js';

export const execFileAsync = promisify(execFile);
export const HELPERS = posix.dirname(fileURLToPath(import.meta.url));

/** Fails loudly when the host tests cannot run here: they need root on a real kernel. */
export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('the host tests need root (mounts, cgroups, nr_hugepages); run them as root on a Linux host');
}

/** Unmounts everything at or under `dir` (deepest first, lazily if busy). */
export async function unmountAllUnder(dir: string): Promise<void> {
  for (let round = 0; round < 10; round++) {
    const left = mountsUnder(parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8')), dir);
    if (left.length === 0) return;
    for (const mount of left) {
      await execFileAsync('umount', ['--', mount.mountPoint]).catch(() => execFileAsync('umount', ['-l', '--', mount.mountPoint]).catch(() => undefined));
    }
  }
  throw new Error(`could not unmount everything under ${dir}`);
}

/** Mount points at or under `dir` right now. */
export function mountPointsUnder(dir: string): string[] {
  return mountsUnder(parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8')), dir).map((m) => m.mountPoint);
}

/** A temp directory whose cleanup unmounts before deleting, so it never deletes through a mount. */
export class TempTree {
  readonly dir: string;

  constructor(prefix: string) {
    this.dir = mkdtempSync(`/tmp/${prefix}-`);
  }

  path(...parts: string[]): string {
    return posix.join(this.dir, ...parts);
  }

  async cleanup(): Promise<void> {
    await unmountAllUnder(this.dir);
    if (mountPointsUnder(this.dir).length > 0) throw new Error(`mounts left under ${this.dir}`);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const HUGEPAGE_ROOT = '/sys/kernel/mm/hugepages/hugepages-2048kB';
const HUGEPAGE_LOCK = '/tmp/nfv-host-tests-hugepages.lock';

/**
 * Serializes the test files that change nr_hugepages or count free pages (jest runs files in
 * parallel). A lock left by a dead process is taken over.
 *
 * @returns the release function.
 */
export async function lockHugepages(): Promise<() => void> {
  for (;;) {
    try {
      mkdirSync(HUGEPAGE_LOCK);
      writeFileSync(posix.join(HUGEPAGE_LOCK, 'pid'), String(process.pid));
      return () => rmSync(HUGEPAGE_LOCK, { recursive: true, force: true });
    } catch {
      const owner = Number(readFileSync(posix.join(HUGEPAGE_LOCK, 'pid'), { encoding: 'utf8', flag: 'a+' }) || 0);
      let alive = owner > 0;
      try {
        if (alive) process.kill(owner, 0);
      } catch {
        alive = false;
      }
      if (!alive) rmSync(HUGEPAGE_LOCK, { recursive: true, force: true });
      else await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/**
 * Adds `pages` 2Mi hugepages to the host for the test and takes exactly those back in cleanup:
 * other users of the machine may hold hugepages too, so the pool is never reset to a value read
 * earlier.
 */
export class ExtraHugepages {
  private added = 0;

  static read(): { total: number; free: number } {
    return {
      total: Number(readFileSync(`${HUGEPAGE_ROOT}/nr_hugepages`, 'utf8')),
      free: Number(readFileSync(`${HUGEPAGE_ROOT}/free_hugepages`, 'utf8')),
    };
  }

  /** Makes sure at least `free` pages are free, adding what is missing. */
  ensureFree(free: number): void {
    const now = ExtraHugepages.read();
    const missing = Math.max(0, free - now.free);
    if (missing === 0) return;
    writeFileSync(`${HUGEPAGE_ROOT}/nr_hugepages`, `${now.total + missing}\n`);
    const after = ExtraHugepages.read();
    this.added += after.total - now.total;
    if (after.free < free) throw new Error(`the kernel gave only ${after.free} free 2Mi hugepages of ${free} needed`);
  }

  cleanup(): void {
    if (this.added === 0) return;
    const now = ExtraHugepages.read();
    writeFileSync(`${HUGEPAGE_ROOT}/nr_hugepages`, `${Math.max(0, now.total - this.added)}\n`);
    this.added = 0;
  }
}

function writeCgroupFile(dir: string, file: string, value: string): void {
  writeFileSync(posix.join(dir, file), value);
}

/**
 * A pod's cgroups as kubelet and the container runtime make them, in every hierarchy the agent
 * writes to (cgroupfs `kubepods/burstable/pod<uid>/<ctr>` or systemd
 * `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/cri-<ctr>.scope`),
 * under a private top directory so nothing real is touched. Containers are allow-list device
 * cgroups like runc's.
 */
export class FakeKubeletPod {
  readonly podUid = randomUUID();
  readonly top: string;
  private created: string[] = [];
  /** Container cgroup per hierarchy path. */
  readonly containers = new Map<string, string>();
  /** Pod cgroup per hierarchy path. */
  readonly pods = new Map<string, string>();

  private constructor(
    readonly layout: CgroupLayout,
    readonly style: 'cgroupfs' | 'systemd',
  ) {
    this.top = `nfv-host-test-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
  }

  static async create(style: 'cgroupfs' | 'systemd' = 'cgroupfs', cgroupRoot = '/sys/fs/cgroup'): Promise<FakeKubeletPod> {
    const pod = new FakeKubeletPod(await detectCgroupLayout(cgroupRoot), style);
    pod.build();
    return pod;
  }

  private relativeDirs(): string[] {
    const uid = this.podUid;
    if (this.style === 'cgroupfs') return [this.top, 'kubepods', 'burstable', `pod${uid}`, 'ctr0'];
    return [this.top, 'kubepods.slice', 'kubepods-burstable.slice', `kubepods-burstable-pod${uid.replaceAll('-', '_')}.slice`, 'cri-containerd-ctr0.scope'];
  }

  /** Hierarchies (by path) the agent will use. */
  hierarchies(): CgroupHierarchy[] {
    return hierarchiesOf(this.layout);
  }

  private build(): void {
    for (const hierarchy of this.hierarchies()) {
      let dir = hierarchy.path;
      for (const [index, part] of this.relativeDirs().entries()) {
        const parent = dir;
        dir = posix.join(dir, part);
        mkdirSync(dir);
        this.created.push(dir);
        if (hierarchy.version === 1 && hierarchy.controllers.includes('cpuset')) {
          writeCgroupFile(dir, 'cpuset.cpus', readFileSync(posix.join(parent, 'cpuset.cpus'), 'utf8'));
          writeCgroupFile(dir, 'cpuset.mems', readFileSync(posix.join(parent, 'cpuset.mems'), 'utf8'));
        }
        if (index === 3) this.pods.set(hierarchy.path, dir);
        if (index === 4) {
          this.containers.set(hierarchy.path, dir);
          if (hierarchy.version === 1 && hierarchy.controllers.includes('devices')) {
            writeCgroupFile(dir, 'devices.deny', 'a');
            for (const rule of BASELINE_DEVICE_RULES) writeCgroupFile(dir, 'devices.allow', formatDeviceRule(rule));
          }
        }
      }
    }
  }

  /** The pod cgroup in the hierarchy of `controller`. */
  podDir(controller: 'cpuset' | 'devices' | 'hugetlb'): string {
    return this.pods.get(this.layout[controller]!.path)!;
  }

  /** `--cgroup` arguments of in-cgroup.mjs that put a process in the container in every hierarchy. */
  joinArgs(): string[] {
    return [...this.containers.values()].flatMap((dir) => ['--cgroup', dir]);
  }

  /** Removes the cgroups (kubelet's job when the pod goes away); processes must have exited. */
  async destroy(): Promise<void> {
    for (const dir of [...this.created].reverse()) {
      if (!existsSync(dir)) continue;
      for (let attempt = 0; ; attempt++) {
        try {
          rmdirSync(dir);
          break;
        } catch (err) {
          if (attempt >= 50) throw err;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    }
    this.created = [];
  }
}

/** Runs in-cgroup.mjs: `command` as a process of the pod's container. */
export async function runInContainer(pod: FakeKubeletPod, command: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [posix.join(HELPERS, 'in-cgroup.mjs'), ...pod.joinArgs(), '--', ...command]);
    return { code: 0, stdout: stdout.trim(), stderr: stderr.trim() };
  } catch (err) {
    const failed = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === 'number' ? failed.code : -1, stdout: (failed.stdout ?? '').trim(), stderr: (failed.stderr ?? '').trim() };
  }
}

/** Compiles hugemap.c once per run into `dir`; fails loudly without a C compiler. */
export async function buildHugemap(dir: string): Promise<string> {
  const output = posix.join(dir, 'hugemap');
  try {
    await execFileAsync('cc', ['-O2', '-o', output, posix.join(HELPERS, 'hugemap.c')]);
  } catch (err) {
    throw new Error(`cannot compile test/host/helpers/hugemap.c (a C compiler is needed for the hugepage mmap tests): ${(err as Error).message}`);
  }
  return output;
}

/** The hugetlb controller's state in the unified root, to restore after the tests. */
export function unifiedSubtreeControl(layout: CgroupLayout): string | undefined {
  if (!layout.unified) return undefined;
  return readFileSync(posix.join(layout.unified, 'cgroup.subtree_control'), 'utf8').trim();
}

/** Disables controllers the tests enabled at the unified root, if nothing else uses them now. */
export function restoreUnifiedSubtreeControl(layout: CgroupLayout, before: string | undefined): void {
  if (!layout.unified || before === undefined) return;
  const had = new Set(before.split(/\s+/).filter(Boolean));
  // Any other cgroup might be relying on a controller by now: leave the root as it is then.
  const others = readdirSync(layout.unified, { withFileTypes: true }).filter((entry) => entry.isDirectory());
  if (others.length > 0) return;
  const now = readFileSync(posix.join(layout.unified, 'cgroup.subtree_control'), 'utf8').trim().split(/\s+/).filter(Boolean);
  for (const controller of now) {
    if (had.has(controller)) continue;
    try {
      writeFileSync(posix.join(layout.unified, 'cgroup.subtree_control'), `-${controller}`);
    } catch {
      // Someone else's cgroup uses it by now; enabling is harmless and stays.
    }
  }
}

/** /dev/vfio/vfio and one node per IOMMU group under `dev`, as the vfio driver makes them. */
export async function makeVfioNodes(dev: string, groups: readonly number[]): Promise<void> {
  mkdirSync(posix.join(dev, 'vfio'), { recursive: true });
  await execFileAsync('mknod', [posix.join(dev, 'vfio/vfio'), 'c', '10', '196']);
  for (const group of groups) await execFileAsync('mknod', [posix.join(dev, `vfio/${group}`), 'c', '242', String(group)]);
}

/** A cgroup hierarchy (mount) and the controllers the agent uses from it. */
export interface CgroupHierarchy {
  path: string;
  version: 1 | 2;
  controllers: CgroupController[];
}

/** The hierarchies of `layout` that hold cpuset, devices or hugetlb, one entry per mount. */
export function hierarchiesOf(layout: CgroupLayout): CgroupHierarchy[] {
  const byPath = new Map<string, CgroupHierarchy>();
  for (const controller of ['cpuset', 'devices', 'hugetlb'] as const) {
    const hierarchy = layout[controller];
    if (!hierarchy) continue;
    const entry = byPath.get(hierarchy.path) ?? { path: hierarchy.path, version: hierarchy.version, controllers: [] };
    entry.controllers.push(controller);
    byPath.set(hierarchy.path, entry);
  }
  return [...byPath.values()];
}
