/**
 * An app run on the host, outside any isolation, pinned to its CPUs with taskset: the benchmark's
 * baseline. It has the interface of a pod's container, so the benchmark reads and stops it alike.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import { ContainerProcess } from './container-process.js';

/** A process of the host, pinned to `cpus`. */
export class HostProcess extends ContainerProcess {
  private readonly child: ChildProcess;

  constructor(name: string, cpus: readonly number[], command: string, args: readonly string[]) {
    super(name);
    // taskset execs the command: the child is the app itself.
    this.child = spawn('taskset', ['--cpu-list', cpus.join(','), command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (chunk: Buffer) => this.append(chunk.toString()));
    this.child.stderr!.on('data', (chunk: Buffer) => this.append(chunk.toString()));
    this.child.once('error', (err) => this.runtimeFailed('start', err));
    this.child.once('close', (code, signal) => this.end(code ?? 128 + (signal ? constants.signals[signal] : 0)));
  }

  async isRunning(): Promise<boolean> {
    return !this.hasEnded;
  }

  async cgroupName(): Promise<string> {
    throw new Error(`${this.name} runs on the host, in no cgroup of its own`);
  }

  async stop(): Promise<number> {
    if (!this.hasEnded) this.child.kill('SIGTERM');
    return this.exitCode();
  }

  async kill(): Promise<number> {
    if (!this.hasEnded) this.child.kill('SIGKILL');
    return this.exitCode();
  }
}
