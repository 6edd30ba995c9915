import type { Logger } from 'pino';
import type { Clock } from './clock.js';
import { realClock } from './clock.js';
import type { KubeClient } from './kube-client.js';
import { coreResources, type KubeObject } from './kube-object.js';

/** An Event about an object: Normal for progress, Warning for what needs attention. */
export interface ObjectEvent {
  type: 'Normal' | 'Warning';
  /** CamelCase. */
  reason: string;
  message: string;
}

/** Options of an {@link EventRecorder}. */
export interface EventRecorderOptions {
  /** `source.component` and `reportingComponent`, e.g. `nfv-operator`. */
  component: string;
  /** `reportingInstance`, e.g. the pod name. Default: the component. */
  instance?: string;
  logger: Logger;
  /** Default: {@link realClock}. */
  clock?: Clock;
}

// The API server caps messages at 1 KiB.
const MAX_MESSAGE = 1024;

/**
 * Records core/v1 Events on objects, as `kubectl describe` shows them. Best effort: an Event
 * that cannot be written is logged and dropped, never failing the reconcile that produced it.
 */
export class EventRecorder {
  private readonly clock: Clock;

  constructor(
    private readonly client: Pick<KubeClient, 'create'>,
    private readonly options: EventRecorderOptions,
  ) {
    this.clock = options.clock ?? realClock;
  }

  /** Writes one Event about `object`. */
  async record(object: KubeObject, event: ObjectEvent, signal?: AbortSignal): Promise<void> {
    const meta = object.metadata ?? {};
    const now = new Date(this.clock.now()).toISOString();
    try {
      await this.client.create(
        coreResources.events,
        {
          metadata: { generateName: `${meta.name}.`, namespace: meta.namespace ?? 'default' },
          involvedObject: {
            apiVersion: object.apiVersion,
            kind: object.kind,
            name: meta.name,
            namespace: meta.namespace,
            uid: meta.uid,
            resourceVersion: meta.resourceVersion,
          },
          type: event.type,
          reason: event.reason,
          message: event.message.slice(0, MAX_MESSAGE),
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
          source: { component: this.options.component },
          reportingComponent: this.options.component,
          reportingInstance: this.options.instance ?? this.options.component,
        } as KubeObject,
        { signal },
      );
    } catch (error) {
      this.options.logger.warn({ err: error, reason: event.reason, object: meta.name }, 'could not record event');
    }
  }
}
