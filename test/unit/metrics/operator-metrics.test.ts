import { describe, expect, test } from '@jest/globals';
import type { NfvNode } from '../../../src/api/nfv-node.js';
import { operatorMetricFamilies, type OperatorMetricsSources } from '../../../src/metrics/operator-metrics.js';
import { renderMetricFamilies } from '../../../src/metrics/prometheus-text.js';
import { ReconcileMetrics } from '../../../src/runtime/reconcile-metrics.js';
import { buildInventory } from '../../cluster/nfv-inventory.js';
import { allocation } from '../../fixtures/placement.js';

function vnfControllerSnapshot() {
  const counters = new ReconcileMetrics();
  counters.record('success', 0.003);
  counters.record('success', 0.2);
  counters.record('waiting', 0.04);
  counters.record('error', 2);
  counters.record('stalled', 0.001);
  return counters.snapshot('vnf', { queueDepth: 3, queueDelayed: 1, activeWorkers: 2 });
}

const nfvNode = (name: string, status: NfvNode['status']): NfvNode => ({ apiVersion: 'nfv.dev/v1alpha1', kind: 'NfvNode', metadata: { name }, spec: undefined, status });

function sources(overrides: Partial<OperatorMetricsSources> = {}): OperatorMetricsSources {
  return {
    controllers: () => [vnfControllerSnapshot(), new ReconcileMetrics().snapshot('hugepagepool', { queueDepth: 0, queueDelayed: 0, activeWorkers: 0 })],
    nfvNodes: () => [
      nfvNode('n2', { inventory: buildInventory({ numaNodes: 1, coresPerNuma: 2, threadsPerCore: 1 }) }),
      nfvNode('n1', {
        inventory: buildInventory({ numaNodes: 1, coresPerNuma: 4, threadsPerCore: 2 }),
        hugepagePools: [{ pool: 'gold', pageSize: '1Gi', numaNode: 0, requested: 4, allocated: 4 }],
        allocations: [allocation('a', 0, '1,5', 1, [{ pciAddress: '0000:18:00.0', iommuGroup: 20, driver: 'vfio-pci' }])],
      }),
    ],
    isLeader: () => true,
    ...overrides,
  };
}

/** The sample lines of one metric, without HELP and TYPE. */
function seriesOf(text: string, metric: string): string[] {
  return text.split('\n').filter((line) => line.startsWith(`${metric}{`) || line.startsWith(`${metric} `));
}

describe('operatorMetricFamilies', () => {
  const text = renderMetricFamilies(operatorMetricFamilies(sources()));

  test('every family is named nfv_operator_* and documented', () => {
    const families = operatorMetricFamilies(sources());
    expect(families.map((f) => [f.name, f.type])).toEqual([
      ['nfv_operator_reconcile_total', 'counter'],
      ['nfv_operator_reconcile_errors_total', 'counter'],
      ['nfv_operator_reconcile_duration_seconds', 'histogram'],
      ['nfv_operator_workqueue_depth', 'gauge'],
      ['nfv_operator_workqueue_delayed_keys', 'gauge'],
      ['nfv_operator_active_workers', 'gauge'],
      ['nfv_operator_node_cpus', 'gauge'],
      ['nfv_operator_node_hugepages_bytes', 'gauge'],
      ['nfv_operator_node_devices', 'gauge'],
      ['nfv_operator_leader', 'gauge'],
    ]);
    for (const family of families) expect(family.help).toMatch(/^[A-Z1].+\.$/);
  });

  test('reconcile counters by controller and result, errors and stalls together', () => {
    expect(seriesOf(text, 'nfv_operator_reconcile_total').filter((line) => line.includes('controller="vnf"'))).toEqual([
      'nfv_operator_reconcile_total{controller="vnf",result="success"} 2',
      'nfv_operator_reconcile_total{controller="vnf",result="requeue_after"} 0',
      'nfv_operator_reconcile_total{controller="vnf",result="waiting"} 1',
      'nfv_operator_reconcile_total{controller="vnf",result="stalled"} 1',
      'nfv_operator_reconcile_total{controller="vnf",result="error"} 1',
    ]);
    expect(seriesOf(text, 'nfv_operator_reconcile_errors_total')).toEqual([
      'nfv_operator_reconcile_errors_total{controller="vnf"} 2',
      'nfv_operator_reconcile_errors_total{controller="hugepagepool"} 0',
    ]);
  });

  test('the duration histogram is cumulative and ends at +Inf with the count', () => {
    const buckets = text.split('\n').filter((line) => line.startsWith('nfv_operator_reconcile_duration_seconds_bucket{controller="vnf"'));
    expect(buckets[0]).toBe('nfv_operator_reconcile_duration_seconds_bucket{controller="vnf",le="0.005"} 2');
    expect(buckets).toContain('nfv_operator_reconcile_duration_seconds_bucket{controller="vnf",le="0.05"} 3');
    expect(buckets).toContain('nfv_operator_reconcile_duration_seconds_bucket{controller="vnf",le="0.25"} 4');
    expect(buckets).toContain('nfv_operator_reconcile_duration_seconds_bucket{controller="vnf",le="2.5"} 5');
    expect(buckets.at(-1)).toBe('nfv_operator_reconcile_duration_seconds_bucket{controller="vnf",le="+Inf"} 5');
    const sum = /^nfv_operator_reconcile_duration_seconds_sum\{controller="vnf"\} (\S+)$/m.exec(text)?.[1];
    expect(Number(sum)).toBeCloseTo(2.244, 9);
    expect(text).toContain('nfv_operator_reconcile_duration_seconds_count{controller="vnf"} 5\n');
  });

  test('work queue gauges', () => {
    expect(text).toContain('nfv_operator_workqueue_depth{controller="vnf"} 3\n');
    expect(text).toContain('nfv_operator_workqueue_delayed_keys{controller="vnf"} 1\n');
    expect(text).toContain('nfv_operator_active_workers{controller="vnf"} 2\n');
  });

  test('node allocations from the ledger, nodes sorted by name', () => {
    expect(seriesOf(text, 'nfv_operator_node_cpus')).toEqual([
      'nfv_operator_node_cpus{node="n1",state="used"} 2',
      'nfv_operator_node_cpus{node="n1",state="free"} 4',
      'nfv_operator_node_cpus{node="n2",state="used"} 0',
      'nfv_operator_node_cpus{node="n2",state="free"} 1',
    ]);
    expect(seriesOf(text, 'nfv_operator_node_hugepages_bytes')).toEqual([
      `nfv_operator_node_hugepages_bytes{node="n1",pool="gold",page_size="1Gi",numa_node="0",state="used"} ${2 ** 30}`,
      `nfv_operator_node_hugepages_bytes{node="n1",pool="gold",page_size="1Gi",numa_node="0",state="free"} ${3 * 2 ** 30}`,
    ]);
    expect(seriesOf(text, 'nfv_operator_node_devices')).toEqual([
      'nfv_operator_node_devices{node="n1",state="used"} 1',
      'nfv_operator_node_devices{node="n1",state="free"} 1',
      'nfv_operator_node_devices{node="n2",state="used"} 0',
      'nfv_operator_node_devices{node="n2",state="free"} 2',
    ]);
  });

  test.each([
    [true, 1],
    [false, 0],
  ])('leader %p → nfv_operator_leader %p', (leader, value) => {
    const rendered = renderMetricFamilies(operatorMetricFamilies(sources({ isLeader: () => leader })));
    expect(seriesOf(rendered, 'nfv_operator_leader')).toEqual([`nfv_operator_leader ${value}`]);
  });

  test('a standby (no controllers run, empty cache) still renders every family', () => {
    const rendered = renderMetricFamilies(operatorMetricFamilies(sources({ controllers: () => [], nfvNodes: () => [], isLeader: () => false })));
    expect(rendered.match(/^# TYPE /gm)).toHaveLength(10);
    expect(rendered.split('\n').filter((line) => line && !line.startsWith('#'))).toEqual(['nfv_operator_leader 0']);
  });
});
