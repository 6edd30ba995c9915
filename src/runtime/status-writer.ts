import type { Logger } from 'pino';
import type { KubeClient } from './kube-client.js';
import type { KubeObject, ResourceRef } from './kube-object.js';
import { jsonEqual } from './json-equal.js';

/** Options of a {@link StatusWriter}. */
export interface StatusWriterOptions {
  /** Field manager of this component, e.g. `nfv-operator` or `nfv-node-agent`. */
  fieldManager: string;
  /** Debug lines for written and skipped writes. Default: none. */
  logger?: Logger;
}

/** Options of {@link StatusWriter.write}. */
export interface WriteStatusOptions {
  /** Set `status.observedGeneration` to the object's `metadata.generation`. Default true. */
  observedGeneration?: boolean;
  /**
   * What "unchanged" means. `'all'` (default): the whole current status equals the desired one;
   * right when this manager is the only writer. `'desiredKeys'`: only the top-level fields this
   * manager sets are compared; use it when another manager writes other fields of the same status.
   */
  compare?: 'all' | 'desiredKeys';
  signal?: AbortSignal;
}

/** What {@link StatusWriter.write} did. */
export interface StatusWriteResult<S> {
  /** Whether a request was sent. */
  written: boolean;
  /** The status as applied (or as it would have been), observedGeneration included. */
  status: S;
  /** The object the server returned, when written. */
  object?: KubeObject;
}

/**
 * Writes `status` with server-side apply on the status subresource, and only when it differs from
 * the current status: an unchanged status costs no request and, more importantly, no watch event
 * that would wake every controller of the kind again.
 */
export class StatusWriter {
  private readonly fieldManager: string;
  private readonly logger?: Logger;

  constructor(
    private readonly client: Pick<KubeClient, 'apply'>,
    options: StatusWriterOptions,
  ) {
    this.fieldManager = options.fieldManager;
    this.logger = options.logger;
  }

  /**
   * Applies `status` to `current` (the object as last read, usually from an informer cache) if it
   * differs from `current.status`. The applied status is the whole intent of this field manager:
   * fields it set before and leaves out now are removed.
   */
  async write<S extends object>(
    ref: ResourceRef,
    current: KubeObject & { status?: unknown },
    status: S,
    options: WriteStatusOptions = {},
  ): Promise<StatusWriteResult<S>> {
    const desired = this.withObservedGeneration(current, status, options.observedGeneration ?? true);
    const name = current.metadata?.name;
    if (this.unchanged(current.status, desired, options.compare ?? 'all')) {
      this.logger?.debug({ name }, 'status unchanged, not written');
      return { written: false, status: desired };
    }
    const object = await this.client.apply(
      ref,
      { metadata: { name, namespace: current.metadata?.namespace }, status: desired },
      { fieldManager: this.fieldManager, force: true, subresource: 'status', signal: options.signal },
    );
    this.logger?.debug({ name }, 'status written');
    return { written: true, status: desired, object };
  }

  private withObservedGeneration<S extends object>(current: KubeObject, status: S, stamp: boolean): S {
    const generation = current.metadata?.generation;
    if (!stamp || generation === undefined) return status;
    return { ...status, observedGeneration: generation };
  }

  private unchanged(currentStatus: unknown, desired: object, compare: 'all' | 'desiredKeys'): boolean {
    if (compare === 'all') return jsonEqual(currentStatus ?? {}, desired);
    const current = (currentStatus ?? {}) as Record<string, unknown>;
    return Object.entries(desired).every(([key, value]) => jsonEqual(current[key], value));
  }
}
