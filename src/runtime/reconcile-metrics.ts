import type { ReconcileOutcome } from './errors.js';

/**
 * Upper bounds (seconds) of the reconcile duration histogram: Prometheus' defaults stretched to a
 * minute, since a reconcile that talks to the API server several times can take seconds.
 */
export const reconcileDurationBuckets: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Counters of one controller, plain numbers for a metrics exporter to read. */
export interface ControllerMetricsSnapshot {
  controller: string;
  /** Reconciles by outcome (controller-runtime's `controller_runtime_reconcile_total{result}`). */
  reconcileTotal: Record<ReconcileOutcome, number>;
  /** Reconciles that threw anything but a WaitingError. */
  reconcileErrorsTotal: number;
  /** Reconcile duration histogram: cumulative counts per upper bound (`le`), as Prometheus wants. */
  reconcileDurationSeconds: { buckets: { le: number; count: number }[]; sum: number; count: number };
  /** Keys waiting for a worker. */
  queueDepth: number;
  /** Keys waiting for a retry or requeue delay. */
  queueDelayed: number;
  /** Reconciles running now. */
  activeWorkers: number;
}

/** Live counters behind {@link ControllerMetricsSnapshot}. */
export class ReconcileMetrics {
  private readonly totals: Record<ReconcileOutcome, number> = { success: 0, requeueAfter: 0, waiting: 0, stalled: 0, error: 0 };
  private readonly bucketCounts = reconcileDurationBuckets.map(() => 0);
  private durationSum = 0;
  private durationCount = 0;
  private errors = 0;

  /** Counts one finished reconcile. */
  record(outcome: ReconcileOutcome, durationSeconds: number): void {
    this.totals[outcome]++;
    if (outcome === 'error' || outcome === 'stalled') this.errors++;
    this.durationSum += durationSeconds;
    this.durationCount++;
    const bucket = reconcileDurationBuckets.findIndex((le) => durationSeconds <= le);
    if (bucket >= 0) this.bucketCounts[bucket] = (this.bucketCounts[bucket] ?? 0) + 1;
  }

  /** The counters now; queue figures are filled in by the caller. */
  snapshot(
    controller: string,
    queue: Pick<ControllerMetricsSnapshot, 'queueDepth' | 'queueDelayed' | 'activeWorkers'>,
  ): ControllerMetricsSnapshot {
    let cumulative = 0;
    const buckets = reconcileDurationBuckets.map((le, i) => {
      cumulative += this.bucketCounts[i] ?? 0;
      return { le, count: cumulative };
    });
    return {
      controller,
      reconcileTotal: { ...this.totals },
      reconcileErrorsTotal: this.errors,
      reconcileDurationSeconds: { buckets, sum: this.durationSum, count: this.durationCount },
      ...queue,
    };
  }
}
