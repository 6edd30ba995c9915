import type { EventFilter, InformerEvent } from './controller.js';
import type { KubeObject } from './kube-object.js';

/**
 * Passes adds, deletes, and updates that changed `metadata.generation` (the spec, or the
 * deletionTimestamp of a custom resource); drops status-only and metadata-only updates. Use it on
 * a kind whose status the controller writes itself, so each status write does not wake it again.
 * Like controller-runtime's GenerationChangedPredicate.
 */
export const generationChanged: EventFilter<KubeObject> = (event: InformerEvent<KubeObject>) =>
  event.type !== 'update' || event.oldObject.metadata?.generation !== event.object.metadata?.generation;
