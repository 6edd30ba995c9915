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
  /** Arguments after the image's entrypoint. */
  command?: string[];
  /** Extra mounts, e.g. memif link directories (read-write). */
  mounts?: PodMount[];
  /** Log line that says the VNF is up. */
  ready: RegExp;
}

/** A started VNF container whose output is gathered as it comes. */
export class RunningVnf {
  private text = '';

  constructor(
    readonly spec: VnfContainerSpec,
    readonly container: StartedTestContainer,
  ) {}

  /** @internal */
  async follow(): Promise<void> {
    const stream = await this.container.logs();
    stream.on('data', (chunk: Buffer | string) => (this.text += chunk.toString()));
  }

  get output(): string {
    return this.text;
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

  /** SIGKILL, as an OOM kill or a stop past the grace period would. */
  async kill(): Promise<void> {
    await execFileAsync(DOCKER, ['kill', '--signal', 'KILL', this.container.getId()]);
  }
}

/** Starts VNF containers and removes every one of them in {@link removeAll}. */
export class VnfContainers {

  async start(spec: VnfContainerSpec): Promise<RunningVnf> {
    const { allocation } = spec.isolation;
    const container = new VnfContainer(spec.image)
      .withName(`nfv-dataplane-${spec.name}-${process.pid}-${Date.now().toString(36)}`)
      .withLabels({ [TEST_LABEL]: String(process.pid) })
      .withNetworkMode('none')
      .withDroppedCapabilities('ALL')
      // The VNF container's list in src/controllers/vnf/render-pod.ts.
      .withAddedCapabilities('IPC_LOCK', 'NET_ADMIN', 'SYS_NICE')
      .withCpuset(allocation.cpus)
      .withBindMounts([
        ...spec.isolation.mounts.map((m) => ({ source: m.source, target: m.target, mode: 'ro' as const })),
        { source: spec.isolation.hugepageDir, target: '/dev/hugepages', mode: 'rw' },
        ...(spec.mounts ?? []).map((m) => ({ source: m.source, target: m.target, mode: 'rw' as const })),
      ])
      .withEnvironment({ NFV_EAL_CORELIST: formatCpuList(allocation.cpus), ...spec.env })
      .withCommand(spec.command ?? [])
      .withWaitStrategy(Wait.forLogMessage(spec.ready))
      .withStartupTimeout(30_000);
    const started = await container.start();
    const vnf = new RunningVnf(spec, started);
    await vnf.follow();
    return vnf;
  }

  /** Removes every container this process started, running or not (also those whose start failed). */
  async removeAll(): Promise<void> {
    const { stdout } = await execFileAsync(DOCKER, ['ps', '--all', '--quiet', '--filter', `label=${TEST_LABEL}=${process.pid}`]);
    const ids = stdout.split('\n').filter(Boolean);
    if (ids.length > 0) await execFileAsync(DOCKER, ['rm', '--force', '--volumes', ...ids]);
  }
}
