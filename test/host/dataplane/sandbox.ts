/**
 * Runs a VNF's app inside its isolation without a container engine: new mount, pid and network
 * namespaces, the VNF's cgroups and the pod's mounts (sandbox-init.mjs does the inside part).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { VnfIsolation } from './vnf-isolation.js';

const SANDBOX_INIT = fileURLToPath(new URL('./sandbox-init.mjs', import.meta.url));

/** How a sandboxed app ended: its exit code (128 + signal number when a signal killed it). */
export interface SandboxExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

/** A running app in a sandbox, with its stdout and stderr gathered in {@link output}. */
export class SandboxedApp {
  private text = '';
  readonly exited: Promise<SandboxExit>;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    private readonly sandboxed: boolean,
  ) {
    child.stdout!.on('data', (chunk: Buffer) => (this.text += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (this.text += chunk.toString()));
    // 'close': the app, which holds the pipes, may outlive the unshare wrapper.
    this.exited = new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal, output: this.text })));
  }

  /**
   * Starts `command` in `isolation`. The app sees the pod's mounts (read-only), a private
   * /run/dpdk, only its CPUs through the cpuset, and a network namespace of its own with nothing
   * but a loopback device.
   */
  static start(name: string, isolation: VnfIsolation, command: string, args: readonly string[]): SandboxedApp {
    const spec = { cgroupProcs: isolation.cgroupProcsFiles, mounts: isolation.mounts, tmpfs: ['/run/dpdk'], command, args };
    const child = spawn(
      'unshare',
      ['--mount', '--pid', '--net', '--fork', '--mount-proc', '--propagation', 'private', '--kill-child=SIGKILL', process.execPath, SANDBOX_INIT, JSON.stringify(spec)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    return new SandboxedApp(name, child, true);
  }

  /** Starts `command` on the host, outside any isolation, pinned to `cpus`: the baseline of the benchmark. */
  static startOnHost(name: string, cpus: readonly number[], command: string, args: readonly string[]): SandboxedApp {
    const child = spawn('taskset', ['--cpu-list', cpus.join(','), command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    return new SandboxedApp(name, child, false);
  }

  get output(): string {
    return this.text;
  }

  /** Waits until the output matches `pattern`; fails with the output so far if the app ends first or time runs out. */
  async waitFor(pattern: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    let ended = false;
    void this.exited.then(() => (ended = true));
    for (;;) {
      const match = pattern.exec(this.text);
      if (match) return match;
      if (ended || Date.now() > deadline) {
        throw new Error(`${this.name}: ${ended ? 'ended' : `no match within ${timeoutMs} ms`} before ${pattern}; output:\n${this.text.slice(-4000)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Stops the app as a container runtime does: SIGTERM to the sandbox's first process, which passes it on (on the host: to the app). */
  async stop(): Promise<SandboxExit> {
    const init = this.initPid();
    if (init !== undefined) process.kill(init, 'SIGTERM');
    return this.exited;
  }

  /** Kills the whole sandbox at once, as an OOM kill or a node crash would. */
  async kill(): Promise<SandboxExit> {
    this.child.kill('SIGKILL');
    return this.exited;
  }

  private initPid(): number | undefined {
    const pid = this.child.pid;
    if (pid === undefined || !this.sandboxed) return pid;
    try {
      const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
      return children ? Number(children.split(' ')[0]) : undefined;
    } catch {
      return undefined;
    }
  }
}
