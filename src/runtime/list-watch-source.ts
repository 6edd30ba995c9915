import type { KubeClient, ListResult, SelectorOptions, WatchEvent } from './kube-client.js';
import type { KubeObject, ResourceRef } from './kube-object.js';

/**
 * Where an {@link Informer} gets its snapshot and its changes. The default is
 * {@link KubeListWatchSource}; tests pass a scripted one.
 */
export interface ListWatchSource<T extends KubeObject> {
  /** What is listed, for logs, e.g. `pods (namespace nfv, app=vnf)`. */
  readonly description: string;
  /** A consistent snapshot of every object and the resourceVersion it was taken at. */
  list(signal: AbortSignal): Promise<ListResult<T>>;
  /**
   * Changes after `resourceVersion`. Ends when the server closes the stream or `signal` aborts;
   * throws (an `ApiError` with code 410 if `resourceVersion` is too old) when it cannot continue.
   */
  watch(resourceVersion: string, signal: AbortSignal): AsyncIterable<WatchEvent<T>>;
}

/** Options of {@link KubeListWatchSource}. */
export interface KubeListWatchOptions extends SelectorOptions {
  /** List page size. Default 500, as client-go's reflector. */
  pageSize?: number;
  /**
   * Watches are asked to end after a random time in [min, 2·min) seconds, so that many informers
   * do not all re-watch at once and a silently dead connection is replaced. Default 300.
   */
  minWatchTimeoutSeconds?: number;
  /** Uniform random source in [0, 1). Default `Math.random`. */
  random?: () => number;
}

/** A {@link ListWatchSource} backed by the API server through a {@link KubeClient}. */
export class KubeListWatchSource<T extends KubeObject> implements ListWatchSource<T> {
  readonly description: string;
  private readonly pageSize: number;
  private readonly minWatchTimeoutSeconds: number;
  private readonly random: () => number;

  constructor(
    private readonly client: Pick<KubeClient, 'list' | 'watch'>,
    private readonly resource: ResourceRef,
    private readonly options: KubeListWatchOptions = {},
  ) {
    this.pageSize = options.pageSize ?? 500;
    this.minWatchTimeoutSeconds = options.minWatchTimeoutSeconds ?? 300;
    this.random = options.random ?? Math.random;
    const filters = [
      options.namespace && `namespace ${options.namespace}`,
      options.labelSelector,
      options.fieldSelector,
    ].filter(Boolean);
    this.description = filters.length ? `${resource.plural} (${filters.join(', ')})` : resource.plural;
  }

  /** @inheritdoc */
  list(signal: AbortSignal): Promise<ListResult<T>> {
    return this.client.list<T>(this.resource, { ...this.selectors(), limit: this.pageSize, signal });
  }

  /** @inheritdoc */
  watch(resourceVersion: string, signal: AbortSignal): AsyncIterable<WatchEvent<T>> {
    const timeoutSeconds = Math.floor(this.minWatchTimeoutSeconds * (1 + this.random()));
    return this.client.watch<T>(this.resource, {
      ...this.selectors(),
      resourceVersion,
      allowWatchBookmarks: true,
      timeoutSeconds,
      signal,
    });
  }

  private selectors(): SelectorOptions {
    const { namespace, labelSelector, fieldSelector } = this.options;
    return { namespace, labelSelector, fieldSelector };
  }
}
