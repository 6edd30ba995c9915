/**
 * The Prometheus text exposition format, version 0.0.4, for the few metrics the operator serves.
 * Metrics are collected when scraped: collectors read live counters and caches and return metric
 * families, which {@link renderMetricFamilies} turns into text.
 *
 * Format: https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
 */

/** `Content-Type` of a text exposition. */
export const PROMETHEUS_TEXT_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Label names and values of one series. */
export type Labels = Readonly<Record<string, string>>;

/** One series of a counter or gauge. */
export interface Sample {
  /** Default: none. */
  labels?: Labels;
  value: number;
}

/** One series of a histogram. */
export interface HistogramSample {
  /** Default: none. Must not hold `le`. */
  labels?: Labels;
  /**
   * Cumulative counts: each bucket counts every observation `<= le`. Upper bounds strictly
   * increasing; the `+Inf` bucket is added from `count` and must not be listed.
   */
  buckets: readonly { le: number; count: number }[];
  /** Sum of every observation. */
  sum: number;
  /** Number of observations. */
  count: number;
}

/** Fields every metric family has. */
interface FamilyBase {
  /** `[a-zA-Z_:][a-zA-Z0-9_:]*`; counters end in `_total`, units are spelled out (`_seconds`, `_bytes`). */
  name: string;
  /** One line saying what is measured. */
  help: string;
}

/** A metric name with its HELP, TYPE and series. */
export type MetricFamily =
  | (FamilyBase & { type: 'counter' | 'gauge'; samples: readonly Sample[] })
  | (FamilyBase & { type: 'histogram'; samples: readonly HistogramSample[] });

/** Returns metric families when scraped; may be async (reads a cache, asks a process). */
export type MetricsCollector = () => MetricFamily[] | Promise<MetricFamily[]>;

const metricNamePattern = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const labelNamePattern = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** `\` and newline escaped, as HELP text wants. */
export function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** `\`, `"` and newline escaped, as a quoted label value wants. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** A sample value as Go's ParseFloat reads it: `+Inf`, `-Inf` and `NaN` spelled the Prometheus way. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/**
 * Renders families in the order given, each as `# HELP`, `# TYPE` and its series; a family
 * without series keeps its HELP and TYPE lines, so the metric is documented before it has data.
 *
 * @throws RangeError on an invalid metric or label name, a family name used twice, the same
 *   label set twice in one family, or histogram buckets that are not cumulative. The message
 *   names the metric.
 */
export function renderMetricFamilies(families: readonly MetricFamily[]): string {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const family of families) {
    if (!metricNamePattern.test(family.name)) throw new RangeError(`metric name "${family.name}" does not match ${metricNamePattern.source}`);
    if (seen.has(family.name)) throw new RangeError(`metric ${family.name} is collected twice; merge its series into one family`);
    seen.add(family.name);
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${family.type}`);
    const series = new Set<string>();
    const checkUnique = (labels: Labels | undefined) => {
      const key = JSON.stringify(Object.entries(labels ?? {}).sort(([a], [b]) => a.localeCompare(b)));
      if (series.has(key)) throw new RangeError(`metric ${family.name} has two series with labels ${formatLabels(family.name, labels ?? {})}`);
      series.add(key);
    };
    if (family.type === 'histogram') {
      for (const sample of family.samples) {
        checkUnique(sample.labels);
        lines.push(...histogramLines(family.name, sample));
      }
    } else {
      for (const sample of family.samples) {
        checkUnique(sample.labels);
        lines.push(`${family.name}${formatLabels(family.name, sample.labels ?? {})} ${formatValue(sample.value)}`);
      }
    }
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}

function histogramLines(name: string, sample: HistogramSample): string[] {
  const labels = sample.labels ?? {};
  if ('le' in labels) throw new RangeError(`metric ${name}: a histogram series must not carry the label "le"`);
  const lines: string[] = [];
  let previous: { le: number; count: number } | undefined;
  for (const bucket of sample.buckets) {
    if (!Number.isFinite(bucket.le)) throw new RangeError(`metric ${name}: bucket bound ${bucket.le} is not finite; +Inf is added from count`);
    if (previous && bucket.le <= previous.le) throw new RangeError(`metric ${name}: bucket bounds must increase, got ${previous.le} then ${bucket.le}`);
    if (previous && bucket.count < previous.count) {
      throw new RangeError(`metric ${name}: bucket counts must be cumulative, got ${previous.count} at le=${previous.le} then ${bucket.count} at le=${bucket.le}`);
    }
    lines.push(`${name}_bucket${formatLabels(name, { ...labels, le: formatValue(bucket.le) })} ${formatValue(bucket.count)}`);
    previous = bucket;
  }
  if (previous && sample.count < previous.count) {
    throw new RangeError(`metric ${name}: count ${sample.count} is below the last bucket's ${previous.count}`);
  }
  lines.push(
    `${name}_bucket${formatLabels(name, { ...labels, le: '+Inf' })} ${formatValue(sample.count)}`,
    `${name}_sum${formatLabels(name, labels)} ${formatValue(sample.sum)}`,
    `${name}_count${formatLabels(name, labels)} ${formatValue(sample.count)}`,
  );
  return lines;
}

function formatLabels(metric: string, labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return '';
  for (const [label] of entries) {
    if (!labelNamePattern.test(label) || label.startsWith('__')) {
      throw new RangeError(`metric ${metric}: label name "${label}" must match ${labelNamePattern.source} and not start with "__"`);
    }
  }
  return `{${entries.map(([label, value]) => `${label}="${escapeLabelValue(value)}"`).join(',')}}`;
}

/**
 * Collectors to call on every scrape, in registration order. Collecting at scrape time means
 * nothing is counted twice and nothing goes stale: the numbers are read from where they live.
 */
export class MetricsRegistry {
  private readonly collectors: MetricsCollector[] = [];

  /** Adds a collector; returns `this` for chaining. */
  register(collector: MetricsCollector): this {
    this.collectors.push(collector);
    return this;
  }

  /** Every collector's families, in registration order. */
  async collect(): Promise<MetricFamily[]> {
    const families: MetricFamily[] = [];
    for (const collector of this.collectors) families.push(...(await collector()));
    return families;
  }

  /** The text exposition of everything collected now. */
  async render(): Promise<string> {
    return renderMetricFamilies(await this.collect());
  }
}
