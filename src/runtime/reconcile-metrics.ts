import { Histogram } from '../metrics/histogram.js';
import type { ReconcileOutcome } from './errors.js';

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
  // Prometheus' default bounds stretched to a minute: a reconcile that talks to the API server
  // several times can take seconds.
  private readonly durations = new Histogram();
  private errors = 0;

  /** Counts one finished reconcile. */
  record(outcome: ReconcileOutcome, durationSeconds: number): void {
    this.totals[outcome]++;
    if (outcome === 'error' || outcome === 'stalled') this.errors++;
    this.durations.observe(durationSeconds);
  }

  /** The counters now; queue figures are filled in by the caller. */
  snapshot(
    controller: string,
    queue: Pick<ControllerMetricsSnapshot, 'queueDepth' | 'queueDelayed' | 'activeWorkers'>,
  ): ControllerMetricsSnapshot {
    const { buckets, sum, count } = this.durations.sample();
    return {
      controller,
      reconcileTotal: { ...this.totals },
      reconcileErrorsTotal: this.errors,
      reconcileDurationSeconds: { buckets: [...buckets], sum, count },
      ...queue,
    };
  }
}
