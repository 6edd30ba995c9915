import type { Clock, Timer } from './clock.js';

interface ScheduledTimer {
  id: number;
  dueMs: number;
  fn: () => void;
}

/**
 * A {@link Clock} for tests: time stands still until {@link FakeClock.advance} moves it, and timers
 * fire in due order as it passes them. Promise callbacks queued by a fired timer run before the next
 * timer fires, so async loops driven by the clock behave as they would in real time.
 */
export class FakeClock implements Clock {
  private nowMs: number;
  private nextId = 1;
  private timers: ScheduledTimer[] = [];

  /** @param startMs - initial time in epoch milliseconds. Default 2024-01-01T00:00:00Z. */
  constructor(startMs = Date.UTC(2024, 0, 1)) {
    this.nowMs = startMs;
  }

  /** @inheritdoc */
  now(): number {
    return this.nowMs;
  }

  /** @inheritdoc */
  setTimer(fn: () => void, ms: number): Timer {
    const timer: ScheduledTimer = { id: this.nextId++, dueMs: this.nowMs + Math.max(0, ms), fn };
    this.timers.push(timer);
    return { cancel: () => (this.timers = this.timers.filter((t) => t !== timer)) };
  }

  /** Number of timers that have not fired or been cancelled. */
  pendingTimers(): number {
    return this.timers.length;
  }

  /** Delays (from now) of the pending timers, soonest first. */
  pendingDelays(): number[] {
    return this.sorted().map((t) => t.dueMs - this.nowMs);
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way (including new ones). */
  async advance(ms: number): Promise<void> {
    const target = this.nowMs + ms;
    await flushPromises();
    for (;;) {
      const next = this.sorted()[0];
      if (!next || next.dueMs > target) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.nowMs = Math.max(this.nowMs, next.dueMs);
      next.fn();
      await flushPromises();
    }
    this.nowMs = target;
    await flushPromises();
  }

  private sorted(): ScheduledTimer[] {
    return [...this.timers].sort((a, b) => a.dueMs - b.dueMs || a.id - b.id);
  }
}

/**
 * Lets queued promise callbacks run. Several macrotask turns, because one settled promise often
 * schedules another (an awaited async function inside an async function, and so on).
 */
export async function flushPromises(turns = 10): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
