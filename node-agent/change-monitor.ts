import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';

/** Options of a {@link ChangeMonitor}. */
export interface ChangeMonitorOptions {
  /** Commands that print a line per kernel event, as argument vectors. */
  commands: readonly (readonly string[])[];
  /** Called once per burst of events. */
  onChange: () => void;
  logger: Logger;
  /** Events closer than this are one burst, in ms. Default 500. */
  debounceMs?: number;
}

/**
 * Turns kernel change feeds into "re-discover now" calls, so the inventory follows the host when
 * it changes instead of on a blind timer: `udevadm monitor --kernel` reports CPU, memory and PCI
 * hot-plug and driver binds (uevents reach the host network namespace, hence hostNetwork), and
 * `ip monitor address route link` reports addresses and routes that make a NIC the host's. A feed
 * that cannot start or dies is logged and retried after a pause; the agent's slow re-check (which
 * publishes only on change) covers the gap.
 */
export class ChangeMonitor {
  private readonly children = new Set<ChildProcess>();
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private readonly debounceMs: number;

  constructor(private readonly options: ChangeMonitorOptions) {
    this.debounceMs = options.debounceMs ?? 500;
  }

  start(): void {
    for (const command of this.options.commands) this.watch(command);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const child of this.children) child.kill('SIGTERM');
    this.children.clear();
  }

  private watch(command: readonly string[]): void {
    if (this.stopped) return;
    const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'ignore'] });
    this.children.add(child);
    child.stdout?.on('data', () => this.changed());
    child.on('error', (err) => this.options.logger.warn({ err, command: command.join(' ') }, 'change feed unavailable; relying on the periodic re-check'));
    child.on('exit', (code, signal) => {
      this.children.delete(child);
      if (this.stopped) return;
      this.options.logger.warn({ command: command.join(' '), code, signal }, 'change feed ended; restarting it in 30s');
      setTimeout(() => this.watch(command), 30_000).unref();
    });
  }

  private changed(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.options.onChange();
    }, this.debounceMs);
    this.timer.unref();
  }
}

/** The default feeds. */
export const KERNEL_CHANGE_FEEDS: readonly (readonly string[])[] = [
  ['udevadm', 'monitor', '--kernel', '--subsystem-match=cpu', '--subsystem-match=pci', '--subsystem-match=memory', '--subsystem-match=net'],
  ['ip', 'monitor', 'address', 'route', 'link'],
];
