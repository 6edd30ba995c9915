import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { isConflict } from './api-error.js';
import type { BackoffOptions } from './backoff.js';
import { realClock, type Clock, type Timer } from './clock.js';
import { decideRetry, type ReconcileEnd, type ReconcileOutcome, type ReconcileResult } from './errors.js';
import type { Informer } from './informer.js';
import { objectKey, parseObjectKey, type KubeObject } from './kube-object.js';
import { ReconcileMetrics, type ControllerMetricsSnapshot } from './reconcile-metrics.js';
import { WorkQueue } from './work-queue.js';

/** What a reconcile gets besides its key. */
export interface ReconcileContext {
  /** `namespace/name` or `name`. */
  key: string;
  name: string;
  /** `undefined` for cluster-scoped objects. */
  namespace?: string;
  /** Short random id of this reconcile, also on every line of `logger`. */
  reconcileId: string;
  /** Logger bound to `controller`, `key` and `reconcileId`. */
  logger: Logger;
  /**
   * Aborted when the controller must stop writing at once (leadership lost, shutdown timeout).
   * Pass it to every API request.
   */
  signal: AbortSignal;
  /** Consecutive failed attempts before this one (0 normally). */
  failures: number;
}

/**
 * Brings the world in line with the object named by `key`. Read current state from informer
 * caches; never trust the event that woke you. Return `{ requeueAfterMs }` to poll, throw
 * `StalledError`/`WaitingError`/anything else to choose how it is retried.
 */
export type Reconciler = (key: string, ctx: ReconcileContext) => Promise<ReconcileResult | void>;

/** A cache change as seen by filters and key mappers. */
export type InformerEvent<T> =
  | { type: 'add'; object: T }
  | { type: 'update'; object: T; oldObject: T }
  | { type: 'delete'; object: T };

/** Decides whether an event should enqueue anything (controller-runtime's predicates). */
export type EventFilter<T> = (event: InformerEvent<T>) => boolean;

/** Maps an event on a watched kind to the keys of the objects to reconcile. */
export type KeyMapper<T> = (event: InformerEvent<T>) => Iterable<string> | string | undefined;

/** One finished reconcile, for metrics hooks. */
export interface ReconcileSample {
  controller: string;
  key: string;
  outcome: ReconcileOutcome;
  durationMs: number;
}

/** Options of a {@link Controller}. */
export interface ControllerOptions {
  /** Name in logs and metrics, e.g. `vnf-placement`. */
  name: string;
  reconcile: Reconciler;
  logger: Logger;
  /** Concurrent reconciles (never two for the same key). Default 1, as controller-runtime. */
  workers?: number;
  /**
   * Every this many ms, every key of the primary informers is reconciled again, to repair drift
   * that no event reports. Default 600000 (10 min); 0 disables.
   */
  resyncPeriodMs?: number;
  /** Backoff of failed reconciles. Default 100ms doubling to 5min, jitter 0.2. */
  backoff?: Partial<BackoffOptions>;
  /** Default: {@link realClock}. */
  clock?: Clock;
  /** Uniform random source in [0, 1) for jitter. Default `Math.random`. */
  random?: () => number;
  /** Reconcile id generator. Default: 8 random hex characters. */
  newReconcileId?: () => string;
  /** Called after every reconcile, e.g. to feed a histogram elsewhere. Default: none. */
  onReconcile?: (sample: ReconcileSample) => void;
}

/** Options of {@link Controller.stop}. */
export interface ControllerStopOptions {
  /**
   * Abort the `signal` of reconciles in flight instead of letting them finish. Use it when
   * leadership is lost: a former leader must not keep writing. Default false (drain).
   */
  abortInFlight?: boolean;
}

/**
 * Wires informers to a {@link WorkQueue} and a {@link Reconciler}. Events enqueue keys from the
 * moment an informer is attached; workers start once every attached informer has synced.
 *
 * @example
 * new Controller({ name: 'vnf', reconcile, logger })
 *   .for(vnfInformer)
 *   .watches(podInformer, ({ object }) => ownerKey(object));
 */
export class Controller {
  /** Name in logs and metrics. */
  readonly name: string;
  /** The controller's queue; exposed for metrics and for tests. */
  readonly queue: WorkQueue;
  private readonly primaries: Informer<KubeObject>[] = [];
  private readonly informers = new Set<Informer<KubeObject>>();
  private readonly unsubscribers: (() => void)[] = [];
  private readonly stopping = new AbortController();
  private readonly inFlight = new AbortController();
  private readonly metricsCounters = new ReconcileMetrics();
  private readonly reconcile: Reconciler;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly workers: number;
  private readonly resyncPeriodMs: number;
  private readonly newReconcileId: () => string;
  private readonly onReconcile?: (sample: ReconcileSample) => void;
  private resyncTimer?: Timer;
  private activeWorkers = 0;
  private started = false;

  constructor(options: ControllerOptions) {
    this.name = options.name;
    this.reconcile = options.reconcile;
    this.logger = options.logger.child({ controller: options.name });
    this.clock = options.clock ?? realClock;
    this.workers = options.workers ?? 1;
    this.resyncPeriodMs = options.resyncPeriodMs ?? 600_000;
    this.newReconcileId = options.newReconcileId ?? (() => randomBytes(4).toString('hex'));
    this.onReconcile = options.onReconcile;
    this.queue = new WorkQueue({
      clock: this.clock,
      random: options.random,
      backoff: options.backoff,
      logger: this.logger,
    });
  }

  /**
   * The kind this controller reconciles: each event enqueues the object's own key, and resyncs
   * cover every cached object.
   */
  for<T extends KubeObject>(informer: Informer<T>, options: { filter?: EventFilter<T> } = {}): this {
    this.primaries.push(informer as unknown as Informer<KubeObject>);
    return this.watches(informer, (event) => objectKey(event.object), options);
  }

  /**
   * Another kind whose changes matter: `map` turns each event into the keys to reconcile (a Pod
   * to its owning VNF, an inventory change to every unplaced VNF).
   */
  watches<T extends KubeObject>(informer: Informer<T>, map: KeyMapper<T>, options: { filter?: EventFilter<T> } = {}): this {
    this.informers.add(informer as unknown as Informer<KubeObject>);
    const enqueue = (event: InformerEvent<T>) => {
      if (options.filter && !options.filter(event)) return;
      const keys = map(event);
      if (keys === undefined) return;
      if (typeof keys === 'string') this.enqueue(keys);
      else for (const key of keys) this.enqueue(key);
    };
    this.unsubscribers.push(
      informer.addEventHandler({
        onAdd: (object) => enqueue({ type: 'add', object }),
        onUpdate: (oldObject, object) => enqueue({ type: 'update', object, oldObject }),
        onDelete: (object) => enqueue({ type: 'delete', object }),
      }),
    );
    return this;
  }

  /** Queues a reconcile of `key`. */
  enqueue(key: string): void {
    if (key) this.queue.add(key);
  }

  /**
   * Waits for every attached informer to sync (they are started elsewhere, by the manager), then
   * starts the workers and the resync timer.
   *
   * @returns `true` once running, `false` if stopped before the caches synced.
   */
  async start(): Promise<boolean> {
    if (this.started) throw new Error(`controller ${this.name} already started`);
    this.started = true;
    const synced = await Promise.all([...this.informers].map((informer) => informer.waitForSync(this.stopping.signal)));
    if (this.stopping.signal.aborted || !synced.every(Boolean)) return false;
    this.queue.start(this.workers, (key) => this.process(key));
    this.scheduleResync();
    this.logger.info({ workers: this.workers }, 'controller started');
    return true;
  }

  /**
   * Stops taking work and resolves once reconciles in flight have finished (or been aborted, with
   * `abortInFlight`). Queued keys are dropped. A stopped controller cannot start again.
   */
  async stop(options: ControllerStopOptions = {}): Promise<void> {
    this.stopping.abort();
    if (options.abortInFlight) this.inFlight.abort();
    this.resyncTimer?.cancel();
    for (const unsubscribe of this.unsubscribers.splice(0)) unsubscribe();
    await this.queue.shutDown();
    this.logger.info('controller stopped');
  }

  /** Current counters, for a metrics exporter. */
  metrics(): ControllerMetricsSnapshot {
    return this.metricsCounters.snapshot(this.name, {
      queueDepth: this.queue.len(),
      queueDelayed: this.queue.delayedCount(),
      activeWorkers: this.activeWorkers,
    });
  }

  private scheduleResync(): void {
    if (this.resyncPeriodMs <= 0 || this.stopping.signal.aborted) return;
    this.resyncTimer = this.clock.setTimer(() => {
      for (const informer of this.primaries) for (const key of informer.keys()) this.enqueue(key);
      this.scheduleResync();
    }, this.resyncPeriodMs);
  }

  private async process(key: string): Promise<void> {
    const reconcileId = this.newReconcileId();
    const logger = this.logger.child({ key, reconcileId });
    const { name, namespace } = parseObjectKey(key);
    const context: ReconcileContext = {
      key,
      name,
      namespace,
      reconcileId,
      logger,
      signal: this.inFlight.signal,
      failures: this.queue.numRequeues(key),
    };
    const startedMs = this.clock.now();
    this.activeWorkers++;
    let end: ReconcileEnd;
    try {
      end = { ok: true, result: await this.reconcile(key, context) };
    } catch (error) {
      end = { ok: false, error };
    } finally {
      this.activeWorkers--;
    }
    const durationMs = this.clock.now() - startedMs;
    const decision = decideRetry(end);
    switch (decision.outcome) {
      case 'success':
        this.queue.forget(key);
        logger.debug({ durationMs }, 'reconciled');
        break;
      case 'requeueAfter':
      case 'waiting':
        this.queue.forget(key);
        this.queue.addAfter(key, decision.delayMs);
        logger.debug({ durationMs, requeueAfterMs: decision.delayMs, ...waitDetails(end) }, 'reconciled, requeued');
        break;
      case 'stalled':
        this.queue.forget(key);
        logger.error(
          { durationMs, err: errorOf(end), reason: decision.reason },
          'reconcile stalled; no retry until the object changes',
        );
        break;
      case 'error': {
        if (this.inFlight.signal.aborted) break;
        const retryInMs = this.queue.addRateLimited(key);
        const err = errorOf(end);
        // Conflicts are routine under optimistic concurrency: the retry reads the newer version.
        if (isConflict(err)) logger.info({ durationMs, retryInMs, err: err.message }, 'conflict, retrying');
        else logger.error({ durationMs, retryInMs, err }, 'reconcile failed, retrying');
        break;
      }
    }
    this.metricsCounters.record(decision.outcome, durationMs / 1000);
    this.onReconcile?.({ controller: this.name, key, outcome: decision.outcome, durationMs });
  }
}

function errorOf(end: ReconcileEnd): unknown {
  return end.ok ? undefined : end.error;
}

function waitDetails(end: ReconcileEnd): Record<string, unknown> {
  if (end.ok || !(end.error instanceof Error)) return {};
  return { reason: (end.error as { reason?: string }).reason, message: end.error.message };
}
