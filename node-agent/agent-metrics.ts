import { Histogram } from '../src/metrics/histogram.js';
import type { MetricFamily } from '../src/metrics/prometheus-text.js';

/** What the agent measures of its own work on the host. */
export type HostOperation = 'prepare' | 'teardown';

/**
 * Durations of successful prepares (by stage: `host` before the pod exists, `ready` with cgroup
 * limits and the ready signal) and teardowns, and failures by operation and condition reason.
 */
export class AgentMetrics {
  private readonly durations = new Map<string, { labels: Record<string, string>; histogram: Histogram }>();
  private readonly failures = new Map<string, { labels: Record<string, string>; value: number }>();

  /** A successful operation that took `seconds`. */
  succeeded(operation: HostOperation, seconds: number, stage?: 'host' | 'ready'): void {
    const labels = { operation, ...(stage ? { stage } : {}) };
    const key = JSON.stringify(labels);
    const series = this.durations.get(key) ?? { labels, histogram: new Histogram() };
    series.histogram.observe(seconds);
    this.durations.set(key, series);
  }

  /** A failed operation, by the CamelCase reason reported in NodePrepared. */
  failed(operation: HostOperation, reason: string): void {
    const labels = { operation, reason };
    const key = JSON.stringify(labels);
    const series = this.failures.get(key) ?? { labels, value: 0 };
    series.value++;
    this.failures.set(key, series);
  }

  /** The families for a {@link MetricsRegistry} collector. */
  families(): MetricFamily[] {
    return [
      {
        name: 'nfv_agent_host_operation_duration_seconds',
        help: 'Duration of successful VNF host preparations and teardowns.',
        type: 'histogram',
        samples: [...this.durations.values()].map((s) => s.histogram.sample(s.labels)),
      },
      {
        name: 'nfv_agent_host_operation_failures_total',
        help: 'Failed VNF host preparations and teardowns, by reason.',
        type: 'counter',
        samples: [...this.failures.values()].map((s) => ({ labels: s.labels, value: s.value })),
      },
    ];
  }
}
