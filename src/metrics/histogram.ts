import type { HistogramSample, Labels } from './prometheus-text.js';

/** Upper bounds in seconds for operations that take milliseconds to a minute. Default buckets. */
export const DURATION_BUCKETS_SECONDS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** A Prometheus histogram series: cumulative bucket counts, sum and count. */
export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(private readonly bounds: readonly number[] = DURATION_BUCKETS_SECONDS) {
    this.counts = bounds.map(() => 0);
  }

  /** Records one observation. */
  observe(value: number): void {
    this.sum += value;
    this.count++;
    this.bounds.forEach((le, i) => {
      if (value <= le) this.counts[i]!++;
    });
  }

  /** The series as {@link HistogramSample}, with `labels`. */
  sample(labels?: Labels): HistogramSample {
    return { ...(labels ? { labels } : {}), buckets: this.bounds.map((le, i) => ({ le, count: this.counts[i]! })), sum: this.sum, count: this.count };
  }
}
