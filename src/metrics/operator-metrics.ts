import type { NfvNode } from '../api/nfv-node.js';
import type { ReconcileOutcome } from '../runtime/errors.js';
import type { ControllerMetricsSnapshot } from '../runtime/reconcile-metrics.js';
import { nodeUsage } from './node-usage.js';
import type { MetricFamily, MetricsCollector, Sample } from './prometheus-text.js';

/** Where the operator's metrics are read from at scrape time. */
export interface OperatorMetricsSources {
  /** Counters of every controller, e.g. `() => manager.metrics()`. */
  controllers(): ControllerMetricsSnapshot[];
  /** NfvNode objects with their inventory and ledger, e.g. the NfvNode informer's `list`. */
  nfvNodes(): NfvNode[];
  /** Whether this replica leads, i.e. runs the controllers. */
  isLeader(): boolean;
}

/** `result` label of `nfv_operator_reconcile_total`, in Prometheus' snake_case. */
const resultLabel: Record<ReconcileOutcome, string> = {
  success: 'success',
  requeueAfter: 'requeue_after',
  waiting: 'waiting',
  stalled: 'stalled',
  error: 'error',
};

/**
 * The operator's metric families, read from their sources now:
 *
 * - `nfv_operator_reconcile_total{controller,result}`: reconciles by outcome
 * - `nfv_operator_reconcile_errors_total{controller}`: reconciles that failed (error or stalled)
 * - `nfv_operator_reconcile_duration_seconds{controller}`: reconcile duration histogram
 * - `nfv_operator_workqueue_depth{controller}`: keys waiting for a worker
 * - `nfv_operator_workqueue_delayed_keys{controller}`: keys waiting for a retry or requeue delay
 * - `nfv_operator_active_workers{controller}`: reconciles running now
 * - `nfv_operator_node_cpus{node,state}`: isolated CPUs `used` by the ledger or `free`
 * - `nfv_operator_node_hugepages_bytes{node,pool,page_size,numa_node,state}`: pool pages `used`
 *   by the ledger or `free`, in bytes
 * - `nfv_operator_node_devices{node,state}`: NICs `used` by the ledger or `free` for a new VNF
 * - `nfv_operator_leader`: 1 while this replica leads, else 0
 *
 * Node figures come from the NfvNode cache, which only the leader fills: a standby reports none.
 */
export function operatorMetricFamilies(sources: OperatorMetricsSources): MetricFamily[] {
  const controllers = sources.controllers();
  const perController = (value: (snapshot: ControllerMetricsSnapshot) => number): Sample[] =>
    controllers.map((snapshot) => ({ labels: { controller: snapshot.controller }, value: value(snapshot) }));

  const usages = sources
    .nfvNodes()
    .map(nodeUsage)
    .sort((a, b) => a.node.localeCompare(b.node));
  const byState = (node: string, used: number, free: number): Sample[] => [
    { labels: { node, state: 'used' }, value: used },
    { labels: { node, state: 'free' }, value: free },
  ];

  return [
    {
      name: 'nfv_operator_reconcile_total',
      help: 'Reconciles by controller and result (success, requeue_after, waiting, stalled, error).',
      type: 'counter',
      samples: controllers.flatMap((snapshot) =>
        (Object.keys(resultLabel) as ReconcileOutcome[]).map((outcome) => ({
          labels: { controller: snapshot.controller, result: resultLabel[outcome] },
          value: snapshot.reconcileTotal[outcome],
        })),
      ),
    },
    {
      name: 'nfv_operator_reconcile_errors_total',
      help: 'Reconciles that failed with an error or stalled, by controller.',
      type: 'counter',
      samples: perController((snapshot) => snapshot.reconcileErrorsTotal),
    },
    {
      name: 'nfv_operator_reconcile_duration_seconds',
      help: 'Time one reconcile took, by controller.',
      type: 'histogram',
      samples: controllers.map((snapshot) => ({ labels: { controller: snapshot.controller }, ...snapshot.reconcileDurationSeconds })),
    },
    {
      name: 'nfv_operator_workqueue_depth',
      help: 'Keys waiting for a reconcile worker, by controller.',
      type: 'gauge',
      samples: perController((snapshot) => snapshot.queueDepth),
    },
    {
      name: 'nfv_operator_workqueue_delayed_keys',
      help: 'Keys waiting for a retry backoff or requeue delay to pass, by controller.',
      type: 'gauge',
      samples: perController((snapshot) => snapshot.queueDelayed),
    },
    {
      name: 'nfv_operator_active_workers',
      help: 'Reconciles running now, by controller.',
      type: 'gauge',
      samples: perController((snapshot) => snapshot.activeWorkers),
    },
    {
      name: 'nfv_operator_node_cpus',
      help: 'Isolated CPUs of an NFV node held by VNFs (state=used) or free for new ones (state=free), from the allocation ledger.',
      type: 'gauge',
      samples: usages.flatMap((usage) => byState(usage.node, usage.cpusUsed, usage.cpusFree)),
    },
    {
      name: 'nfv_operator_node_hugepages_bytes',
      help: 'Hugepage memory of a pool on one NUMA node held by VNFs (state=used) or reserved and free (state=free).',
      type: 'gauge',
      samples: usages.flatMap((usage) =>
        usage.hugepages.flatMap((pages) => {
          const labels = { node: usage.node, pool: pages.pool, page_size: pages.pageSize, numa_node: String(pages.numaNode) };
          return [
            { labels: { ...labels, state: 'used' }, value: pages.usedBytes },
            { labels: { ...labels, state: 'free' }, value: pages.freeBytes },
          ];
        }),
      ),
    },
    {
      name: 'nfv_operator_node_devices',
      help: 'NICs of an NFV node held by VNFs (state=used) or free for new ones (state=free).',
      type: 'gauge',
      samples: usages.flatMap((usage) => byState(usage.node, usage.devicesUsed, usage.devicesFree)),
    },
    {
      name: 'nfv_operator_leader',
      help: '1 while this replica holds the leader lease and runs the controllers, 0 on a standby.',
      type: 'gauge',
      samples: [{ value: sources.isLeader() ? 1 : 0 }],
    },
  ];
}

/** A collector of {@link operatorMetricFamilies} for a `MetricsRegistry`. */
export function operatorMetricsCollector(sources: OperatorMetricsSources): MetricsCollector {
  return () => operatorMetricFamilies(sources);
}
