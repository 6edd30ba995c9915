import { describe, expect, test } from '@jest/globals';
import {
  MetricsRegistry,
  escapeHelp,
  escapeLabelValue,
  formatValue,
  renderMetricFamilies,
  type MetricFamily,
} from '../../../src/metrics/prometheus-text.js';

const histogram = (samples: Extract<MetricFamily, { type: 'histogram' }>['samples']): MetricFamily => ({
  name: 'op_duration_seconds',
  help: 'How long it took.',
  type: 'histogram',
  samples,
});

describe('renderMetricFamilies', () => {
  test.each<{ name: string; families: MetricFamily[]; text: string }>([
    { name: 'nothing', families: [], text: '' },
    {
      name: 'a counter without labels',
      families: [{ name: 'jobs_total', help: 'Jobs run.', type: 'counter', samples: [{ value: 3 }] }],
      text: '# HELP jobs_total Jobs run.\n# TYPE jobs_total counter\njobs_total 3\n',
    },
    {
      name: 'a gauge with labels, in the order given',
      families: [
        {
          name: 'node_cpus',
          help: 'CPUs.',
          type: 'gauge',
          samples: [
            { labels: { node: 'n1', state: 'used' }, value: 2 },
            { labels: { node: 'n1', state: 'free' }, value: 10 },
          ],
        },
      ],
      text: '# HELP node_cpus CPUs.\n# TYPE node_cpus gauge\nnode_cpus{node="n1",state="used"} 2\nnode_cpus{node="n1",state="free"} 10\n',
    },
    {
      name: 'a family without series keeps HELP and TYPE',
      families: [{ name: 'node_cpus', help: 'CPUs.', type: 'gauge', samples: [] }],
      text: '# HELP node_cpus CPUs.\n# TYPE node_cpus gauge\n',
    },
    {
      name: 'label values and HELP escaped',
      families: [{ name: 'x', help: 'back\\slash\nnewline "quotes" stay', type: 'gauge', samples: [{ labels: { path: 'C:\\dir\n"q"' }, value: 1 }] }],
      text: '# HELP x back\\\\slash\\nnewline "quotes" stay\n# TYPE x gauge\nx{path="C:\\\\dir\\n\\"q\\""} 1\n',
    },
    {
      name: 'special and fractional values',
      families: [
        {
          name: 'v',
          help: 'Values.',
          type: 'gauge',
          samples: [
            { labels: { k: 'inf' }, value: Infinity },
            { labels: { k: '-inf' }, value: -Infinity },
            { labels: { k: 'nan' }, value: NaN },
            { labels: { k: 'frac' }, value: 0.25 },
            { labels: { k: 'big' }, value: 2 ** 40 },
          ],
        },
      ],
      text:
        '# HELP v Values.\n# TYPE v gauge\nv{k="inf"} +Inf\nv{k="-inf"} -Inf\nv{k="nan"} NaN\nv{k="frac"} 0.25\nv{k="big"} 1099511627776\n',
    },
    {
      name: 'a histogram: cumulative buckets, +Inf from count, sum and count',
      families: [
        histogram([
          {
            labels: { controller: 'vnf' },
            buckets: [
              { le: 0.005, count: 1 },
              { le: 0.5, count: 3 },
              { le: 1, count: 3 },
            ],
            sum: 1.75,
            count: 4,
          },
        ]),
      ],
      text: [
        '# HELP op_duration_seconds How long it took.',
        '# TYPE op_duration_seconds histogram',
        'op_duration_seconds_bucket{controller="vnf",le="0.005"} 1',
        'op_duration_seconds_bucket{controller="vnf",le="0.5"} 3',
        'op_duration_seconds_bucket{controller="vnf",le="1"} 3',
        'op_duration_seconds_bucket{controller="vnf",le="+Inf"} 4',
        'op_duration_seconds_sum{controller="vnf"} 1.75',
        'op_duration_seconds_count{controller="vnf"} 4',
        '',
      ].join('\n'),
    },
    {
      name: 'a histogram without labels or buckets',
      families: [histogram([{ buckets: [], sum: 0, count: 0 }])],
      text: [
        '# HELP op_duration_seconds How long it took.',
        '# TYPE op_duration_seconds histogram',
        'op_duration_seconds_bucket{le="+Inf"} 0',
        'op_duration_seconds_sum 0',
        'op_duration_seconds_count 0',
        '',
      ].join('\n'),
    },
  ])('$name', ({ families, text }) => {
    expect(renderMetricFamilies(families)).toBe(text);
  });

  test.each<{ name: string; families: MetricFamily[]; error: RegExp }>([
    { name: 'metric name with a dash', families: [{ name: 'bad-name', help: '', type: 'gauge', samples: [] }], error: /metric name "bad-name"/ },
    { name: 'metric name starting with a digit', families: [{ name: '1x', help: '', type: 'gauge', samples: [] }], error: /metric name "1x"/ },
    {
      name: 'label name with a dot',
      families: [{ name: 'x', help: '', type: 'gauge', samples: [{ labels: { 'a.b': '1' }, value: 1 }] }],
      error: /metric x: label name "a.b"/,
    },
    {
      name: 'reserved label name',
      families: [{ name: 'x', help: '', type: 'gauge', samples: [{ labels: { __name__: 'y' }, value: 1 }] }],
      error: /label name "__name__"/,
    },
    {
      name: 'the same family twice',
      families: [
        { name: 'x', help: '', type: 'gauge', samples: [] },
        { name: 'x', help: '', type: 'gauge', samples: [] },
      ],
      error: /metric x is collected twice/,
    },
    {
      name: 'the same label set twice, in any key order',
      families: [
        {
          name: 'x',
          help: '',
          type: 'gauge',
          samples: [
            { labels: { a: '1', b: '2' }, value: 1 },
            { labels: { b: '2', a: '1' }, value: 2 },
          ],
        },
      ],
      error: /metric x has two series with labels \{b="2",a="1"\}/,
    },
    {
      name: 'histogram counts that are not cumulative',
      families: [histogram([{ buckets: [{ le: 1, count: 3 }, { le: 2, count: 1 }], sum: 0, count: 3 }])],
      error: /bucket counts must be cumulative, got 3 at le=1 then 1 at le=2/,
    },
    {
      name: 'histogram bounds not increasing',
      families: [histogram([{ buckets: [{ le: 2, count: 1 }, { le: 1, count: 1 }], sum: 0, count: 1 }])],
      error: /bucket bounds must increase, got 2 then 1/,
    },
    {
      name: 'histogram with an explicit +Inf bucket',
      families: [histogram([{ buckets: [{ le: Infinity, count: 1 }], sum: 0, count: 1 }])],
      error: /bucket bound Infinity is not finite/,
    },
    {
      name: 'histogram count below its last bucket',
      families: [histogram([{ buckets: [{ le: 1, count: 5 }], sum: 0, count: 4 }])],
      error: /count 4 is below the last bucket's 5/,
    },
    {
      name: 'histogram series labelled le',
      families: [histogram([{ labels: { le: '1' }, buckets: [], sum: 0, count: 0 }])],
      error: /must not carry the label "le"/,
    },
  ])('rejects $name', ({ families, error }) => {
    expect(() => renderMetricFamilies(families)).toThrow(error);
  });
});

describe('escaping and values', () => {
  test.each([
    ['plain', 'plain'],
    ['a\\b', 'a\\\\b'],
    ['a"b', 'a\\"b'],
    ['a\nb', 'a\\nb'],
    ['\\"\n', '\\\\\\"\\n'],
  ])('label value %j → %j', (value, escaped) => {
    expect(escapeLabelValue(value)).toBe(escaped);
  });

  test('HELP keeps quotes and escapes backslash and newline', () => {
    expect(escapeHelp('say "hi"\\\n')).toBe('say "hi"\\\\\\n');
  });

  test.each<[number, string]>([
    [0, '0'],
    [-1.5, '-1.5'],
    [1e-7, '1e-7'],
    [Infinity, '+Inf'],
    [-Infinity, '-Inf'],
    [NaN, 'NaN'],
  ])('value %p → %s', (value, text) => {
    expect(formatValue(value)).toBe(text);
  });
});

describe('MetricsRegistry', () => {
  test('collects from every collector at render time, in registration order, async ones included', async () => {
    let scrapes = 0;
    const registry = new MetricsRegistry()
      .register(() => [{ name: 'scrapes_total', help: 'Scrapes.', type: 'counter', samples: [{ value: ++scrapes }] }])
      .register(async () => [{ name: 'up', help: 'Up.', type: 'gauge', samples: [{ value: 1 }] }]);
    expect(await registry.render()).toBe('# HELP scrapes_total Scrapes.\n# TYPE scrapes_total counter\nscrapes_total 1\n# HELP up Up.\n# TYPE up gauge\nup 1\n');
    expect(await registry.render()).toContain('scrapes_total 2\n');
  });

  test('two collectors of one metric name fail the render with the name', async () => {
    const family: MetricFamily = { name: 'up', help: 'Up.', type: 'gauge', samples: [{ value: 1 }] };
    const registry = new MetricsRegistry().register(() => [family]).register(() => [family]);
    await expect(registry.render()).rejects.toThrow(/metric up is collected twice/);
  });
});
