import { pino, type Logger } from 'pino';
import type { ListResult, WatchEvent } from '../../../src/runtime/kube-client.js';
import type { KubeObject } from '../../../src/runtime/kube-object.js';
import type { ListWatchSource } from '../../../src/runtime/list-watch-source.js';

/** A logger that writes nothing. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** A logger that keeps every line as an object, for assertions on log fields. */
export function recordingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

/** A promise with its resolve/reject exposed. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (err: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * An async iterable fed by the test: `push` events, `fail` with an error, `close` to end. Ends
 * quietly when `signal` aborts, like a watch stream.
 */
export class AsyncChannel<T> implements AsyncIterable<T> {
  private readonly buffered: T[] = [];
  private waiting?: { resolve: (r: IteratorResult<T>) => void; reject: (err: unknown) => void };
  private ended = false;
  private error?: unknown;

  constructor(signal?: AbortSignal) {
    signal?.addEventListener('abort', () => this.close(), { once: true });
  }

  push(value: T): void {
    if (this.ended) throw new Error('push after close');
    if (this.waiting) {
      const { resolve } = this.waiting;
      this.waiting = undefined;
      resolve({ value, done: false });
    } else this.buffered.push(value);
  }

  fail(err: unknown): void {
    this.error = err;
    this.finish();
  }

  close(): void {
    this.finish();
  }

  get closed(): boolean {
    return this.ended;
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        const value = this.buffered.shift();
        if (value !== undefined) return Promise.resolve({ value, done: false });
        if (this.ended) {
          return this.error ? Promise.reject(this.error) : Promise.resolve({ value: undefined, done: true });
        }
        return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
      },
      return: () => {
        this.finish();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    const waiting = this.waiting;
    this.waiting = undefined;
    if (!waiting) return;
    if (this.error) waiting.reject(this.error);
    else waiting.resolve({ value: undefined, done: true });
  }
}

/**
 * A {@link ListWatchSource} a test scripts: queue list answers with `listResults`, then drive the
 * open watch through `lastWatch()`.
 */
export class ScriptedSource<T extends KubeObject> implements ListWatchSource<T> {
  readonly description = 'scripted';
  readonly listResults: (ListResult<T> | Error)[] = [];
  readonly watchResourceVersions: string[] = [];
  /** Errors thrown instead of opening the next watches, in order. */
  readonly watchOpenErrors: Error[] = [];
  listCalls = 0;
  private readonly watches: AsyncChannel<WatchEvent<T>>[] = [];

  async list(): Promise<ListResult<T>> {
    this.listCalls++;
    const next = this.listResults.shift();
    if (!next) throw new Error('no list result scripted');
    if (next instanceof Error) throw next;
    return next;
  }

  watch(resourceVersion: string, signal: AbortSignal): AsyncIterable<WatchEvent<T>> {
    this.watchResourceVersions.push(resourceVersion);
    const openError = this.watchOpenErrors.shift();
    if (openError) {
      const failing = new AsyncChannel<WatchEvent<T>>();
      failing.fail(openError);
      return failing;
    }
    const channel = new AsyncChannel<WatchEvent<T>>(signal);
    this.watches.push(channel);
    return channel;
  }

  /** The most recently opened watch. */
  lastWatch(): AsyncChannel<WatchEvent<T>> {
    const watch = this.watches.at(-1);
    if (!watch) throw new Error('no watch opened yet');
    return watch;
  }

  get watchCount(): number {
    return this.watchResourceVersions.length;
  }
}

/** A test object of a namespaced kind. */
export interface Widget extends KubeObject {
  metadata: { name: string; namespace?: string; resourceVersion?: string; uid?: string; generation?: number };
  spec?: { size?: number };
  status?: Record<string, unknown>;
}

/** Builds a {@link Widget}; `key` is `namespace/name` or `name`. */
export function widget(key: string, resourceVersion: string, spec: Widget['spec'] = {}): Widget {
  const [namespace, name] = key.includes('/') ? key.split('/') : [undefined, key];
  return {
    apiVersion: 'test.dev/v1',
    kind: 'Widget',
    metadata: { name: name as string, ...(namespace ? { namespace } : {}), resourceVersion, uid: `uid-${key}` },
    spec,
  };
}
