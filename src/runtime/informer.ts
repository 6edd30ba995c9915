import type { Logger } from 'pino';
import { ApiError, isGone } from './api-error.js';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import { realClock, sleep, type Clock } from './clock.js';
import type { KubeClient, WatchEvent } from './kube-client.js';
import { objectKey, type KubeObject, type ResourceRef } from './kube-object.js';
import { KubeListWatchSource, type KubeListWatchOptions, type ListWatchSource } from './list-watch-source.js';

/**
 * Callbacks for cache changes. They run synchronously, in event order, after the cache has been
 * updated. Objects are the cached ones: treat them as read-only (clone before changing).
 * A throwing handler is logged and does not stop the others.
 */
export interface InformerEventHandler<T> {
  onAdd?(obj: T): void;
  onUpdate?(oldObj: T, newObj: T): void;
  /** `obj` is the final state the watch reported, or the last cached state when a relist found it gone. */
  onDelete?(obj: T): void;
}

/** Options of an {@link Informer}. */
export interface InformerOptions<T extends KubeObject> {
  /** Snapshot and change feed. */
  source: ListWatchSource<T>;
  logger: Logger;
  /** Name in logs. Default: the source's description. */
  name?: string;
  /** Default: {@link realClock}. */
  clock?: Clock;
  /** Uniform random source in [0, 1) for backoff jitter. Default `Math.random`. */
  random?: () => number;
  /** Backoff between failed list/watch attempts. Default 800ms doubling to 30s, jitter 0.4 (client-go's reflector). */
  backoff?: Partial<BackoffOptions>;
  /** A watch that ends without events sooner than this counts as a failure (backs off). Default 1000ms. */
  minWatchDurationMs?: number;
}

/** Options of {@link Informer.forResource}: the API-server source plus the informer's own settings. */
export type ResourceInformerOptions<T extends KubeObject> = Omit<InformerOptions<T>, 'source'> & KubeListWatchOptions;

const defaultBackoff: BackoffOptions = { baseMs: 800, maxMs: 30_000, jitter: 0.4 };

/**
 * List + watch + cache of one resource, like client-go's shared informer.
 *
 * - The cache is keyed by {@link objectKey} (`namespace/name`, or `name` for cluster-scoped).
 * - A watch that ends is resumed from the last resourceVersion seen (bookmarks keep it fresh).
 * - 410 Gone (HTTP status or an ERROR event) relists at once and emits add/update/delete for
 *   whatever differs between the cache and the new list.
 * - Other failures retry with exponential backoff and jitter.
 */
export class Informer<T extends KubeObject> {
  /** Name in logs. */
  readonly name: string;
  private readonly cache = new Map<string, T>();
  private readonly handlers = new Set<InformerEventHandler<T>>();
  private readonly syncWaiters = new Set<(synced: boolean) => void>();
  private readonly abort = new AbortController();
  private readonly source: ListWatchSource<T>;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly backoff: BackoffOptions;
  private readonly minWatchDurationMs: number;
  private resourceVersion = '';
  private synced = false;
  private running?: Promise<void>;

  constructor(options: InformerOptions<T>) {
    this.source = options.source;
    this.name = options.name ?? options.source.description;
    this.logger = options.logger.child({ informer: this.name });
    this.clock = options.clock ?? realClock;
    this.random = options.random ?? Math.random;
    this.backoff = { ...defaultBackoff, ...options.backoff };
    this.minWatchDurationMs = options.minWatchDurationMs ?? 1000;
  }

  /** An informer over `resource` on the API server, optionally limited to a namespace or selectors. */
  static forResource<T extends KubeObject>(
    client: Pick<KubeClient, 'list' | 'watch'>,
    resource: ResourceRef,
    options: ResourceInformerOptions<T>,
  ): Informer<T> {
    const { namespace, labelSelector, fieldSelector, pageSize, minWatchTimeoutSeconds, ...informerOptions } = options;
    const source = new KubeListWatchSource<T>(client, resource, {
      namespace,
      labelSelector,
      fieldSelector,
      pageSize,
      minWatchTimeoutSeconds,
      random: options.random,
    });
    return new Informer<T>({ ...informerOptions, source });
  }

  /**
   * Registers callbacks. If the cache already holds objects they are replayed to this handler as
   * adds, so a late handler sees the same world as an early one.
   *
   * @returns a function that unregisters the handler.
   */
  addEventHandler(handler: InformerEventHandler<T>): () => void {
    this.handlers.add(handler);
    for (const obj of this.cache.values()) this.call('onAdd', () => handler.onAdd?.(obj));
    return () => this.handlers.delete(handler);
  }

  /** Starts listing and watching in the background. Idempotent; an informer cannot restart after {@link stop}. */
  start(): void {
    if (this.abort.signal.aborted) throw new Error(`informer ${this.name} was stopped and cannot be restarted`);
    this.running ??= this.run();
  }

  /** Stops watching, cancels any backoff timer and closes the connection; resolves once the loop has ended. */
  async stop(): Promise<void> {
    this.abort.abort();
    for (const resolve of this.syncWaiters) resolve(false);
    this.syncWaiters.clear();
    await this.running;
  }

  /** Whether the first list has been loaded into the cache (and its add events delivered). */
  hasSynced(): boolean {
    return this.synced;
  }

  /**
   * Resolves `true` once synced, or `false` if the informer is stopped or `signal` aborts first.
   */
  waitForSync(signal?: AbortSignal): Promise<boolean> {
    if (this.synced) return Promise.resolve(true);
    if (this.abort.signal.aborted || signal?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (synced: boolean) => {
        this.syncWaiters.delete(done);
        signal?.removeEventListener('abort', onAbort);
        resolve(synced);
      };
      const onAbort = () => done(false);
      this.syncWaiters.add(done);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** The cached object under `key` (`namespace/name` or `name`). */
  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  /** The cached object with this name (and namespace, for namespaced resources). */
  getByName(name: string, namespace?: string): T | undefined {
    return this.cache.get(namespace ? `${namespace}/${name}` : name);
  }

  /** Every cached object, optionally filtered. */
  list(filter?: (obj: T) => boolean): T[] {
    const all = [...this.cache.values()];
    return filter ? all.filter(filter) : all;
  }

  /** Every cache key. */
  keys(): string[] {
    return [...this.cache.keys()];
  }

  /** The resourceVersion the cache reflects (of the last list, event or bookmark). */
  lastResourceVersion(): string {
    return this.resourceVersion;
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    let needsList = true;
    let failures = 0;
    while (!signal.aborted) {
      try {
        if (needsList) {
          const snapshot = await this.source.list(signal);
          if (signal.aborted) break;
          this.replace(snapshot.items);
          this.resourceVersion = snapshot.resourceVersion;
          needsList = false;
          this.markSynced();
          this.logger.debug({ objects: this.cache.size, resourceVersion: this.resourceVersion }, 'listed');
        }
        const watchStarted = this.clock.now();
        let events = 0;
        for await (const event of this.source.watch(this.resourceVersion, signal)) {
          if (signal.aborted) break;
          events++;
          failures = 0;
          this.apply(event);
        }
        if (signal.aborted) break;
        if (events === 0 && this.clock.now() - watchStarted < this.minWatchDurationMs) {
          throw new Error('watch closed at once without events');
        }
        failures = 0;
      } catch (err) {
        if (signal.aborted) break;
        const gone = isGone(err);
        if (gone) needsList = true;
        // The first 410 relists at once: that is the normal recovery. Repeated ones back off, so a
        // server that keeps answering 410 is not hammered with lists.
        const delayMs = gone && failures === 0 ? 0 : backoffDelay(failures, this.backoff, this.random);
        failures++;
        const level = gone && failures === 1 ? 'info' : 'warn';
        const message = gone ? 'resourceVersion expired, relisting' : 'list/watch failed, retrying';
        this.logger[level]({ err, delayMs, relist: needsList }, message);
        if (delayMs > 0 && !(await sleep(this.clock, delayMs, signal))) break;
      }
    }
  }

  private apply(event: WatchEvent<T>): void {
    if (event.type === 'ERROR') {
      throw new ApiError(event.object.code ?? 500, event.object, `watch ${this.name}`);
    }
    const rv = event.object.metadata?.resourceVersion;
    if (rv) this.resourceVersion = rv;
    if (event.type === 'BOOKMARK') return;
    const key = objectKey(event.object);
    const old = this.cache.get(key);
    if (event.type === 'DELETED') {
      this.cache.delete(key);
      this.emitDelete(event.object);
      return;
    }
    this.cache.set(key, event.object);
    if (old) this.emitUpdate(old, event.object);
    else this.emitAdd(event.object);
  }

  /** Swaps in a fresh list and reports what changed, as the events the watch would have sent. */
  private replace(items: T[]): void {
    const fresh = new Map<string, T>();
    for (const item of items) fresh.set(objectKey(item), item);
    const previous = new Map(this.cache);
    this.cache.clear();
    for (const [key, obj] of fresh) this.cache.set(key, obj);
    for (const [key, obj] of fresh) {
      const old = previous.get(key);
      if (!old) this.emitAdd(obj);
      else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.emitUpdate(old, obj);
    }
    for (const [key, old] of previous) {
      if (!fresh.has(key)) this.emitDelete(old);
    }
  }

  private markSynced(): void {
    if (this.synced) return;
    this.synced = true;
    for (const resolve of this.syncWaiters) resolve(true);
    this.syncWaiters.clear();
  }

  private emitAdd(obj: T): void {
    for (const handler of this.handlers) this.call('onAdd', () => handler.onAdd?.(obj));
  }

  private emitUpdate(oldObj: T, newObj: T): void {
    for (const handler of this.handlers) this.call('onUpdate', () => handler.onUpdate?.(oldObj, newObj));
  }

  private emitDelete(obj: T): void {
    for (const handler of this.handlers) this.call('onDelete', () => handler.onDelete?.(obj));
  }

  private call(callback: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.logger.error({ err, callback }, 'event handler threw');
    }
  }
}
