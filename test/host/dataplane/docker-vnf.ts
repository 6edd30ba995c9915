/**
 * A VNF's container as its pod runs it, driven with testcontainers: the VNF image, the pod's
 * mounts from the agent (masked sysfs, the hugetlbfs at /dev/hugepages, memif link directories),
 * the VNF's CPUs as its cpuset, no network but its own namespace's loopback, and the pod's
 * capability list instead of --privileged (which these machines refuse).
 *
 * Ryuk (testcontainers' reaper) cannot be pulled here: it is off, and {@link VnfContainers}
 * removes what it started.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { formatCpuList } from '../../../src/api/cpu-list.js';
import { DOCKER } from './prerequisites.js';
import type { PodMount, VnfIsolation } from './vnf-isolation.js';

process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';
const execFileAsync = promisify(execFile);
/** Label on every container these tests start, valued with the test process's pid. */
const TEST_LABEL = 'dev.nfv.dataplane-test';

/** GenericContainer with the cpuset that testcontainers has no builder for. */
class VnfContainer extends GenericContainer {
  withCpuset(cpus: readonly number[]): this {
    this.hostConfig.CpusetCpus = formatCpuList(cpus);
    return this;
  }
}

/** How to run one VNF container. */
export interface VnfContainerSpec {
  /** Unique among the test's containers; the container is named nfv-dataplane-<name>-<pid>. */
  name: string;
  image: string;
  isolation: VnfIsolation;
  env: Record<string, string>;
  /** Replaces the image's entrypoint. */
  entrypoint?: string[];
  /** Arguments after the image's entrypoint. */
  command?: string[];
  /** Extra mounts, e.g. memif link directories (read-write). */
  mounts?: PodMount[];
  /** Log line that says the VNF is up. */
  ready: RegExp;
}

/** Output of a container, gathered from its start on. */
class OutputBuffer {
  text = '';
}

/** A started VNF container whose output is gathered as it comes. */
export class RunningVnf {
  /** @internal */
  constructor(
    readonly spec: VnfContainerSpec,
    readonly container: StartedTestContainer,
    private readonly buffer: OutputBuffer,
  ) {}

  get output(): string {
    return this.buffer.text;
  }

  private get text(): string {
    return this.buffer.text;
  }

  /** Polls `check` on the output until it holds; fails with the output's tail when time runs out. */
  async waitUntil(what: string, check: (output: string) => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check(this.text)) {
      if (Date.now() > deadline) throw new Error(`${this.spec.name}: ${what} did not happen within ${timeoutMs} ms; output:\n${this.text.slice(-3000)}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** True while Docker says the container runs. */
  async isRunning(): Promise<boolean> {
    const { stdout } = await execFileAsync(DOCKER, ['inspect', '-f', '{{.State.Running}}', this.container.getId()]).catch(() => ({ stdout: 'false' }));
    return stdout.trim() === 'true';
  }

  /** Waits until the container has exited and returns its exit code. */
  async exitCode(timeoutMs = 20_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (await this.isRunning()) {
      if (Date.now() > deadline) throw new Error(`${this.spec.name}: still running after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const { stdout } = await execFileAsync(DOCKER, ['inspect', '-f', '{{.State.ExitCode}}', this.container.getId()]);
    return Number(stdout.trim());
  }

  /** SIGTERM, as the kubelet stops a pod, then waits for the container to exit; returns its exit code. */
  async stop(): Promise<number> {
    await execFileAsync(DOCKER, ['stop', '--time', '10', this.container.getId()]);
    return this.exitCode();
  }

  /** SIGKILL, as an OOM kill or a stop past the grace period would. */
  async kill(): Promise<void> {
    await execFileAsync(DOCKER, ['kill', '--signal', 'KILL', this.container.getId()]);
  }
}

/** Starts VNF containers and removes every one of them in {@link removeAll}. */
export class VnfContainers {

  async start(spec: VnfContainerSpec): Promise<RunningVnf> {
    const { allocation, mounts } = spec.isolation;
    // Without the mask EAL probes every PCI device it sees, the machine's own NICs included.
    if (!mounts.some((m) => m.target === '/sys/bus/pci/devices')) throw new Error(`${spec.name}: refusing to start a VNF without its PCI device mask`);
    const name = `nfv-dataplane-${spec.name}-${process.pid}-${Date.now().toString(36)}`;
    const buffer = new OutputBuffer();
    const container = new VnfContainer(spec.image)
      .withName(name)
      .withLabels({ [TEST_LABEL]: String(process.pid) })
      .withNetworkMode('none')
      .withDroppedCapabilities('ALL')
      // The VNF container's list in src/controllers/vnf/render-pod.ts.
      .withAddedCapabilities('IPC_LOCK', 'NET_ADMIN', 'SYS_NICE')
      .withCpuset(allocation.cpus)
      .withBindMounts([
        ...mounts.map((m) => ({ source: m.source, target: m.target, mode: 'ro' as const })),
        { source: spec.isolation.hugepageDir, target: '/dev/hugepages', mode: 'rw' },
        ...(spec.mounts ?? []).map((m) => ({ source: m.source, target: m.target, mode: 'rw' as const })),
      ])
      .withEnvironment({ NFV_EAL_CORELIST: formatCpuList(allocation.cpus), ...spec.env })
      .withCommand(spec.command ?? [])
      .withLogConsumer((stream) => stream.on('data', (chunk: Buffer | string) => (buffer.text += chunk.toString())))
      .withWaitStrategy(Wait.forLogMessage(spec.ready))
      .withStartupTimeout(30_000);
    if (spec.entrypoint) container.withEntrypoint(spec.entrypoint);
    let started: StartedTestContainer;
    try {
      started = await container.start();
    } catch (err) {
      throw new Error(`${spec.name}: ${(err as Error).message}; its output:\n${buffer.text.slice(-4000)}`);
    }
    return new RunningVnf(spec, started, buffer);
  }

  /** Removes every container this process started, running or not (also those whose start failed). */
  async removeAll(): Promise<void> {
    const { stdout } = await execFileAsync(DOCKER, ['ps', '--all', '--quiet', '--filter', `label=${TEST_LABEL}=${process.pid}`]);
    const ids = stdout.split('\n').filter(Boolean);
    if (ids.length > 0) await execFileAsync(DOCKER, ['rm', '--force', '--volumes', ...ids]);
  }
}
