/**
 * A minimal container runtime without a container engine: each container of a pod is a process
 * tree in new mount, pid and network namespaces (sandbox-init.mjs does the inside part), in a
 * cgroup of its own under the pod cgroup, with the pod's volumes bind-mounted, its devices in a
 * /dev of its own, and only its capabilities. The root filesystem is the host's: in place of the
 * image it runs the image's entrypoint script from the repository with the image's ENV
 * (images.ts), so the app is the host's DPDK. Everything that isolates the app, the hugetlbfs
 * mount, the sysfs masks and the cgroup limits, is what the node agent prepared for the pod.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cgroupHierarchies, removeCgroupTree } from './cgroup-hierarchies.js';
import { ContainerProcess, type ContainerRuntime } from './container-process.js';
import { imageOnHost } from './images.js';
import type { ContainerRunSpec } from './pod-container-spec.js';

const SANDBOX_INIT = fileURLToPath(new URL('./sandbox-init.mjs', import.meta.url));
/** The kubelet's grace between SIGTERM and SIGKILL (the rendered pods' terminationGracePeriodSeconds). */
const STOP_GRACE_MS = 10_000;
/** PATH of the container's processes, as Docker sets it for Debian images. */
const CONTAINER_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Creates the container's cgroup under the pod cgroup in every hierarchy, as runc does; returns the directories. */
function createContainerCgroups(parent: string, name: string): string[] {
  const dirs: string[] = [];
  try {
    for (const hierarchy of cgroupHierarchies()) {
      const parentDir = posix.join(hierarchy.path, parent);
      if (!existsSync(parentDir)) throw new Error(`the pod cgroup ${parentDir} does not exist: create the pod first`);
      const dir = posix.join(parentDir, name);
      mkdirSync(dir);
      dirs.push(dir);
      // A new v1 cpuset starts empty; runc gives it the pod's CPUs and memory nodes, which the agent set.
      if (hierarchy.cpuset) for (const file of ['cpuset.cpus', 'cpuset.mems']) writeFileSync(posix.join(dir, file), readFileSync(posix.join(parentDir, file)));
    }
  } catch (err) {
    for (const dir of dirs.reverse()) removeCgroupTree(dir);
    throw err;
  }
  return dirs;
}

/** One container of a pod in the sandbox. */
class SandboxProcess extends ContainerProcess {
  private readonly child;
  readonly labels: Record<string, string>;

  constructor(spec: ContainerRunSpec, scratchDir: string) {
    super(spec.name);
    this.labels = spec.labels;
    const image = imageOnHost(spec.image);
    const command = [...(spec.entrypoint ?? image.entrypoint), ...(spec.cmd ?? [])];
    if (command.length === 0) throw new Error(`container ${spec.name}: neither the pod nor image ${spec.image} names a command`);
    if (!spec.cgroupParent) throw new Error(`container ${spec.name}: the sandbox runs containers only in a pod cgroup`);
    const refused = spec.mounts.filter((m) => m.propagation !== 'rprivate');
    if (refused.length > 0) throw new Error(`container ${spec.name}: the sandbox's mount namespace is private; it cannot propagate ${refused.map((m) => m.target).join(', ')}`);

    const cgroups = createContainerCgroups(spec.cgroupParent, spec.name);
    const devStaging = posix.join(scratchDir, spec.name, 'dev');
    mkdirSync(devStaging, { recursive: true });
    const init = {
      cgroupProcs: cgroups.map((dir) => posix.join(dir, 'cgroup.procs')),
      devStaging,
      devices: spec.devices,
      mounts: spec.mounts,
      command: command[0],
      args: command.slice(1),
      env: { PATH: CONTAINER_PATH, HOSTNAME: spec.name, ...image.env, ...spec.env },
      capabilities: spec.capabilities,
      noNewPrivileges: spec.noNewPrivileges,
    };
    const namespaces = [...(spec.pid === 'container' ? ['--pid', '--mount-proc'] : []), ...(spec.network === 'none' ? ['--net'] : [])];
    this.child = spawn('unshare', ['--mount', ...namespaces, '--fork', '--propagation', 'private', '--kill-child=SIGKILL', process.execPath, SANDBOX_INIT, JSON.stringify(init)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout.on('data', (chunk: Buffer) => this.append(chunk.toString()));
    this.child.stderr.on('data', (chunk: Buffer) => this.append(chunk.toString()));
    this.child.once('error', (err) => this.runtimeFailed('start', err));
    // 'close', not 'exit': the output is complete once the pipes close. unshare re-raises a signal that killed its child.
    this.child.once('close', (code, signal) => {
      try {
        for (const dir of cgroups.reverse()) removeCgroupTree(dir);
      } catch (err) {
        // The pod's deletion removes what is left; the test still sees why in the output.
        this.append(`\n[runtime] cannot remove the cgroups of ${this.name}: ${(err as Error).message}\n`);
      }
      this.end(code ?? 128 + (signal ? constants.signals[signal] : 0));
    });
  }

  async isRunning(): Promise<boolean> {
    return !this.hasEnded;
  }

  /** The sandbox names the container's cgroup after the container. */
  async cgroupName(): Promise<string> {
    return this.name;
  }

  /** SIGTERM to the sandbox's first process, which passes it on to the app; SIGKILL after the grace. */
  async stop(): Promise<number> {
    const init = this.initPid();
    if (init !== undefined) process.kill(init, 'SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_GRACE_MS);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGKILL to unshare: its child, the sandbox's pid 1, dies with it, and with pid 1 the whole pid namespace. */
  async kill(): Promise<number> {
    if (!this.hasEnded) this.child.kill('SIGKILL');
    return this.exited;
  }

  /** The sandbox's first process: unshare's only child. */
  private initPid(): number | undefined {
    const pid = this.child.pid;
    if (pid === undefined || this.hasEnded) return undefined;
    try {
      const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
      return children ? Number(children.split(' ')[0]) : undefined;
    } catch {
      return undefined;
    }
  }
}

/** The namespace sandbox as a {@link ContainerRuntime}. */
export class SandboxRuntime implements ContainerRuntime {
  private readonly started: SandboxProcess[] = [];

  /** @param scratchDir a directory of the test run for the runtime's own files (each container's /dev staging). */
  constructor(private readonly scratchDir: string) {}

  start(spec: ContainerRunSpec): ContainerProcess {
    const container = new SandboxProcess(spec, this.scratchDir);
    this.started.push(container);
    return container;
  }

  /** Kills the containers whose labels match `labels` (all of them by default) and waits for them to end. */
  async removeContainers(labels: Record<string, string> = {}): Promise<void> {
    const matching = this.started.filter((c) => Object.entries(labels).every(([key, value]) => c.labels[key] === value));
    await Promise.all(matching.map((c) => c.kill()));
    for (const container of matching) this.started.splice(this.started.indexOf(container), 1);
  }

  async containers(): Promise<string[]> {
    return this.started.map((c) => c.name);
  }
}
