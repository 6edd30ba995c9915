/**
 * A running container of a pod, whichever runtime runs it (Docker through testcontainers, or the
 * namespace sandbox), as the data-plane tests use it: its output gathered from the first byte
 * (the tests read the app's own output), its exit code, waiting for something in the output, and
 * the kubelet's two ways of ending it: stop (SIGTERM, SIGKILL after a grace) and kill.
 */
import type { ContainerRunSpec } from './pod-container-spec.js';

/** Polling interval of {@link ContainerProcess.waitFor}. */
const POLL_MS = 100;
/** How much of the output a failure shows. */
const TAIL_CHARS = 4000;

/** A container started by a runtime; subclasses feed the output and report the end. */
export abstract class ContainerProcess {
  private text = '';
  private ended = false;
  private reportExit!: (code: number) => void;
  /**
   * The container's exit code: the app's, 128 + the signal number when a signal ended it, -1 when
   * the runtime failed to start or follow it (the reason is then at the end of the output).
   */
  readonly exited: Promise<number> = new Promise((resolve) => (this.reportExit = resolve));

  protected constructor(readonly name: string) {}

  /** Everything the container printed so far. */
  get output(): string {
    return this.text;
  }

  /** Whether the container (or the runtime, failing to start it) has ended. */
  get hasEnded(): boolean {
    return this.ended;
  }

  protected append(chunk: string): void {
    this.text += chunk;
  }

  /** Records the end once; later reports (a stream closing after the exit was seen) are ignored. */
  protected end(code: number): void {
    if (this.ended) return;
    this.ended = true;
    this.reportExit(code);
  }

  /** Ends the container with code -1 when the runtime failed at `what` (e.g. "start"), with the reason in its output. */
  protected runtimeFailed(what: string, err: unknown): void {
    this.append(`\n[runtime] cannot ${what} ${this.name}: ${err instanceof Error ? err.message : String(err)}\n`);
    this.end(-1);
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
        throw new Error(`${this.name}: ${what} did not happen ${this.ended ? 'before the container ended' : `within ${timeoutMs} ms`}; output:\n${this.text.slice(-TAIL_CHARS)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  /** Waits for the container to end and returns its exit code. */
  async exitCode(timeoutMs = 20_000): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.name}: still running after ${timeoutMs} ms; output:\n${this.text.slice(-TAIL_CHARS)}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** True while the runtime says the container runs. */
  abstract isRunning(): Promise<boolean>;

  /** The name of the container's cgroup under the pod cgroup, once the runtime created it. */
  abstract cgroupName(): Promise<string>;

  /** SIGTERM, as the kubelet stops a container (SIGKILL after 10 s); returns the exit code. */
  abstract stop(): Promise<number>;

  /** SIGKILL, as an OOM kill would; returns the exit code (137). */
  abstract kill(): Promise<number>;
}

/** A container runtime of the data-plane tests. */
export interface ContainerRuntime {
  /** Starts a container; its start continues in the background, failures end it with code -1. */
  start(spec: ContainerRunSpec): ContainerProcess;
  /** Removes the containers this process started whose labels match `labels` (all of them by default). */
  removeContainers(labels?: Record<string, string>): Promise<void>;
  /** Names of the containers this process started and has not removed, running or not. */
  containers(): Promise<string[]>;
}
