import { EventEmitter } from 'node:events';
import { Controller, type Reconciler } from '../../../src/runtime/controller.js';
import { FakeClock, flushPromises } from '../../../src/runtime/fake-clock.js';
import { Informer } from '../../../src/runtime/informer.js';
import { Manager, type ManagerExitReason, type ManagerOptions } from '../../../src/runtime/manager.js';
import { FakeLeaseStore } from './fake-lease-store.js';
import { deferred, ScriptedSource, silentLogger, widget, type Widget } from './test-support.js';

interface Replica {
  manager: Manager;
  source: ScriptedSource<Widget>;
  informer: Informer<Widget>;
  signals: EventEmitter;
  reconciled: string[];
  exit: Promise<ManagerExitReason>;
}

function replica(
  clock: FakeClock,
  reconcile: Reconciler,
  options: Partial<ManagerOptions> & { identity?: string; store?: FakeLeaseStore } = {},
): Replica {
  const source = new ScriptedSource<Widget>();
  source.listResults.push({ items: [widget('ns/a', '1')], resourceVersion: '1' });
  const informer = new Informer<Widget>({ source, logger: silentLogger(), clock });
  const reconciled: string[] = [];
  const controller = new Controller({
    name: 'widgets',
    logger: silentLogger(),
    clock,
    resyncPeriodMs: 0,
    reconcile: async (key, ctx) => {
      reconciled.push(key);
      return reconcile(key, ctx);
    },
  }).for(informer);
  const signals = new EventEmitter();
  const { identity, store, ...managerOptions } = options;
  const manager = new Manager({
    logger: silentLogger(),
    clock,
    signalSource: signals,
    ...(store && identity
      ? { leaderElection: { client: store.clientFor(identity), namespace: 'nfv-system', name: 'leader', identity, random: () => 0 } }
      : {}),
    ...managerOptions,
  })
    .addInformer(informer)
    .addController(controller);
  return { manager, source, informer, signals, reconciled, exit: manager.run() };
}

describe('Manager', () => {
  it('without leader election runs at once and shuts down gracefully on SIGTERM', async () => {
    const clock = new FakeClock();
    const gate = deferred();
    const r = replica(clock, () => gate.promise);
    await flushPromises();
    expect(r.reconciled).toEqual(['ns/a']);
    expect(r.manager.isRunningWorkloads()).toBe(true);
    r.signals.emit('SIGTERM');
    await flushPromises();
    expect(r.source.lastWatch().closed).toBe(false); // informers stop only after the reconcile in flight
    gate.resolve();
    await expect(r.exit).resolves.toBe('signal');
    expect(r.source.lastWatch().closed).toBe(true);
    expect(r.signals.listenerCount('SIGTERM')).toBe(0);
    expect(r.manager.metrics()[0]?.reconcileTotal.success).toBe(1);
  });

  it('aborts reconciles still running at the shutdown timeout', async () => {
    const clock = new FakeClock();
    let aborted = false;
    const r = replica(
      clock,
      (_key, ctx) =>
        new Promise<void>((resolve) =>
          ctx.signal.addEventListener('abort', () => {
            aborted = true;
            resolve();
          }),
        ),
      { gracefulShutdownTimeoutMs: 5_000 },
    );
    await flushPromises();
    void r.manager.stop();
    await clock.advance(4_999);
    expect(aborted).toBe(false);
    await clock.advance(1);
    await expect(r.exit).resolves.toBe('stopped');
    expect(aborted).toBe(true);
  });

  it('exits at once on a second signal', async () => {
    const clock = new FakeClock();
    let forced = 0;
    const r = replica(clock, (_key, ctx) => new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve())), {
      forceExit: () => forced++,
    });
    await flushPromises();
    r.signals.emit('SIGINT');
    r.signals.emit('SIGINT');
    expect(forced).toBe(1);
    await clock.advance(20_000); // the default drain timeout ends the first shutdown
    await expect(r.exit).resolves.toBe('signal');
  });

  it('runs informers and controllers only on the leader, and hands over on graceful stop', async () => {
    const clock = new FakeClock();
    const store = new FakeLeaseStore();
    const a = replica(clock, async () => {}, { identity: 'a', store });
    await flushPromises();
    const b = replica(clock, async () => {}, { identity: 'b', store });
    await clock.advance(10_000);
    expect(a.reconciled).toEqual(['ns/a']);
    expect(b.reconciled).toEqual([]);
    expect(b.source.listCalls).toBe(0); // a standby does not even list
    await a.manager.stop();
    await expect(a.exit).resolves.toBe('stopped');
    expect(store.lease('nfv-system', 'leader')?.spec?.holderIdentity).toBe('');
    await clock.advance(2_000);
    expect(b.manager.isRunningWorkloads()).toBe(true);
    expect(b.reconciled).toEqual(['ns/a']);
    await b.manager.stop();
    await expect(b.exit).resolves.toBe('stopped');
  });

  it('stops controllers at once, aborting reconciles in flight, when leadership is lost', async () => {
    const clock = new FakeClock();
    const store = new FakeLeaseStore();
    let signal: AbortSignal | undefined;
    const r = replica(clock, (_key, ctx) => {
      signal = ctx.signal;
      return new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
    }, { identity: 'a', store });
    await flushPromises();
    expect(r.manager.isRunningWorkloads()).toBe(true);
    store.unreachable.add('a');
    await clock.advance(9_999);
    expect(signal?.aborted).toBe(false);
    await clock.advance(2_001);
    await expect(r.exit).resolves.toBe('leadershipLost');
    expect(signal?.aborted).toBe(true);
    expect(r.source.lastWatch().closed).toBe(true);
    expect(r.manager.isRunningWorkloads()).toBe(false);
    expect(clock.pendingTimers()).toBe(0);
  });
});
