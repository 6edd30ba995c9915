import { FakeClock, flushPromises } from '../../../src/runtime/fake-clock.js';
import { formatMicroTime, LeaderElector, type LeaderElectionOptions } from '../../../src/runtime/leader-election.js';
import { FakeLeaseStore } from './fake-lease-store.js';
import { silentLogger } from './test-support.js';

const namespace = 'nfv-system';
const name = 'nfv-operator-leader';

function replicas(identities: string[], overrides: Partial<LeaderElectionOptions> = {}) {
  const clock = new FakeClock();
  const store = new FakeLeaseStore();
  const timeline: string[] = [];
  const electors = new Map<string, LeaderElector>();
  for (const identity of identities) {
    electors.set(
      identity,
      new LeaderElector({
        client: store.clientFor(identity),
        namespace,
        name,
        identity,
        logger: silentLogger(),
        clock,
        random: () => 0,
        onStartedLeading: () => timeline.push(`${(clock.now() - t0) / 1000}s ${identity} started`),
        onStoppedLeading: () => timeline.push(`${(clock.now() - t0) / 1000}s ${identity} stopped`),
        ...overrides,
      }),
    );
  }
  const t0 = clock.now();
  const leaders = () => [...electors].filter(([, e]) => e.isLeader()).map(([id]) => id);
  /** Advances in 100ms steps, asserting there is never more than one leader. */
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 100) {
      await clock.advance(100);
      expect(leaders().length).toBeLessThanOrEqual(1);
    }
  };
  const elector = (id: string) => electors.get(id) as LeaderElector;
  return { clock, store, timeline, electors, elector, leaders, run };
}

describe('LeaderElector', () => {
  it('creates the lease when there is none, leads, and renews every retry period', async () => {
    const r = replicas(['a']);
    void r.elector('a').run();
    await flushPromises();
    expect(r.leaders()).toEqual(['a']);
    const lease = r.store.lease(namespace, name);
    expect(lease?.spec).toEqual({
      holderIdentity: 'a',
      leaseDurationSeconds: 15,
      acquireTime: '2024-01-01T00:00:00.000000Z',
      renewTime: '2024-01-01T00:00:00.000000Z',
      leaseTransitions: 0,
    });
    await r.run(6_000);
    expect(r.store.lease(namespace, name)?.spec?.renewTime).toBe('2024-01-01T00:00:06.000000Z');
    expect(r.store.lease(namespace, name)?.spec?.acquireTime).toBe('2024-01-01T00:00:00.000000Z');
    await r.elector('a').stop();
  });

  it('elects exactly one of several replicas starting together; the others stay followers', async () => {
    const r = replicas(['a', 'b', 'c']);
    for (const elector of r.electors.values()) void elector.run();
    await r.run(60_000);
    expect(r.leaders()).toHaveLength(1);
    expect(r.timeline).toHaveLength(1);
    expect(r.store.lease(namespace, name)?.spec?.leaseTransitions).toBe(0);
    for (const elector of r.electors.values()) await elector.stop();
  });

  it('resolves a race for an expired lease with the resourceVersion precondition', async () => {
    const r = replicas(['a', 'b']);
    r.store.put({
      metadata: { name, namespace },
      spec: { holderIdentity: 'crashed', leaseDurationSeconds: 15, renewTime: formatMicroTime(r.clock.now()), leaseTransitions: 4 },
    });
    for (const elector of r.electors.values()) void elector.run();
    await r.run(14_000);
    expect(r.leaders()).toEqual([]); // the holder might still be alive until 15s after we first saw the lease
    await r.run(4_000);
    expect(r.leaders()).toHaveLength(1);
    expect(r.store.lease(namespace, name)?.spec?.leaseTransitions).toBe(5);
    for (const elector of r.electors.values()) await elector.stop();
  });

  it('releases the lease on stop so a standby takes over at once', async () => {
    const r = replicas(['a', 'b']);
    void r.elector('a').run();
    await flushPromises();
    void r.elector('b').run();
    await r.run(10_000);
    expect(r.leaders()).toEqual(['a']);
    await r.elector('a').stop();
    expect(r.store.lease(namespace, name)?.spec?.holderIdentity).toBe('');
    await r.run(3_000);
    expect(r.leaders()).toEqual(['b']);
    expect(r.timeline).toEqual(['0s a started', '10s a stopped', '12s b started']);
    await r.elector('b').stop();
  });

  it('a leader that cannot renew stops leading after the renew deadline, before a standby may take over', async () => {
    const r = replicas(['a', 'b']);
    void r.elector('a').run();
    await flushPromises();
    void r.elector('b').run();
    await r.run(4_000);
    r.store.unreachable.add('a'); // last successful renewal at 4s
    await r.run(30_000);
    expect(r.leaders()).toEqual(['b']);
    // a gives up 10s (renew deadline) after its last renewal; b waits 15s (lease duration) after it last saw a change.
    expect(r.timeline).toEqual(['0s a started', '14s a stopped', '20s b started']);
    await r.elector('a').run(); // already finished
    await r.elector('b').stop();
  });

  it('stops leading at once when it finds another holder on the lease', async () => {
    const r = replicas(['a']);
    const aborted: boolean[] = [];
    let leaderSignal: AbortSignal | undefined;
    const elector = new LeaderElector({
      client: r.store.clientFor('a'),
      namespace,
      name,
      identity: 'a',
      logger: silentLogger(),
      clock: r.clock,
      onStartedLeading: (signal) => (leaderSignal = signal),
      onStoppedLeading: () => aborted.push(leaderSignal?.aborted ?? false),
    });
    const done = elector.run();
    await flushPromises();
    expect(elector.isLeader()).toBe(true);
    const lease = r.store.lease(namespace, name);
    r.store.put({ ...lease, spec: { ...lease?.spec, holderIdentity: 'usurper' } });
    await r.clock.advance(2_000);
    await done;
    expect(elector.isLeader()).toBe(false);
    expect(aborted).toEqual([true]);
    expect(elector.currentLeader()).toBe('usurper');
    expect(r.store.lease(namespace, name)?.spec?.holderIdentity).toBe('usurper'); // no release of a lease it does not hold
  });

  it('stop() while campaigning resolves without leading or writing', async () => {
    const r = replicas(['a', 'b']);
    void r.elector('a').run();
    await flushPromises();
    void r.elector('b').run();
    await r.run(3_000);
    const writesBefore = r.store.writes.filter((w) => w.by === 'b').length;
    await r.elector('b').stop();
    expect(r.store.writes.filter((w) => w.by === 'b').length).toBe(writesBefore);
    expect(r.timeline).toEqual(['0s a started']);
    expect(r.clock.pendingTimers()).toBeGreaterThan(0); // a's renew timer
    await r.elector('a').stop();
    expect(r.clock.pendingTimers()).toBe(0);
  });

  it.each([
    { name: 'lease not longer than renew deadline', options: { leaseDurationSeconds: 10, renewDeadlineMs: 10_000 } },
    { name: 'renew deadline too close to retry period', options: { renewDeadlineMs: 2_000, retryPeriodMs: 2_000 } },
  ])('rejects timing: $name', ({ options }) => {
    const store = new FakeLeaseStore();
    expect(
      () => new LeaderElector({ client: store.clientFor('a'), namespace, name, identity: 'a', logger: silentLogger(), ...options }),
    ).toThrow(RangeError);
  });
});

describe('formatMicroTime', () => {
  it('writes six fractional digits, as metav1.MicroTime requires', () => {
    expect(formatMicroTime(Date.UTC(2024, 4, 1, 12, 30, 15, 42))).toBe('2024-05-01T12:30:15.042000Z');
  });
});
