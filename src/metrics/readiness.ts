import type { ReadinessCheck } from './http-server.js';

/** What {@link controllerReadiness} looks at. */
export interface ControllerReadinessSources {
  /** Whether this replica runs the controllers (leads, or has no leader election). */
  isLeading(): boolean;
  /** The informers the controllers read from. */
  informers: readonly { readonly name: string; hasSynced(): boolean }[];
}

/**
 * Readiness of an operator replica: the leader is ready once every informer has synced, since its
 * controllers decide from those caches; a standby is ready at once, waiting for the lease is its
 * job. So a Deployment with two replicas reports 2/2 Ready, and a rollout is not held up by the
 * replica that must stay a standby.
 */
export function controllerReadiness(sources: ControllerReadinessSources): ReadinessCheck {
  return () => {
    if (!sources.isLeading()) return { ready: true, message: 'standby, waiting for the leader lease' };
    const unsynced = sources.informers.filter((informer) => !informer.hasSynced()).map((informer) => informer.name);
    if (unsynced.length > 0) return { ready: false, message: `leading, waiting for informers to sync: ${unsynced.join(', ')}` };
    return { ready: true, message: `leading, ${sources.informers.length} informers synced` };
  };
}
