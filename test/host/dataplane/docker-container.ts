/**
 * A container run with Debian's docker CLI, attached, so its stdout and stderr are gathered from
 * the first byte: the tests read the app's own output. Every container carries a label valued
 * with the test process's pid, and {@link removeTestContainers} removes them all, also those of a
 * failed start.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { DOCKER } from './prerequisites.js';

const execFileAsync = promisify(execFile);

/** Label on every container the data-plane tests start, valued with the test process's pid. */
export const TEST_CONTAINER_LABEL = 'dev.nfv.dataplane-test';

/** A container started by `docker run`, its client attached. */
export class DockerContainer {
  private text = '';
  private ended = false;
  /** The container's exit code (what the attached client exits with; 125 when Docker could not start it). */
  readonly exited: Promise<number>;

  private constructor(
    readonly name: string,
    client: ChildProcess,
  ) {
    client.stdout!.on('data', (chunk: Buffer) => (this.text += chunk.toString()));
    client.stderr!.on('data', (chunk: Buffer) => (this.text += chunk.toString()));
    this.exited = new Promise((resolve) =>
      client.once('close', (code) => {
        this.ended = true;
        resolve(code ?? -1);
      }),
    );
  }

  /** Runs `docker run <runArgs>`; `runArgs` must name the container `name`. */
  static run(name: string, runArgs: readonly string[]): DockerContainer {
    if (!runArgs.includes(name)) throw new Error(`docker run arguments do not name the container ${name}`);
    return new DockerContainer(name, spawn(DOCKER, ['run', ...runArgs], { stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  /** Whether the container (or Docker, failing to start it) has ended. */
  get hasEnded(): boolean {
    return this.ended;
  }

  /** Everything the container printed so far. */
  get output(): string {
    return this.text;
  }

  /**
   * Polls until `check` holds on the output (a pattern or a predicate); fails with the output's
   * tail when the container ends first or time runs out.
   */
  async waitFor(what: string, check: RegExp | ((output: string) => boolean), timeoutMs = 20_000): Promise<void> {
    const holds = typeof check === 'function' ? check : (output: string) => check.test(output);
    const deadline = Date.now() + timeoutMs;
    while (!holds(this.text)) {
      if (this.ended || Date.now() > deadline) {
        throw new Error(`${this.name}: ${what} did not happen ${this.ended ? 'before the container ended' : `within ${timeoutMs} ms`}; output:\n${this.text.slice(-4000)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** True while Docker says the container runs. */
  async isRunning(): Promise<boolean> {
    const { stdout } = await execFileAsync(DOCKER, ['inspect', '-f', '{{.State.Running}}', this.name]).catch(() => ({ stdout: 'false' }));
    return stdout.trim() === 'true';
  }

  /** The container's id, once Docker created it. */
  async id(): Promise<string> {
    const { stdout } = await execFileAsync(DOCKER, ['inspect', '-f', '{{.Id}}', this.name]);
    return stdout.trim();
  }

  /** Waits for the container to end and returns its exit code. */
  async exitCode(timeoutMs = 20_000): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.name}: still running after ${timeoutMs} ms; output:\n${this.text.slice(-3000)}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGTERM, as the kubelet stops a container (SIGKILL after 10 s); returns the exit code. */
  async stop(): Promise<number> {
    await execFileAsync(DOCKER, ['stop', '--time', '10', this.name]);
    return this.exitCode();
  }

  /** SIGKILL, as an OOM kill would; returns the exit code (137). */
  async kill(): Promise<number> {
    await execFileAsync(DOCKER, ['kill', '--signal', 'KILL', this.name]);
    return this.exitCode();
  }
}

/** Ids of the containers this process started whose labels match `labels` (all of them by default), running or not. */
export async function testContainers(labels: Record<string, string> = {}): Promise<string[]> {
  const filters = Object.entries({ [TEST_CONTAINER_LABEL]: String(process.pid), ...labels }).flatMap(([key, value]) => ['--filter', `label=${key}=${value}`]);
  const { stdout } = await execFileAsync(DOCKER, ['ps', '--all', '--quiet', ...filters]);
  return stdout.split('\n').filter(Boolean);
}

/** Removes the containers this process started whose labels match `labels` (all of them by default). */
export async function removeTestContainers(labels: Record<string, string> = {}): Promise<void> {
  const ids = await testContainers(labels);
  if (ids.length > 0) await execFileAsync(DOCKER, ['rm', '--force', '--volumes', ...ids]);
}
