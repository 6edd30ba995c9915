import { describe, expect, test } from '@jest/globals';
import { AgentMetrics } from '../../../node-agent/agent-metrics.js';
import { Histogram } from '../../../src/metrics/histogram.js';
import { renderMetricFamilies } from '../../../src/metrics/prometheus-text.js';

describe('Histogram', () => {
  test('counts cumulatively per upper bound', () => {
    const histogram = new Histogram([0.1, 1]);
    for (const value of [0.05, 0.5, 0.7, 3]) histogram.observe(value);
    expect(histogram.sample({ op: 'x' })).toEqual({ labels: { op: 'x' }, buckets: [{ le: 0.1, count: 1 }, { le: 1, count: 3 }], sum: 4.25, count: 4 });
  });
});

describe('AgentMetrics', () => {
  test('renders prepare and teardown durations by stage and failures by reason', () => {
    const metrics = new AgentMetrics();
    metrics.succeeded('prepare', 0.12, 'host');
    metrics.succeeded('prepare', 0.03, 'ready');
    metrics.succeeded('teardown', 0.04);
    metrics.failed('prepare', 'DeviceInUseByHost');
    metrics.failed('prepare', 'DeviceInUseByHost');
    const text = renderMetricFamilies(metrics.families());
    expect(text).toContain('# TYPE nfv_agent_host_operation_duration_seconds histogram');
    expect(text).toContain('nfv_agent_host_operation_duration_seconds_count{operation="prepare",stage="host"} 1');
    expect(text).toContain('nfv_agent_host_operation_duration_seconds_bucket{operation="teardown",le="0.05"} 1');
    expect(text).toContain('nfv_agent_host_operation_failures_total{operation="prepare",reason="DeviceInUseByHost"} 2');
  });
});
