/**
 * Polling for a condition, for the places where there is nothing to watch (a process coming up)
 * or where a watch would cost more code than the test it serves.
 */

/** How to poll. */
export interface WaitOptions {
  /** Give up after this long; default 60 s. */
  timeoutMs?: number;
  /** Pause between probes; default 100 ms. */
  intervalMs?: number;
  /** Called before every probe; throw from it to stop waiting at once (e.g. the process died). */
  abortIf?: () => void;
}

/**
 * Calls `probe` until it returns a value other than `undefined`/`false` and returns that value.
 * A probe that throws counts as "not yet"; the last error is quoted when time runs out.
 */
export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  opts: WaitOptions = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const intervalMs = opts.intervalMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    opts.abortIf?.();
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const detail = lastError === undefined ? '' : `; last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
