import type { Logger } from 'pino';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import { realClock, type Clock, type Timer } from './clock.js';

/** Processes one key. The queue logs a rejection; retry decisions belong to the caller. */
export type KeyHandler = (key: string) => Promise<void>;

/** Options of a {@link WorkQueue}. */
export interface WorkQueueOptions {
  /** Default: {@link realClock}. */
  clock?: Clock;
  /** Uniform random source in [0, 1) for jitter. Default `Math.random`. */
  random?: () => number;
  /** Per-key retry backoff of {@link WorkQueue.addRateLimited}. Default 100ms doubling to 5min, jitter 0.2. */
  backoff?: Partial<BackoffOptions>;
  /** Receives handler rejections. Default: none. */
  logger?: Logger;
}

const defaultBackoff: BackoffOptions = { baseMs: 100, maxMs: 5 * 60_000, jitter: 0.2 };

interface DelayedAdd {
  dueMs: number;
  timer: Timer;
}

/**
 * A keyed work queue with client-go's guarantees:
 *
 * - a key is queued at most once however often it is added;
 * - a key is processed by at most one worker at a time; adding it while it is processed marks it
 *   dirty and it is processed once more after the current run;
 * - keys are served first come, first served by N workers.
 *
 * Plus per-key exponential backoff ({@link addRateLimited}/{@link forget}) and delayed adds.
 */
export class WorkQueue {
  private readonly fifo: string[] = [];
  private fifoHead = 0;
  /** Keys that need processing: queued ones, and processing ones that were added again. */
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly delayed = new Map<string, DelayedAdd>();
  private readonly failures = new Map<string, number>();
  private readonly idleWorkers: ((key: string | undefined) => void)[] = [];
  private workers: Promise<void>[] = [];
  private shuttingDown = false;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly backoff: BackoffOptions;
  private readonly logger?: Logger;

  constructor(options: WorkQueueOptions = {}) {
    this.clock = options.clock ?? realClock;
    this.random = options.random ?? Math.random;
    this.backoff = { ...defaultBackoff, ...options.backoff };
    this.logger = options.logger;
  }

  /** Queues `key` unless it is already queued. Ignored after {@link shutDown}. */
  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    // A key being processed goes back in the queue when its worker finishes, not now.
    if (this.processing.has(key)) return;
    this.fifo.push(key);
    this.dispatch();
  }

  /**
   * Queues `key` after `delayMs`. If the key is already waiting, the earlier time wins. A
   * non-positive delay adds at once.
   */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const dueMs = this.clock.now() + delayMs;
    const waiting = this.delayed.get(key);
    if (waiting && waiting.dueMs <= dueMs) return;
    waiting?.timer.cancel();
    const timer = this.clock.setTimer(() => {
      this.delayed.delete(key);
      this.add(key);
    }, delayMs);
    this.delayed.set(key, { dueMs, timer });
  }

  /**
   * Queues `key` after its backoff: `baseMs·2^n` (n = failures so far), capped at `maxMs`, minus
   * up to `jitter` of itself. Each call counts one more failure until {@link forget}.
   *
   * @returns the delay chosen, in ms.
   */
  addRateLimited(key: string): number {
    const attempt = this.failures.get(key) ?? 0;
    this.failures.set(key, attempt + 1);
    const delayMs = backoffDelay(attempt, this.backoff, this.random);
    this.addAfter(key, delayMs);
    return delayMs;
  }

  /** Resets the backoff of `key` (call it when the key was processed successfully). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** How many times {@link addRateLimited} was called for `key` since the last {@link forget}. */
  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Queue depth: keys waiting for a worker (neither in flight nor delayed). */
  len(): number {
    return this.fifo.length - this.fifoHead;
  }

  /** Keys being processed right now. */
  inFlight(): number {
    return this.processing.size;
  }

  /** Keys waiting for an {@link addAfter} or {@link addRateLimited} delay. */
  delayedCount(): number {
    return this.delayed.size;
  }

  /** Whether {@link shutDown} has been called. */
  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Starts `workers` concurrent loops that feed keys to `handler`. Call once. */
  start(workers: number, handler: KeyHandler): void {
    if (this.workers.length > 0) throw new Error('work queue already started');
    if (!Number.isInteger(workers) || workers < 1) throw new RangeError(`workers must be a positive integer, got ${workers}`);
    for (let i = 0; i < workers; i++) this.workers.push(this.work(handler));
  }

  /**
   * Stops taking work: queued and delayed keys are dropped, and later adds are ignored. Resolves
   * once every key in flight has finished. Dropping queued keys is safe because reconciles are
   * level-based: whoever runs next (this process or another leader) lists everything again.
   */
  async shutDown(): Promise<void> {
    this.shuttingDown = true;
    for (const { timer } of this.delayed.values()) timer.cancel();
    this.delayed.clear();
    this.fifo.length = 0;
    this.fifoHead = 0;
    this.dirty.clear();
    for (const wake of this.idleWorkers.splice(0)) wake(undefined);
    await Promise.all(this.workers);
  }

  private async work(handler: KeyHandler): Promise<void> {
    for (;;) {
      const key = await this.next();
      if (key === undefined) return;
      try {
        await handler(key);
      } catch (err) {
        this.logger?.error({ err, key }, 'work queue handler failed');
      } finally {
        this.done(key);
      }
    }
  }

  /** The next key for a worker, or `undefined` once shut down. */
  private next(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    const key = this.take();
    if (key !== undefined) return Promise.resolve(key);
    return new Promise((resolve) => this.idleWorkers.push(resolve));
  }

  private take(): string | undefined {
    if (this.len() === 0) return undefined;
    const key = this.fifo[this.fifoHead++] as string;
    // Compact now and then so the array does not grow without bound.
    if (this.fifoHead > 1024 && this.fifoHead * 2 > this.fifo.length) {
      this.fifo.splice(0, this.fifoHead);
      this.fifoHead = 0;
    }
    this.dirty.delete(key);
    this.processing.add(key);
    return key;
  }

  private dispatch(): void {
    while (this.idleWorkers.length > 0 && this.len() > 0) {
      const wake = this.idleWorkers.shift() as (key: string | undefined) => void;
      wake(this.take());
    }
  }

  private done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) {
      this.fifo.push(key);
      this.dispatch();
    }
  }
}
