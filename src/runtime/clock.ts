/** A pending timer that can be cancelled. */
export interface Timer {
  /** Cancels the timer; a no-op once it has fired. */
  cancel(): void;
}

/**
 * Time source and timer factory. Every runtime component takes one so that tests can drive time
 * with {@link FakeClock} instead of sleeping.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Calls `fn` once after `ms` milliseconds. */
  setTimer(fn: () => void, ms: number): Timer;
}

/** The wall clock and Node's timers. */
export const realClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    const handle = setTimeout(fn, Math.max(0, ms));
    return { cancel: () => clearTimeout(handle) };
  },
};

/**
 * Waits `ms` on `clock`, or less if `signal` aborts first (the timer is then cleared, so nothing
 * keeps the process alive).
 *
 * @returns `true` if the full time passed, `false` if the signal aborted the wait.
 */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      timer.cancel();
      resolve(false);
    };
    const timer = clock.setTimer(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
