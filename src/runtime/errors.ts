/** A CamelCase reason as Kubernetes conditions and events use: `HugepagesUnavailable`, `Ready`. */
const camelCase = /^[A-Z][A-Za-z0-9]*$/;

/** Whether `reason` is CamelCase (starts upper-case, letters and digits only). */
export function isCamelCaseReason(reason: string): boolean {
  return camelCase.test(reason);
}

function requireCamelCase(reason: string): void {
  if (!isCamelCaseReason(reason)) throw new TypeError(`reason must be CamelCase, got "${reason}"`);
}

/**
 * A terminal failure: retrying cannot help until the object changes (an impossible spec, a
 * reference to something that must be created by a human). The controller does not requeue; the
 * next change to a watched object triggers the next reconcile. Set the Stalled condition from it.
 */
export class StalledError extends Error {
  override readonly name = 'StalledError';
  /** CamelCase reason for the Stalled/Ready condition. */
  readonly reason: string;

  /** @throws TypeError if `reason` is not CamelCase. */
  constructor(reason: string, message: string, options?: ErrorOptions) {
    super(message, options);
    requireCamelCase(reason);
    this.reason = reason;
  }
}

/**
 * An expected wait: something is in progress elsewhere (a pod starting, a node agent preparing
 * hugepages). Not an error condition; the controller checks again after `requeueAfterMs` without
 * backoff.
 */
export class WaitingError extends Error {
  override readonly name = 'WaitingError';
  /** CamelCase reason for the Reconciling/Ready condition. */
  readonly reason: string;
  /** When to look again, in ms. */
  readonly requeueAfterMs: number;

  /** @throws TypeError if `reason` is not CamelCase or `requeueAfterMs` is not a non-negative number. */
  constructor(reason: string, message: string, requeueAfterMs: number, options?: ErrorOptions) {
    super(message, options);
    requireCamelCase(reason);
    if (!Number.isFinite(requeueAfterMs) || requeueAfterMs < 0) {
      throw new TypeError(`requeueAfterMs must be a non-negative number, got ${requeueAfterMs}`);
    }
    this.reason = reason;
    this.requeueAfterMs = requeueAfterMs;
  }
}

/** What a reconcile may return on success. */
export interface ReconcileResult {
  /** Reconcile again after this many ms (polling something that has no watch). Default: only on change. */
  requeueAfterMs?: number;
}

/** How a reconcile ended, as counted in metrics. */
export type ReconcileOutcome = 'success' | 'requeueAfter' | 'waiting' | 'stalled' | 'error';

/** What the controller does with the key after a reconcile. */
export type RetryDecision =
  /** Done until something changes; the key's backoff is reset. */
  | { outcome: 'success' }
  /** Reset the backoff and reconcile again after `delayMs`. */
  | { outcome: 'requeueAfter' | 'waiting'; delayMs: number }
  /** Reset the backoff; no retry until something changes. */
  | { outcome: 'stalled'; reason: string }
  /** Retry with the key's exponential backoff. */
  | { outcome: 'error' };

/** The result of one reconcile: what it returned, or what it threw. */
export type ReconcileEnd = { ok: true; result?: ReconcileResult | void } | { ok: false; error: unknown };

/**
 * Maps a reconcile's end to a retry, controller-runtime and flux style:
 * {@link StalledError} stops retries, {@link WaitingError} and `requeueAfterMs` poll later without
 * backoff, and any other error retries with backoff.
 */
export function decideRetry(end: ReconcileEnd): RetryDecision {
  if (end.ok) {
    const after = end.result?.requeueAfterMs;
    return after !== undefined && after > 0 ? { outcome: 'requeueAfter', delayMs: after } : { outcome: 'success' };
  }
  if (end.error instanceof StalledError) return { outcome: 'stalled', reason: end.error.reason };
  if (end.error instanceof WaitingError) return { outcome: 'waiting', delayMs: end.error.requeueAfterMs };
  return { outcome: 'error' };
}
