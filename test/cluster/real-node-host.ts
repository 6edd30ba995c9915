/**
 * What a real node changes on the host outside its own temp dir, recorded before it starts and
 * undone when it stops (or by the reaper after an interrupted run).
 *
 * Read from kubelet v1.37.2 (`pkg/kubelet/cm/container_manager_linux.go` setupKernelTunables,
 * `pkg/kubelet/kubelet_network_linux.go` syncIPTablesRules, `pkg/kubelet/kubelet.go`
 * setupDataDirs) and observed on this host:
 * - six kernel sysctls it sets to its expected values (and the CNI bridge plugin ip_forward);
 * - iptables: KUBE-IPTABLES-HINT (mangle), KUBE-FIREWALL (filter, jumped to from INPUT and OUTPUT),
 *   KUBE-KUBELET-CANARY (mangle, nat, filter), and the same minus KUBE-FIREWALL for IPv6;
 * - /var/log/containers (created if missing) and one symlink per container in it;
 * - /var/lib/cni/results, the result cache of libcni in containerd (for pods off the host network);
 * - cgroups under its cgroup root in every hierarchy, and mounts under its root dir.
 * The harness itself adds the node's name to /etc/hosts, because the API server reaches a kubelet
 * by its Hostname address first (`kubectl logs`), and the CNI bridge.
 */
import { execFile } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { KUBELET_DEVICE_PLUGIN_DIR } from './real-node-config.js';

const execFileAsync = promisify(execFile);

/**
 * The sysctls a real node may change (`/proc/sys` paths): the six kubelet "ensures", and IPv4
 * forwarding, which the CNI bridge plugin turns on for a gateway bridge.
 */
export const NODE_SYSCTLS = [
  'vm/overcommit_memory',
  'vm/panic_on_oom',
  'kernel/panic',
  'kernel/panic_on_oops',
  'kernel/keys/root_maxkeys',
  'kernel/keys/root_maxbytes',
  'net/ipv4/ip_forward',
] as const;

/** An iptables chain kubelet creates: binary, table, chain. */
export interface IptablesChain {
  binary: 'iptables' | 'ip6tables';
  table: 'mangle' | 'nat' | 'filter';
  chain: string;
}

const KUBELET_CHAINS: IptablesChain[] = (['iptables', 'ip6tables'] as const).flatMap((binary) => [
  { binary, table: 'mangle' as const, chain: 'KUBE-IPTABLES-HINT' },
  ...(['mangle', 'nat', 'filter'] as const).map((table) => ({ binary, table, chain: 'KUBE-KUBELET-CANARY' })),
  ...(binary === 'iptables' ? [{ binary, table: 'filter' as const, chain: 'KUBE-FIREWALL' }] : []),
]);

/** The host state a real node must give back; stored in its run record. */
export interface HostSnapshot {
  nodeName: string;
  /** The node's own temp dir: every mount under it goes. */
  dir: string;
  /** Where kubelet writes the pods' logs (targets of the /var/log/containers symlinks). */
  podLogsDir: string;
  /** Top-level cgroup name, e.g. `/nfv-real-node`. */
  cgroupRoot: string;
  bridge: string;
  /** Sysctl values before the start, by `/proc/sys` path. */
  kernelTunables: Record<string, string>;
  /** Kubelet chains that did not exist before the start (the only ones removed). */
  absentChains: IptablesChain[];
  /** Host directories the node may create (`HOST_DIRS`) that did not exist before the start. */
  absentDirs: string[];
}

const CONTAINER_LOGS_DIR = '/var/log/containers';
/**
 * Host directories outside the node's dir that it may create: kubelet's container log links,
 * libcni's result cache (containerd's CRI plugin has no setting for it), and the default NRI socket
 * dir, which kubelet makes for a hostPath volume of type DirectoryOrCreate (the chart's agent
 * DaemonSet with its default `agent.nriSocket`), children first.
 */
const HOST_DIRS = [CONTAINER_LOGS_DIR, '/var/lib/cni/results', '/var/lib/cni', KUBELET_DEVICE_PLUGIN_DIR, path.dirname(KUBELET_DEVICE_PLUGIN_DIR), '/var/run/nri'];
/** What kubelet leaves in its device-plugin directory when it stops. */
const KUBELET_DEVICE_PLUGIN_FILES = ['kubelet.sock', 'kubelet_internal_checkpoint'];
const CGROUP_MOUNT = '/sys/fs/cgroup';
const HOSTS_FILE = '/etc/hosts';

/** Records what the kubelet and the harness will change; call before starting anything. */
export async function snapshotHost(fields: Omit<HostSnapshot, 'kernelTunables' | 'absentChains' | 'absentDirs'>): Promise<HostSnapshot> {
  const kernelTunables: Record<string, string> = {};
  for (const key of NODE_SYSCTLS) kernelTunables[key] = readFileSync(`/proc/sys/${key}`, 'utf8').trim();
  const absentChains: IptablesChain[] = [];
  for (const chain of KUBELET_CHAINS) if (!(await chainExists(chain))) absentChains.push(chain);
  return { ...fields, kernelTunables, absentChains, absentDirs: HOST_DIRS.filter((dir) => !existsSync(dir)) };
}

/** Every v1 hierarchy and the unified one, as directories under /sys/fs/cgroup (itself on pure v2). */
export function cgroupHierarchies(): string[] {
  if (existsSync(path.join(CGROUP_MOUNT, 'cgroup.controllers'))) return [CGROUP_MOUNT];
  return readdirSync(CGROUP_MOUNT)
    .map((name) => path.join(CGROUP_MOUNT, name))
    .filter((dir) => existsSync(path.join(dir, 'cgroup.procs')) && !lstatSync(dir).isSymbolicLink());
}

/** Adds `<address> <node>` to /etc/hosts, marked so that only this line is removed again. */
export function addHostsEntry(nodeName: string, address: string): void {
  const lines = readFileSync(HOSTS_FILE, 'utf8').split('\n').filter((line) => !isHostsLine(line, nodeName));
  if (lines.at(-1) === '') lines.pop();
  // Written in place: in a container /etc/hosts is a bind mount that a rename would not replace.
  writeFileSync(HOSTS_FILE, [...lines, `${address} ${nodeName} ${HOSTS_MARK}`, ''].join('\n'));
}

const HOSTS_MARK = '# nfv-real-node';

function isHostsLine(line: string, nodeName: string): boolean {
  return line.endsWith(` ${nodeName} ${HOSTS_MARK}`);
}

/**
 * Creates the node's bridge with `address` (the pod network's gateway, the node's InternalIP)
 * before the kubelet starts; the CNI bridge plugin then finds it in place.
 */
export async function createBridge(name: string, address: string, prefixLength: number): Promise<void> {
  await deleteLinkIfPresent(name);
  await execFileAsync('ip', ['link', 'add', name, 'type', 'bridge']);
  await execFileAsync('ip', ['address', 'add', `${address}/${prefixLength}`, 'dev', name]);
  await execFileAsync('ip', ['link', 'set', name, 'up']);
}

/** False when this process may not lower its oom_score_adj (it lacks CAP_SYS_RESOURCE). */
export function canLowerOomScoreAdj(): boolean {
  const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0';
  const CAP_SYS_RESOURCE = 24n;
  return ((BigInt(`0x${capEff}`) >> CAP_SYS_RESOURCE) & 1n) === 1n;
}

/**
 * Undoes everything `snapshot` lists, after the node's processes are gone. Never throws: each
 * step that fails is logged and the others still run; returns the failures.
 */
export async function restoreHost(snapshot: HostSnapshot, logger: Logger): Promise<string[]> {
  const failures: string[] = [];
  const step = async (what: string, run: () => unknown): Promise<void> => {
    try {
      await run();
    } catch (err) {
      failures.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
      logger.warn({ err, step: what }, 'could not undo a host change of the real node');
    }
  };
  await step('kill processes in the cgroup root', () => killCgroupTree(snapshot.cgroupRoot));
  await step('unmount under the node dir', () => unmountUnder(snapshot.dir));
  await step('remove cgroups', () => removeCgroupTree(snapshot.cgroupRoot));
  for (const [key, value] of Object.entries(snapshot.kernelTunables)) {
    await step(`restore ${key}`, () => writeFileSync(`/proc/sys/${key}`, value));
  }
  await step('remove iptables chains', () => removeChains(snapshot.absentChains));
  await step('remove the /etc/hosts entry', () => removeHostsEntry(snapshot.nodeName));
  await step('remove container log links', () => removeContainerLogLinks(snapshot));
  // The next kubelet would otherwise read the device assignments of pods that are gone.
  await step('remove kubelet\'s device-plugin files', () => KUBELET_DEVICE_PLUGIN_FILES.forEach((file) => rmSync(path.join(KUBELET_DEVICE_PLUGIN_DIR, file), { force: true })));
  await step('remove host directories it created', () => removeCreatedDirs(snapshot));
  await step(`delete the bridge ${snapshot.bridge}`, () => deleteLinkIfPresent(snapshot.bridge));
  return failures;
}

/** Pids in the cgroup tree `root` of any hierarchy (the same tree exists in each). */
export function pidsInCgroupTree(root: string): number[] {
  const pids = new Set<number>();
  for (const hierarchy of cgroupHierarchies()) {
    for (const dir of cgroupDirsDeepestFirst(path.join(hierarchy, root))) {
      for (const pid of readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) pids.add(Number(pid));
    }
  }
  return [...pids];
}

/** Every cgroup under (and including) `dir`, children before parents; empty if `dir` is missing. */
export function cgroupDirsDeepestFirst(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const children = readdirSync(dir, { withFileTypes: true }).filter((entry) => entry.isDirectory());
  return [...children.flatMap((entry) => cgroupDirsDeepestFirst(path.join(dir, entry.name))), dir];
}

/** Mount points at or under `dir`, deepest first. */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((mountPoint): mountPoint is string => Boolean(mountPoint))
    .map((mountPoint) => mountPoint.replace(/\\040/g, ' '))
    .filter((mountPoint) => mountPoint === dir || mountPoint.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

function killCgroupTree(root: string): Promise<void> {
  return killUntilGone(() => pidsInCgroupTree(root), `processes in cgroup ${root}`);
}

/** SIGKILL to every pid `list` returns, again until it returns none; throws after 5 s. */
export async function killUntilGone(list: () => number[], what: string): Promise<void> {
  for (let round = 0; round < 50; round++) {
    const pids = list();
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${what} still run after SIGKILL: ${list().join(', ')}`);
}

async function unmountUnder(dir: string): Promise<void> {
  for (const mountPoint of mountsUnder(dir)) {
    try {
      await execFileAsync('umount', [mountPoint]);
    } catch {
      // Busy (a process still holds it): detach it now, the kernel frees it when released.
      await execFileAsync('umount', ['--lazy', mountPoint]);
    }
  }
}

async function removeCgroupTree(root: string): Promise<void> {
  for (const hierarchy of cgroupHierarchies()) {
    for (const dir of cgroupDirsDeepestFirst(path.join(hierarchy, root))) {
      // A cgroup whose last process just died can refuse rmdir (EBUSY) for a moment.
      for (let attempt = 0; ; attempt++) {
        try {
          rmdirSync(dir);
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') break;
          if (attempt >= 20) throw err;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    }
  }
}

async function chainExists(chain: IptablesChain): Promise<boolean> {
  try {
    await execFileAsync(chain.binary, ['-w', '-t', chain.table, '-S', chain.chain]);
    return true;
  } catch {
    return false;
  }
}

async function removeChains(chains: IptablesChain[]): Promise<void> {
  for (const chain of chains) {
    if (!(await chainExists(chain))) continue;
    if (chain.chain === 'KUBE-FIREWALL') {
      for (const from of ['INPUT', 'OUTPUT']) {
        // The jump may be there more than once if the kubelet ran more than once.
        while (await succeeds(chain.binary, ['-w', '-t', chain.table, '-D', from, '-j', chain.chain]));
      }
    }
    await execFileAsync(chain.binary, ['-w', '-t', chain.table, '-F', chain.chain]);
    await execFileAsync(chain.binary, ['-w', '-t', chain.table, '-X', chain.chain]);
  }
}

async function succeeds(command: string, args: string[]): Promise<boolean> {
  try {
    await execFileAsync(command, args);
    return true;
  } catch {
    return false;
  }
}

function removeHostsEntry(nodeName: string): void {
  const content = readFileSync(HOSTS_FILE, 'utf8');
  const kept = content.split('\n').filter((line) => !isHostsLine(line, nodeName));
  if (kept.join('\n') !== content) writeFileSync(HOSTS_FILE, kept.join('\n'));
}

function removeContainerLogLinks(snapshot: HostSnapshot): void {
  if (!existsSync(CONTAINER_LOGS_DIR)) return;
  for (const name of readdirSync(CONTAINER_LOGS_DIR)) {
    const link = path.join(CONTAINER_LOGS_DIR, name);
    if (lstatSync(link).isSymbolicLink() && readlinkSync(link).startsWith(`${snapshot.podLogsDir}/`)) unlinkSync(link);
  }
}

/** Removes the directories that were absent before the start, if nothing else has put files there. */
function removeCreatedDirs(snapshot: HostSnapshot): void {
  for (const dir of snapshot.absentDirs) {
    if (existsSync(dir) && readdirSync(dir).length === 0) rmdirSync(dir);
  }
}

async function deleteLinkIfPresent(name: string): Promise<void> {
  if (existsSync(`/sys/class/net/${name}`)) await execFileAsync('ip', ['link', 'delete', name]);
}

/**
 * Creates the cgroup `root` in every hierarchy: kubelet refuses a cgroup root that does not exist
 * (`invalid configuration: ... cgroup-root`). A new v1 cpuset starts with no CPUs and no memory
 * nodes, so it gets its parent's.
 */
export function createCgroupRoot(root: string): void {
  for (const hierarchy of cgroupHierarchies()) {
    const dir = path.join(hierarchy, root);
    mkdirSync(dir, { recursive: true });
    for (const file of ['cpuset.cpus', 'cpuset.mems']) {
      const own = path.join(dir, file);
      if (existsSync(own) && readFileSync(own, 'utf8').trim() === '') {
        writeFileSync(own, readFileSync(path.join(path.dirname(dir), file), 'utf8'));
      }
    }
  }
}
