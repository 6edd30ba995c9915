/**
 * A small controller runtime: REST client, informers, work queue, controllers, conditions,
 * server-side apply helpers, status writer, leader election and a manager.
 */
export * from './api-error.js';
export * from './apply.js';
export * from './backoff.js';
export * from './clock.js';
export * from './conditions.js';
export * from './controller.js';
export * from './errors.js';
export * from './event-filters.js';
export * from './event-recorder.js';
export * from './fake-clock.js';
export * from './informer.js';
export * from './json-equal.js';
export * from './json-lines.js';
export * from './kube-client.js';
export * from './kube-object.js';
export * from './leader-election.js';
export * from './list-watch-source.js';
export * from './manager.js';
export * from './owner-references.js';
export * from './reconcile-metrics.js';
export * from './status-writer.js';
export * from './work-queue.js';
