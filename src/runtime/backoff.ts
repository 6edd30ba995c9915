/** Exponential backoff settings. */
export interface BackoffOptions {
  /** Delay before the first retry, in milliseconds. */
  baseMs: number;
  /** Upper bound of any delay, in milliseconds. */
  maxMs: number;
  /**
   * Fraction of the delay taken off at random, in [0, 1). `0.2` gives delays in [0.8·d, d].
   * Jitter spreads retries of many keys or replicas so they do not hit the API server in lockstep.
   */
  jitter: number;
}

/**
 * Delay before retry number `attempt` (0 for the first retry): `min(maxMs, baseMs·2^attempt)`,
 * reduced by up to `jitter` of itself. It never exceeds `maxMs`, and with `jitter` below 0.5 the
 * range of attempt n+1 lies wholly above the range of attempt n until the cap is reached.
 *
 * @param random - uniform source in [0, 1); inject it for deterministic tests.
 */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  // Cap the exponent: 2^1024 is Infinity and the cap makes larger exponents pointless anyway.
  const exponential = options.baseMs * 2 ** Math.min(Math.max(attempt, 0), 62);
  const capped = Math.min(options.maxMs, exponential);
  return Math.round(capped * (1 - options.jitter * random()));
}
