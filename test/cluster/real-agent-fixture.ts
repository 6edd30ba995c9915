/**
 * What an e2e test needs to run the REAL node agent against the shared cluster and the real
 * kernel, on a node KWOK plays the kubelet of:
 *
 * - {@link NfvHostTree}: a sysfs/procfs/dev tree shaped like a 2-NUMA NFV server (isolated CPUs,
 *   NICs with IOMMU groups behind the fake PCI driver emulator of the host tests), whose NUMA
 *   node 0 2Mi hugepage counters are the real kernel's (a bind mount of the real sysfs directory),
 *   so a HugepagePool reserves real pages while 1Gi pages and PCI devices stay fake. The state
 *   root lives in it too: the agent's hugetlbfs mounts there are real.
 * - {@link PlayedKubelet}: the part of kubelet the agent depends on. KWOK makes pods Running but
 *   creates no cgroups; this makes the pod's cgroups (pod and one container, cgroupfs layout) in
 *   the real hierarchies under a test-owned top directory when a pod is bound to the node, and
 *   removes them when the pod goes, as kubelet does.
 * - {@link AgentProcess}: `node-agent/main.ts` as a child process, configured by environment
 *   like the DaemonSet, so a test can SIGKILL it at a chosen moment.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, symlinkSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { PageSize } from '../../src/api/common.js';
import { Informer } from '../../src/runtime/informer.js';
import type { KubeClient } from '../../src/runtime/kube-client.js';
import { coreResources, type KubeObject } from '../../src/runtime/kube-object.js';
import { detectCgroupLayout, type CgroupController, type CgroupLayout } from '../../node-agent/host/cgroup-layout.js';
import { BASELINE_DEVICE_RULES, formatDeviceRule } from '../host/helpers/runtime-device-rules.js';
import { hugepageDirName } from '../../node-agent/host/hugepage-reservation.js';
import type { HostRoots } from '../../node-agent/host/node-host.js';
import type { NicPoolRule } from '../../node-agent/discover/pci-nics.js';
import { FakePciKernel, type FakePciDevice } from '../host/helpers/fake-pci-kernel.js';
import { buildFakeMachine } from '../host/helpers/fake-sysfs.js';
import { execFileAsync, hierarchiesOf, TempTree, type CgroupHierarchy } from '../host/helpers/host-fixtures.js';

const REPO_ROOT = posix.resolve(posix.dirname(fileURLToPath(import.meta.url)), '../..');

/** The real kernel's hugepage counters of one size on NUMA node 0. */
export function realHugepageDir(pageSize: PageSize): string {
  return posix.join('/sys/devices/system/node/node0/hugepages', hugepageDirName(pageSize));
}

/** nr_hugepages and free_hugepages of 2Mi pages on the real NUMA node 0. */
export function readRealHugepages(): { total: number; free: number } {
  const dir = realHugepageDir('2Mi');
  return { total: Number(readFileSync(posix.join(dir, 'nr_hugepages'), 'utf8')), free: Number(readFileSync(posix.join(dir, 'free_hugepages'), 'utf8')) };
}

/** Sets nr_hugepages of 2Mi pages on the real NUMA node 0. */
export function writeRealHugepages(total: number): void {
  writeFileSync(posix.join(realHugepageDir('2Mi'), 'nr_hugepages'), `${total}\n`);
}

/** A NIC of the built tree. */
export interface TreeNic {
  address: string;
  numaNode: number;
  iommuGroup: number;
  /** The driver bound at start (and after every teardown). */
  driver: string;
}

/**
 * The NICs of the built node: one per NUMA node, Intel E810 ids (so a vendor rule pools them),
 * each alone in its IOMMU group and bound to a kernel driver.
 */
export const TREE_NICS: readonly TreeNic[] = [
  { address: '0000:3b:00.0', numaNode: 0, iommuGroup: 40, driver: 'ice' },
  { address: '0000:af:00.0', numaNode: 1, iommuGroup: 41, driver: 'ice' },
];

/** The NIC pool rule the agent is configured with: every E810 is in pool `fast`. */
export const TREE_NIC_POOLS: NicPoolRule[] = [{ pool: 'fast', vendor: '8086', deviceId: '159b' }];

/**
 * CPUs of the built node: NUMA 0 holds CPUs 0-1, NUMA 1 holds 2-3, one thread per core, CPUs 1
 * and 3 isolated. Only CPUs 0 and 1 exist on the test machine, so a VNF must land on NUMA 0 for
 * its cgroup limits to be writable: with equal fits the planner takes the lower NUMA id.
 */
export const TREE_ISOLATED_CPUS = [1, 3];

/** What {@link NfvHostTree.build} builds besides the defaults. */
export interface NfvHostTreeShape {
  /** 1 or 2 NUMA nodes of 2 cores each (CPU 1, and 3 on the second node, isolated). Default 2. */
  numaNodes?: 1 | 2;
  /** Default {@link TREE_NICS}. */
  nics?: readonly TreeNic[];
  /**
   * false: vfio-pci is not loaded, no driver and an empty `dev/vfio`, for a test that loads it
   * (`kernel.addDriver('vfio-pci')`) and makes the device nodes as vfio-pci would. Default true.
   */
  vfioPci?: boolean;
  /**
   * false: NUMA node 0's 2Mi counters are files too, so a HugepagePool never changes the machine's
   * nr_hugepages (a test that need not take the machine-wide hugepage lock). Default true.
   */
  realHugepages?: boolean;
}

/**
 * A node's kernel as files: see the file comment. `stateRoot` is where the agent and the
 * controller put host paths and journals.
 */
export class NfvHostTree {
  readonly roots: HostRoots;
  readonly stateRoot: string;
  readonly kernel: FakePciKernel;
  private readonly tree: TempTree;

  private constructor(tree: TempTree, kernel: FakePciKernel) {
    this.tree = tree;
    this.kernel = kernel;
    this.roots = { sysfs: tree.path('sys'), proc: tree.path('proc'), cgroup: '/sys/fs/cgroup', dev: tree.path('dev') };
    this.stateRoot = tree.path('state');
  }

  /**
   * Builds the tree in a fresh temp directory; {@link cleanup} undoes every part of it.
   *
   * @param shape default: two NUMA nodes with {@link TREE_NICS}, and the vfio device nodes of
   *   every NIC made at once (the agent only checks they exist).
   */
  static async build(prefix: string, shape: NfvHostTreeShape = {}): Promise<NfvHostTree> {
    const numaNodes = shape.numaNodes ?? 2;
    const nics = shape.nics ?? TREE_NICS;
    const isolated = TREE_ISOLATED_CPUS.filter((cpu) => cpu < numaNodes * 2);
    const tree = new TempTree(prefix);
    const sysfs = tree.path('sys');
    const proc = tree.path('proc');
    let kernel: FakePciKernel | undefined;
    try {
      buildFakeMachine(sysfs, proc, {
        numaNodes,
        coresPerNode: 2,
        threadsPerCore: 1,
        isolated,
        cmdline: `BOOT_IMAGE=/vmlinuz root=/dev/sda1 isolcpus=managed_irq,domain,${isolated.join(',')} nohz_full=${isolated.join(',')} quiet`,
      });
      // Everything else of /proc the agent reads is the real one: its own mount table (mounts it
      // makes are checked there), PID 1's, routes, swaps and vm/compact_memory.
      for (const entry of ['self', '1', 'net', 'swaps', 'sys']) symlinkSync(posix.join('/proc', entry), posix.join(proc, entry));
      // Real 2Mi pages on NUMA node 0; 1Gi pages and NUMA node 1 stay files.
      if (shape.realHugepages !== false) {
        await execFileAsync('mount', ['--bind', '--', realHugepageDir('2Mi'), posix.join(sysfs, 'devices/system/node/node0/hugepages', hugepageDirName('2Mi'))]);
      }

      kernel = new FakePciKernel(sysfs);
      if (shape.vfioPci !== false) kernel.addDriver('vfio-pci');
      for (const nic of nics) {
        const device: FakePciDevice = { address: nic.address, vendor: '8086', device: '159b', pciClass: '0x020000', numaNode: nic.numaNode, iommuGroup: nic.iommuGroup, driver: nic.driver };
        kernel.addDevice(device);
      }
      const vfio = tree.path('dev/vfio');
      mkdirSync(vfio, { recursive: true });
      if (shape.vfioPci !== false) {
        await execFileAsync('mknod', [posix.join(vfio, 'vfio'), 'c', '10', '196']);
        for (const nic of nics) await execFileAsync('mknod', [posix.join(vfio, String(nic.iommuGroup)), 'c', '242', String(nic.iommuGroup)]);
      }
      return new NfvHostTree(tree, kernel);
    } catch (err) {
      kernel?.stop();
      await tree.cleanup();
      throw err;
    }
  }

  /** A path in the tree's directory. */
  path(...parts: string[]): string {
    return this.tree.path(...parts);
  }

  /** Stops the PCI emulator, unmounts everything under the tree (the bind mount, leftover hugetlbfs) and deletes it. */
  async cleanup(): Promise<void> {
    this.kernel.stop();
    await this.tree.cleanup();
  }
}

/** The cgroup directories of one pod, per hierarchy path. */
interface PodCgroupDirs {
  pod: Map<string, string>;
  container: Map<string, string>;
}

/**
 * The kubelet's cgroup work for one node (see the file comment). Pods are seen through an
 * informer on `spec.nodeName`, so cgroups appear only once the scheduler has bound the pod here.
 */
export class PlayedKubelet {
  /** Directories the agent left in a pod cgroup, or other failures; a test expects none. */
  readonly errors: string[] = [];
  /** UIDs of pods whose cgroups were made, in order. */
  readonly created: string[] = [];
  /** UIDs of pods whose cgroups were removed, in order. */
  readonly removed: string[] = [];
  private readonly pods: Informer<V1Pod & KubeObject>;
  private readonly top: string;
  private readonly dirs = new Map<string, PodCgroupDirs>();
  private readonly shared: string[] = [];
  private held = false;
  private layout!: CgroupLayout;
  private hierarchies: CgroupHierarchy[] = [];

  /**
   * @param onPodGone called when a pod bound here is deleted from the API server, after its
   *   cgroups are removed (for tests that check the order of events).
   */
  constructor(
    client: KubeClient,
    nodeName: string,
    logger: Logger,
    private readonly onPodGone: (pod: V1Pod) => void = () => undefined,
  ) {
    this.top = `nfv-e2e-kubelet-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
    this.pods = Informer.forResource<V1Pod & KubeObject>(client, coreResources.pods, { logger, fieldSelector: `spec.nodeName=${nodeName}` });
    this.pods.addEventHandler({
      onAdd: (pod) => this.sync(pod),
      onUpdate: (_old, pod) => this.sync(pod),
      onDelete: (pod) => {
        this.remove(pod.metadata!.uid!);
        this.onPodGone(pod);
      },
    });
  }

  /** Detects the hierarchies, makes kubelet's own directories and starts following pods. */
  async start(cgroupRoot = '/sys/fs/cgroup'): Promise<void> {
    this.layout = await detectCgroupLayout(cgroupRoot);
    this.hierarchies = hierarchiesOf(this.layout);
    for (const hierarchy of this.hierarchies) {
      let dir = hierarchy.path;
      for (const part of [this.top, 'kubepods', 'burstable']) {
        dir = this.makeCgroup(hierarchy, dir, part);
        this.shared.push(dir);
      }
    }
    this.pods.start();
    await this.pods.waitForSync();
  }

  /** The pod's cgroup in the hierarchy of `controller`; undefined when it does not exist. */
  podDir(podUid: string, controller: CgroupController): string | undefined {
    return this.dirs.get(podUid)?.pod.get(this.layout[controller]!.path);
  }

  /** The container's cgroup in the hierarchy of `controller`; undefined when it does not exist. */
  containerDir(podUid: string, controller: CgroupController): string | undefined {
    return this.dirs.get(podUid)?.container.get(this.layout[controller]!.path);
  }

  /** Which hierarchy carries `controller`. */
  hierarchy(controller: CgroupController): { path: string; version: 1 | 2 } {
    return this.layout[controller]!;
  }

  /** Every directory under kubelet's `burstable` level, in every hierarchy (pods left behind). */
  leftoverPodDirs(): string[] {
    return this.hierarchies.flatMap((h) => {
      const burstable = posix.join(h.path, this.top, 'kubepods', 'burstable');
      return existsSync(burstable) ? readdirSync(burstable, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => posix.join(burstable, e.name)) : [];
    });
  }

  /**
   * Holds back making the cgroups of pods bound from now on, as a kubelet that has not synced the
   * pod yet; {@link release} makes them.
   */
  hold(): void {
    this.held = true;
  }

  /** Makes the cgroups held back by {@link hold}, and those of later pods at once. */
  release(): void {
    this.held = false;
    for (const pod of this.pods.list()) this.sync(pod);
  }

  /** Stops following pods and removes every cgroup it made. */
  async stop(): Promise<void> {
    await this.pods.stop();
    for (const uid of [...this.dirs.keys()]) this.remove(uid);
    for (const dir of [...this.shared].reverse()) this.removeCgroup(dir);
    this.shared.length = 0;
  }

  private sync(pod: V1Pod): void {
    const uid = pod.metadata!.uid!;
    const finished = pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
    // Kubelet stops the containers of a deleted pod, then removes its cgroups.
    if (pod.metadata?.deletionTimestamp || finished) this.remove(uid);
    else if (!this.dirs.has(uid) && !this.held) this.create(uid);
  }

  private create(uid: string): void {
    const dirs: PodCgroupDirs = { pod: new Map(), container: new Map() };
    this.dirs.set(uid, dirs);
    try {
      for (const hierarchy of this.hierarchies) {
        const burstable = posix.join(hierarchy.path, this.top, 'kubepods', 'burstable');
        const pod = this.makeCgroup(hierarchy, burstable, `pod${uid}`);
        dirs.pod.set(hierarchy.path, pod);
        const container = this.makeCgroup(hierarchy, pod, 'ctr0');
        dirs.container.set(hierarchy.path, container);
        // runc makes every container an allow-list device cgroup with the default devices.
        if (hierarchy.version === 1 && hierarchy.controllers.includes('devices')) {
          writeFileSync(posix.join(container, 'devices.deny'), 'a');
          for (const rule of BASELINE_DEVICE_RULES) writeFileSync(posix.join(container, 'devices.allow'), formatDeviceRule(rule));
        }
      }
      this.created.push(uid);
    } catch (err) {
      this.errors.push(`creating the cgroups of pod ${uid}: ${(err as Error).message}`);
    }
  }

  private remove(uid: string): void {
    const dirs = this.dirs.get(uid);
    if (!dirs) return;
    this.dirs.delete(uid);
    for (const dir of [...dirs.container.values(), ...dirs.pod.values()]) this.removeCgroup(dir);
    this.removed.push(uid);
  }

  private makeCgroup(hierarchy: { version: 1 | 2; controllers: CgroupController[] }, parent: string, name: string): string {
    const dir = posix.join(parent, name);
    mkdirSync(dir);
    // A v1 cpuset starts empty: kubelet gives every level its parent's CPUs and memory nodes.
    if (hierarchy.version === 1 && hierarchy.controllers.includes('cpuset')) {
      for (const file of ['cpuset.cpus', 'cpuset.mems']) writeFileSync(posix.join(dir, file), readFileSync(posix.join(parent, file), 'utf8'));
    }
    return dir;
  }

  /** rmdir fails (EBUSY) if anyone made a cgroup inside: that is reported, not hidden. */
  private removeCgroup(dir: string): void {
    if (!existsSync(dir)) return;
    try {
      rmdirSync(dir);
    } catch (err) {
      const inside = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
      this.errors.push(`cannot remove cgroup ${dir}${inside.length ? ` (it holds ${inside.join(', ')})` : ''}: ${(err as Error).message}`);
    }
  }
}

/** How a child agent is configured: the DaemonSet's environment. */
export interface AgentProcessOptions {
  nodeName: string;
  kubeconfigPath: string;
  stateRoot: string;
  roots: HostRoots;
  nicPools: NicPoolRule[];
  /** stdout and stderr (pino JSON lines) go here. */
  logFile: string;
  /** Default `info`. */
  logLevel?: string;
  /** NFV_DEVICE_PLUGIN_DIR; default: inherited from this process's environment. */
  devicePluginDir?: string;
  /** NFV_METRICS_ADDRESS; default: inherited (the agent's own default is :9101). */
  metricsAddress?: string;
  /** NFV_NRI_SOCKET, the container runtime's NRI socket (a real node's `nriSocket`); default `none`: no runtime. */
  nriSocket?: string;
  /** NFV_POD_RESOURCES_SOCKET, kubelet's (a real node's `podResourcesSocket`); default `none`: no kubelet. */
  podResourcesSocket?: string;
}

/** How a child agent ended. */
export interface AgentExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * `node-agent/main.ts` in a child process of its own process group: the agent's change feeds
 * (udevadm, ip monitor) are its children, and a SIGKILL of the agent alone would orphan them, so
 * {@link kill} signals the whole group, as a container runtime ends a container.
 */
export class AgentProcess {
  readonly exited: Promise<AgentExit>;
  private readonly child: ChildProcess;
  private exit?: AgentExit;

  private constructor(
    child: ChildProcess,
    readonly logFile: string,
  ) {
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve((this.exit = { code, signal }))));
  }

  static start(options: AgentProcessOptions): AgentProcess {
    mkdirSync(posix.dirname(options.logFile), { recursive: true });
    const log = openSync(options.logFile, 'a');
    try {
      const child = spawn(process.execPath, ['--import', 'tsx', 'node-agent/main.ts'], {
        cwd: REPO_ROOT,
        detached: true,
        stdio: ['ignore', log, log],
        env: {
          ...process.env,
          NODE_NAME: options.nodeName,
          KUBECONFIG: options.kubeconfigPath,
          NFV_STATE_ROOT: options.stateRoot,
          NFV_SYSFS_ROOT: options.roots.sysfs,
          NFV_PROC_ROOT: options.roots.proc,
          NFV_CGROUP_ROOT: options.roots.cgroup,
          NFV_DEV_ROOT: options.roots.dev,
          NFV_NIC_POOLS: JSON.stringify(options.nicPools),
          NFV_AGENT_VERSION: 'e2e-process',
          LOG_LEVEL: options.logLevel ?? 'info',
          ...(options.devicePluginDir ? { NFV_DEVICE_PLUGIN_DIR: options.devicePluginDir } : {}),
          ...(options.metricsAddress ? { NFV_METRICS_ADDRESS: options.metricsAddress } : {}),
          NFV_NRI_SOCKET: options.nriSocket ?? 'none',
          NFV_POD_RESOURCES_SOCKET: options.podResourcesSocket ?? 'none',
        },
      });
      return new AgentProcess(child, options.logFile);
    } finally {
      closeSync(log);
    }
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Whether the process is still running. */
  get running(): boolean {
    return this.exit === undefined;
  }

  /**
   * Sends `signal` to the agent, as a container runtime does to a container's main process, or,
   * for SIGKILL, to its whole process group (see the class comment). Nothing if it already ended.
   */
  kill(signal: NodeJS.Signals): void {
    if (!this.running) return;
    try {
      process.kill(signal === 'SIGKILL' ? -this.pid : this.pid, signal);
    } catch {
      // Ended meanwhile.
    }
  }

  /** SIGKILLs the group and resolves once the agent is gone. */
  async crash(): Promise<AgentExit> {
    this.kill('SIGKILL');
    return this.exited;
  }

  /** The log so far, for failure messages. */
  logTail(lines = 40): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

/**
 * Calls `onWrite` synchronously when a sysfs attribute of the tree is written with `value`: a
 * test kills the agent from here to stop it in the middle of a host step.
 *
 * @returns a function that stops watching.
 */
export function onAttributeWrite(path: string, value: string, onWrite: () => void): () => void {
  let fired = false;
  const watcher: FSWatcher = watch(path, () => {
    if (fired) return;
    let content = '';
    try {
      content = readFileSync(path, 'utf8');
    } catch {
      return;
    }
    if (content.trim() !== value) return;
    fired = true;
    onWrite();
  });
  return () => watcher.close();
}
