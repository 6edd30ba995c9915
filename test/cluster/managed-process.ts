/**
 * One control-plane process: started in its own process group with its output in a log file,
 * stopped with SIGTERM then SIGKILL to the whole group.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';

/** What to run. */
export interface ProcessSpec {
  /** Short name used in logs and errors, e.g. `kube-apiserver`. */
  name: string;
  command: string;
  args: string[];
  /** File that receives stdout and stderr (appended, so a restart keeps the earlier run). */
  logFile: string;
  env?: NodeJS.ProcessEnv;
}

/** How a process ended. */
export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running (or ended) child process that leads its own process group. */
export class ManagedProcess {
  readonly spec: ProcessSpec;
  readonly pid: number;
  /** Resolves when the process has ended, whatever the reason. */
  readonly exited: Promise<ProcessExit>;
  private exit: ProcessExit | undefined;
  private readonly child: ChildProcess;

  private constructor(spec: ProcessSpec, child: ChildProcess, pid: number) {
    this.spec = spec;
    this.child = child;
    this.pid = pid;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }

  /**
   * Spawns `spec` detached (a new session, so a Ctrl-C in the terminal reaches only its owner,
   * which stops it in order) with its output appended to `spec.logFile`.
   */
  static start(spec: ProcessSpec): ManagedProcess {
    const fd = openSync(spec.logFile, 'a');
    let child: ChildProcess;
    try {
      writeSync(fd, `\n==> ${new Date().toISOString()} ${spec.command} ${spec.args.join(' ')}\n`);
      child = spawn(spec.command, spec.args, {
        detached: true,
        stdio: ['ignore', fd, fd],
        env: spec.env ?? process.env,
      });
    } finally {
      closeSync(fd);
    }
    // A failed spawn is reported both as an 'error' event and as a missing pid; the pid is enough.
    child.on('error', () => undefined);
    if (child.pid === undefined) {
      // spawn reports ENOENT/EACCES asynchronously; the pid is missing exactly in that case.
      throw new Error(`${spec.name}: cannot start ${spec.command}; is it built and executable?`);
    }
    return new ManagedProcess(spec, child, child.pid);
  }

  /** How the process ended, or undefined while it runs. */
  get exitStatus(): ProcessExit | undefined {
    return this.exit;
  }

  /** The last `lines` lines of the log file. */
  logTail(lines = 30): string {
    try {
      return readFileSync(this.spec.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** An error for a process that ended while it was expected to run, with the tail of its log. */
  exitedError(what: string): Error {
    const exit = this.exit;
    const how = exit?.signal ? `signal ${exit.signal}` : `exit code ${exit?.code ?? '?'}`;
    return new Error(`${this.spec.name} ended (${how}) ${what}; last lines of ${this.spec.logFile}:\n${this.logTail()}`);
  }

  /** SIGTERM to the group, SIGKILL after `graceMs`; resolves once the process has ended. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.exit) return;
    this.signalGroup('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.signalGroup('SIGKILL');
        resolve();
      }, graceMs);
    });
    await Promise.race([this.exited, killed]);
    clearTimeout(timer);
    await this.exited;
  }

  /** SIGKILL to the group, synchronously: for `process.on('exit')`, where nothing can be awaited. */
  killNow(): void {
    if (!this.exit) this.signalGroup('SIGKILL');
  }

  private signalGroup(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.pid, signal);
    } catch {
      // The group is gone already; the leader may still be unreaped, so signal it directly.
      try {
        this.child.kill(signal);
      } catch {
        /* already ended */
      }
    }
  }
}
