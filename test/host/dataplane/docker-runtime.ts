/**
 * Docker as the pods' container runtime, driven through testcontainers (11.x: 12.x needs Node 22),
 * the project's library for containers in tests.
 *
 * testcontainers has builders for most of a rendered container, not for the kubelet-style cgroup
 * parent, device mappings, bind mounts with a propagation, or the pod's pid namespace:
 * {@link PodSpecContainer} sets those in the protected `hostConfig` it sends with the create call.
 * Its Ryuk image cannot be pulled here, so Ryuk is off and cleanup is ours: every container is
 * labelled with the pid of the process that started it; {@link DockerRuntime.removeContainers}
 * removes a test's containers, and the first start of a process removes those of runs that
 * ended without cleaning up (their pid is gone). The images are local only: a missing one fails
 * the start naming hack/build-images.sh instead of letting testcontainers pull it.
 */
import { GenericContainer, getContainerRuntimeClient, ImageName, type StartedTestContainer } from 'testcontainers';
import type { Readable } from 'node:stream';
import { ContainerProcess, type ContainerRuntime } from './container-process.js';
import type { ContainerRunSpec } from './pod-container-spec.js';

// testcontainers reads this when it first needs its reaper (getReaper), i.e. at the first start,
// so setting it when this module loads is early enough whatever imported testcontainers before.
process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';

/** Label on every container the data-plane tests start, valued with the starting process's pid. */
export const TEST_CONTAINER_LABEL = 'dev.nfv.dataplane-test';
/** The kubelet's grace between SIGTERM and SIGKILL (the rendered pods' terminationGracePeriodSeconds). */
const STOP_GRACE_MS = 10_000;
/** How long the output may trail the exit code (the log stream ends a moment after the container). */
const OUTPUT_DRAIN_MS = 5_000;

/** A rendered pod's container as a testcontainers container. */
export class PodSpecContainer extends GenericContainer {
  constructor(spec: ContainerRunSpec) {
    super(spec.image);
    this.withName(spec.name)
      .withLabels(spec.labels)
      .withEnvironment(spec.env)
      .withNetworkMode(spec.network)
      // A stopped container is kept until the test removes it: its exit code and output are read after the stop.
      .withAutoRemove(false);
    if (spec.entrypoint) this.withEntrypoint(spec.entrypoint);
    if (spec.cmd) this.withCommand(spec.cmd);
    if (spec.capabilities.drop.length > 0) this.withDroppedCapabilities(...spec.capabilities.drop);
    if (spec.capabilities.add.length > 0) this.withAddedCapabilities(...spec.capabilities.add);
    if (spec.noNewPrivileges) this.withSecurityOpt('no-new-privileges');
    Object.assign(this.hostConfig, {
      ...(spec.cgroupParent ? { CgroupParent: spec.cgroupParent } : {}),
      Devices: spec.devices.map((d) => ({ PathOnHost: d.source, PathInContainer: d.target, CgroupPermissions: 'rwm' })),
      Mounts: spec.mounts.map((m) => ({ Type: 'bind', Source: m.source, Target: m.target, ReadOnly: m.readOnly, BindOptions: { Propagation: m.propagation } })),
      ...(spec.pid === 'host' ? { PidMode: 'host' } : {}),
    });
  }

  override async start(): Promise<StartedTestContainer> {
    const client = await getContainerRuntimeClient();
    const image = ImageName.fromString(this.createOpts.Image!);
    if (!(await client.image.exists(image))) throw new Error(`image ${image.string} is not built (no registry is reachable): run hack/build-images.sh`);
    return super.start();
  }
}

/** A container of a pod run by Docker. */
class DockerContainerProcess extends ContainerProcess {
  private started: Promise<StartedTestContainer | undefined>;

  /** `ready`: what must be done before the start (the removal of orphans). */
  constructor(spec: ContainerRunSpec, ready: Promise<void>) {
    super(spec.name);
    let outputEnded: Promise<void> = Promise.resolve();
    const container = new PodSpecContainer(spec).withLogConsumer((stream: Readable) => {
      // Docker replays the log from the container's first byte, so nothing printed before the consumer attached is lost.
      stream.on('data', (chunk: string | Buffer) => this.append(chunk.toString()));
      outputEnded = new Promise((resolve) => stream.once('end', resolve).once('error', () => resolve()));
    });
    this.started = ready.then(() => container.start()).then(
      (started) => {
        this.watchExit(started.getId(), () => outputEnded).catch((err: unknown) => this.runtimeFailed('wait for', err));
        return started;
      },
      (err: unknown) => {
        this.runtimeFailed('start', err);
        return undefined;
      },
    );
  }

  private async watchExit(id: string, outputEnded: () => Promise<void>): Promise<void> {
    const client = await getContainerRuntimeClient();
    const result = (await client.container.getById(id).wait()) as { StatusCode: number };
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([outputEnded(), new Promise((resolve) => (timer = setTimeout(resolve, OUTPUT_DRAIN_MS)))]);
    clearTimeout(timer);
    this.end(result.StatusCode);
  }

  private async container(): Promise<StartedTestContainer> {
    const started = await this.started;
    if (!started) throw new Error(`${this.name} did not start; output:\n${this.output.slice(-3000)}`);
    return started;
  }

  async isRunning(): Promise<boolean> {
    const started = await this.started;
    if (!started || this.hasEnded) return false;
    const client = await getContainerRuntimeClient();
    const inspected = await client.container.inspect(client.container.getById(started.getId())).catch(() => undefined);
    return inspected?.State.Running === true;
  }

  /** Docker's cgroupfs driver names a container's cgroup after its id. */
  async cgroupName(): Promise<string> {
    return (await this.container()).getId();
  }

  async stop(): Promise<number> {
    await (await this.container()).stop({ timeout: STOP_GRACE_MS, remove: false });
    return this.exitCode(STOP_GRACE_MS + 10_000);
  }

  async kill(): Promise<number> {
    const client = await getContainerRuntimeClient();
    await client.container
      .getById((await this.container()).getId())
      .kill({ signal: 'KILL' })
      // 409: it has ended already; its exit code says how.
      .catch((err: { statusCode?: number }) => {
        if (err.statusCode !== 409) throw err;
      });
    return this.exitCode();
  }
}

/** Containers, running or not, that match every Docker label filter (`key` or `key=value`). */
async function containersLabelled(label: string[]): Promise<{ id: string; name: string; owner: string }[]> {
  const client = await getContainerRuntimeClient();
  const found = await client.container.dockerode.listContainers({ all: true, filters: { label } });
  // Docker lists a container's name with a leading slash.
  return found.map((c) => ({ id: c.Id, name: (c.Names[0] ?? c.Id).replace(/^\//, ''), owner: c.Labels[TEST_CONTAINER_LABEL] ?? '' }));
}

async function removeById(ids: readonly string[]): Promise<void> {
  const client = await getContainerRuntimeClient();
  for (const id of ids) {
    await client.container
      .getById(id)
      .remove({ force: true, v: true })
      // 404: gone already (removed by a concurrent cleanup).
      .catch((err: { statusCode?: number }) => {
        if (err.statusCode !== 404) throw err;
      });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes the containers of earlier runs whose process has gone: what an interrupted run left behind. */
async function removeOrphanedContainers(): Promise<void> {
  const orphans = (await containersLabelled([TEST_CONTAINER_LABEL])).filter((c) => !isAlive(Number(c.owner)));
  await removeById(orphans.map((c) => c.id));
}

/** Docker as a {@link ContainerRuntime}. */
export class DockerRuntime implements ContainerRuntime {
  private static orphansRemoved: Promise<void> | undefined;

  start(spec: ContainerRunSpec): ContainerProcess {
    DockerRuntime.orphansRemoved ??= removeOrphanedContainers();
    const labelled = { ...spec, labels: { ...spec.labels, [TEST_CONTAINER_LABEL]: String(process.pid) } };
    return new DockerContainerProcess(labelled, DockerRuntime.orphansRemoved);
  }

  async removeContainers(labels: Record<string, string> = {}): Promise<void> {
    await removeById((await ownContainers(labels)).map((c) => c.id));
  }

  async containers(): Promise<string[]> {
    return (await ownContainers()).map((c) => c.name);
  }
}

/** The containers this process started whose labels match `labels` (all of them by default), running or not. */
async function ownContainers(labels: Record<string, string> = {}): Promise<{ id: string; name: string }[]> {
  const filters = Object.entries({ [TEST_CONTAINER_LABEL]: String(process.pid), ...labels }).map(([key, value]) => `${key}=${value}`);
  return containersLabelled(filters);
}

/** Label of the containers {@link runInImage} starts, valued with a serial number. */
const ONE_SHOT_LABEL = 'dev.nfv.dataplane-one-shot';
let oneShots = 0;

/**
 * Runs `command` in `image` to its end, without network or capabilities, and removes the
 * container; returns its exit code and output. For looking into an image, not for a pod.
 */
export async function runInImage(runtime: DockerRuntime, image: string, command: readonly string[]): Promise<{ code: number; output: string }> {
  const serial = String(++oneShots);
  const [entrypoint, ...args] = command;
  const container = runtime.start({
    name: `nfv-dp-run-${serial}-${process.pid}`,
    image,
    entrypoint: [entrypoint!],
    cmd: args,
    env: {},
    labels: { [ONE_SHOT_LABEL]: serial },
    mounts: [],
    devices: [],
    capabilities: { add: [], drop: ['ALL'] },
    noNewPrivileges: true,
    network: 'none',
    pid: 'container',
  });
  try {
    return { code: await container.exitCode(60_000), output: container.output };
  } finally {
    await runtime.removeContainers({ [ONE_SHOT_LABEL]: serial });
  }
}

/** The labels of local image `image`. */
export async function imageLabels(image: string): Promise<Record<string, string>> {
  const client = await getContainerRuntimeClient();
  return (await client.image.inspect(ImageName.fromString(image))).Config.Labels ?? {};
}
