import { backoffDelay } from '../../../src/runtime/backoff.js';
import { FakeClock, flushPromises } from '../../../src/runtime/fake-clock.js';
import { WorkQueue } from '../../../src/runtime/work-queue.js';
import { deferred } from './test-support.js';

/** A queue whose handler blocks each run until the test releases it, recording what happened. */
function harness(options: { workers?: number; random?: () => number } = {}) {
  const clock = new FakeClock();
  const queue = new WorkQueue({ clock, random: options.random ?? (() => 0) });
  const started: string[] = [];
  const running = new Map<string, number>();
  let maxSameKeyConcurrency = 0;
  const releases: (() => void)[] = [];
  queue.start(options.workers ?? 1, async (key) => {
    started.push(key);
    const now = (running.get(key) ?? 0) + 1;
    running.set(key, now);
    maxSameKeyConcurrency = Math.max(maxSameKeyConcurrency, now);
    const gate = deferred();
    releases.push(gate.resolve);
    await gate.promise;
    running.set(key, (running.get(key) ?? 1) - 1);
  });
  /** Lets every blocked run finish, and whatever they unblock, until nothing is left. */
  const releaseAll = async () => {
    await flushPromises();
    while (releases.length > 0) {
      for (const release of releases.splice(0)) release();
      await flushPromises();
    }
  };
  return { clock, queue, started, releases, releaseAll, maxConcurrency: () => maxSameKeyConcurrency };
}

describe('WorkQueue', () => {
  it('dedupes a key added many times before a worker takes it', async () => {
    const clock = new FakeClock();
    const queue = new WorkQueue({ clock });
    queue.add('a');
    queue.add('b');
    queue.add('a');
    queue.add('a');
    expect(queue.len()).toBe(2);
    const seen: string[] = [];
    queue.start(1, async (key) => {
      seen.push(key);
    });
    await flushPromises();
    expect(seen).toEqual(['a', 'b']);
    expect(queue.len()).toBe(0);
    await queue.shutDown();
  });

  it('serves keys first in, first out', async () => {
    const h = harness();
    for (const key of ['c', 'a', 'b']) h.queue.add(key);
    await h.releaseAll();
    expect(h.started).toEqual(['c', 'a', 'b']);
    await h.queue.shutDown();
  });

  it('runs N keys concurrently with N workers, but never one key twice at once', async () => {
    const h = harness({ workers: 3 });
    for (const key of ['a', 'b', 'c', 'd']) h.queue.add(key);
    await flushPromises();
    expect(h.queue.inFlight()).toBe(3);
    expect(h.queue.len()).toBe(1);
    h.queue.add('a');
    h.queue.add('a');
    await flushPromises();
    expect(h.started.filter((k) => k === 'a')).toHaveLength(1);
    await h.releaseAll();
    expect(h.maxConcurrency()).toBe(1);
    expect(h.started.filter((k) => k === 'a')).toHaveLength(2);
    expect(h.started).toHaveLength(5);
    await h.queue.shutDown();
  });

  it('processes a key once more when it was re-added while processing (dirty), not once per add', async () => {
    const h = harness({ workers: 2 });
    h.queue.add('a');
    await flushPromises();
    expect(h.started).toEqual(['a']);
    h.queue.add('a');
    h.queue.add('a');
    expect(h.queue.len()).toBe(0); // held back until the current run ends
    h.releases.shift()?.();
    await flushPromises();
    expect(h.started).toEqual(['a', 'a']);
    await h.releaseAll();
    expect(h.started).toEqual(['a', 'a']);
    await h.queue.shutDown();
  });

  it('keeps working when a handler throws', async () => {
    const queue = new WorkQueue({ clock: new FakeClock() });
    const seen: string[] = [];
    queue.start(1, async (key) => {
      seen.push(key);
      if (key === 'bad') throw new Error('boom');
    });
    queue.add('bad');
    queue.add('good');
    await flushPromises();
    expect(seen).toEqual(['bad', 'good']);
    await queue.shutDown();
  });

  describe('addRateLimited', () => {
    it.each([
      { name: 'no jitter (random 0)', random: 0, expected: [100, 200, 400, 800, 1600] },
      { name: 'full jitter (random→1) takes up to 20% off', random: 0.999999, expected: [80, 160, 320, 640, 1280] },
      { name: 'half jitter', random: 0.5, expected: [90, 180, 360, 720, 1440] },
    ])('grows exponentially from 100ms: $name', ({ random, expected }) => {
      const queue = new WorkQueue({ clock: new FakeClock(), random: () => random });
      const delays = expected.map(() => queue.addRateLimited('k'));
      expect(delays).toEqual(expected);
      expect(queue.numRequeues('k')).toBe(expected.length);
    });

    it('stays within [0.8·d, d] and never exceeds the 5 minute cap', () => {
      const options = { baseMs: 100, maxMs: 300_000, jitter: 0.2 };
      for (let attempt = 0; attempt < 40; attempt++) {
        const d = Math.min(300_000, 100 * 2 ** attempt);
        for (const r of [0, 0.25, 0.5, 0.75, 0.999999]) {
          const delay = backoffDelay(attempt, options, () => r);
          expect(delay).toBeGreaterThanOrEqual(Math.floor(0.8 * d));
          expect(delay).toBeLessThanOrEqual(d);
        }
      }
      expect(backoffDelay(1e6, options, () => 0)).toBe(300_000);
    });

    it('honours configured base and max', () => {
      const queue = new WorkQueue({ clock: new FakeClock(), random: () => 0, backoff: { baseMs: 5, maxMs: 30 } });
      expect([1, 2, 3, 4, 5].map(() => queue.addRateLimited('k'))).toEqual([5, 10, 20, 30, 30]);
    });

    it('delays the key on the clock, and forget resets the backoff', async () => {
      const clock = new FakeClock();
      const queue = new WorkQueue({ clock, random: () => 0 });
      const seen: number[] = [];
      queue.start(1, async () => {
        seen.push(clock.now());
      });
      const t0 = clock.now();
      queue.addRateLimited('k'); // 100ms
      await clock.advance(99);
      expect(seen).toEqual([]);
      expect(queue.delayedCount()).toBe(1);
      await clock.advance(1);
      expect(seen).toEqual([t0 + 100]);
      expect(queue.addRateLimited('k')).toBe(200);
      queue.forget('k');
      expect(queue.numRequeues('k')).toBe(0);
      expect(queue.addRateLimited('k')).toBe(100);
      await queue.shutDown();
    });
  });

  describe('addAfter', () => {
    it('adds after the delay, keeps the earliest of several, and adds at once for 0', async () => {
      const clock = new FakeClock();
      const queue = new WorkQueue({ clock });
      const seen: string[] = [];
      queue.start(1, async (key) => {
        seen.push(`${key}@${clock.now() - t0}`);
      });
      const t0 = clock.now();
      queue.addAfter('x', 1000);
      queue.addAfter('x', 300); // earlier wins
      queue.addAfter('x', 5000); // later is ignored
      queue.addAfter('now', 0);
      await flushPromises();
      expect(seen).toEqual(['now@0']);
      await clock.advance(1000);
      expect(seen).toEqual(['now@0', 'x@300']);
      expect(clock.pendingTimers()).toBe(0);
      await queue.shutDown();
    });
  });

  describe('shutDown', () => {
    it('waits for work in flight, drops queued and delayed keys, and ignores later adds', async () => {
      const h = harness({ workers: 1 });
      h.queue.add('a');
      h.queue.add('b');
      h.queue.addAfter('c', 1000);
      await flushPromises();
      expect(h.started).toEqual(['a']);
      let resolved = false;
      const done = h.queue.shutDown().then(() => (resolved = true));
      await flushPromises();
      expect(resolved).toBe(false); // 'a' is still running
      expect(h.queue.len()).toBe(0);
      expect(h.clock.pendingTimers()).toBe(0);
      h.queue.add('d');
      h.queue.add('a'); // would be a dirty re-run, but we are shutting down
      h.releases.shift()?.();
      await done;
      expect(resolved).toBe(true);
      expect(h.started).toEqual(['a']);
      expect(h.queue.isShuttingDown()).toBe(true);
    });

    it('resolves at once when nothing is in flight, even if never started', async () => {
      const queue = new WorkQueue({ clock: new FakeClock() });
      queue.add('a');
      await expect(queue.shutDown()).resolves.toBeUndefined();
      expect(queue.len()).toBe(0);
    });
  });

  it('rejects bad worker counts and a second start', () => {
    const queue = new WorkQueue({ clock: new FakeClock() });
    expect(() => queue.start(0, async () => {})).toThrow(RangeError);
    queue.start(1, async () => {});
    expect(() => queue.start(1, async () => {})).toThrow(/already started/);
    return queue.shutDown();
  });
});
