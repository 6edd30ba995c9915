import { ApiError } from '../../../src/runtime/api-error.js';
import { Controller, type ReconcileContext, type Reconciler } from '../../../src/runtime/controller.js';
import { StalledError, WaitingError } from '../../../src/runtime/errors.js';
import { generationChanged } from '../../../src/runtime/event-filters.js';
import { FakeClock, flushPromises } from '../../../src/runtime/fake-clock.js';
import { Informer } from '../../../src/runtime/informer.js';
import { controllerKey } from '../../../src/runtime/owner-references.js';
import { deferred, recordingLogger, ScriptedSource, silentLogger, widget, type Widget } from './test-support.js';

interface Setup {
  clock: FakeClock;
  source: ScriptedSource<Widget>;
  informer: Informer<Widget>;
  controller: Controller;
  /** `key@ms since start` per reconcile. */
  runs: string[];
}

async function setup(reconcile: Reconciler, options: { resyncPeriodMs?: number; workers?: number; items?: Widget[] } = {}): Promise<Setup> {
  const clock = new FakeClock();
  const t0 = clock.now();
  const source = new ScriptedSource<Widget>();
  source.listResults.push({ items: options.items ?? [widget('ns/a', '1')], resourceVersion: '1' });
  const informer = new Informer<Widget>({ source, logger: silentLogger(), clock, minWatchDurationMs: 0 });
  const runs: string[] = [];
  const controller = new Controller({
    name: 'widgets',
    logger: silentLogger(),
    clock,
    random: () => 0,
    resyncPeriodMs: options.resyncPeriodMs ?? 0,
    workers: options.workers,
    newReconcileId: (() => {
      let n = 0;
      return () => `r${++n}`;
    })(),
    reconcile: (key, ctx) => {
      runs.push(`${key}@${clock.now() - t0}`);
      return reconcile(key, ctx);
    },
  }).for(informer);
  informer.start();
  await controller.start();
  await flushPromises();
  return { clock, source, informer, controller, runs };
}

describe('Controller', () => {
  it('does not reconcile before the caches sync, then reconciles each listed object', async () => {
    const clock = new FakeClock();
    const source = new ScriptedSource<Widget>();
    const informer = new Informer<Widget>({ source, logger: silentLogger(), clock });
    const seen: string[] = [];
    const controller = new Controller({
      name: 'widgets',
      logger: silentLogger(),
      clock,
      resyncPeriodMs: 0,
      reconcile: async (key) => {
        seen.push(key);
      },
    }).for(informer);
    let running: boolean | undefined;
    void controller.start().then((r) => (running = r));
    await flushPromises();
    expect(running).toBeUndefined();
    source.listResults.push({ items: [widget('ns/a', '1'), widget('b', '1')], resourceVersion: '1' });
    informer.start();
    await flushPromises();
    expect(running).toBe(true);
    expect(seen).toEqual(['ns/a', 'b']);
    await controller.stop();
    await informer.stop();
  });

  it('gives the reconcile the parsed key, a reconcile id, a bound logger and a signal', async () => {
    const contexts: ReconcileContext[] = [];
    const { logger, lines } = recordingLogger();
    const clock = new FakeClock();
    const source = new ScriptedSource<Widget>();
    source.listResults.push({ items: [widget('ns/a', '1'), widget('cluster-wide', '1')], resourceVersion: '1' });
    const informer = new Informer<Widget>({ source, logger: silentLogger(), clock });
    const controller = new Controller({
      name: 'widgets',
      logger,
      clock,
      resyncPeriodMs: 0,
      newReconcileId: () => 'abcd1234',
      reconcile: async (_key, ctx) => {
        contexts.push(ctx);
        ctx.logger.info('hello');
      },
    }).for(informer);
    informer.start();
    await controller.start();
    await flushPromises();
    expect(contexts.map(({ key, name, namespace, reconcileId, failures }) => ({ key, name, namespace, reconcileId, failures }))).toEqual([
      { key: 'ns/a', name: 'a', namespace: 'ns', reconcileId: 'abcd1234', failures: 0 },
      { key: 'cluster-wide', name: 'cluster-wide', namespace: undefined, reconcileId: 'abcd1234', failures: 0 },
    ]);
    expect(contexts[0]?.signal.aborted).toBe(false);
    const hello = lines.filter((line) => line.msg === 'hello');
    expect(hello).toEqual([
      expect.objectContaining({ controller: 'widgets', key: 'ns/a', reconcileId: 'abcd1234' }),
      expect.objectContaining({ controller: 'widgets', key: 'cluster-wide', reconcileId: 'abcd1234' }),
    ]);
    await controller.stop();
    await informer.stop();
  });

  describe('maps reconcile outcomes to retries', () => {
    it.each<{ name: string; outcomes: (() => Promise<{ requeueAfterMs?: number } | void>)[]; expectedRuns: string[]; advanceMs: number }>([
      { name: 'success: reconciled once', outcomes: [async () => {}], expectedRuns: ['ns/a@0'], advanceMs: 60_000 },
      {
        name: 'requeueAfterMs: reconciled again after it',
        outcomes: [async () => ({ requeueAfterMs: 5_000 }), async () => {}],
        expectedRuns: ['ns/a@0', 'ns/a@5000'],
        advanceMs: 60_000,
      },
      {
        name: 'WaitingError: reconciled again after its delay',
        outcomes: [
          async () => {
            throw new WaitingError('PodStarting', 'pod not ready', 2_000);
          },
          async () => {},
        ],
        expectedRuns: ['ns/a@0', 'ns/a@2000'],
        advanceMs: 60_000,
      },
      {
        name: 'StalledError: never retried',
        outcomes: [
          async () => {
            throw new StalledError('InvalidSpec', 'bad');
          },
        ],
        expectedRuns: ['ns/a@0'],
        advanceMs: 600_000,
      },
      {
        name: 'errors: retried with growing backoff until success',
        outcomes: [
          async () => {
            throw new Error('boom');
          },
          async () => {
            throw new ApiError(409, { reason: 'Conflict' });
          },
          async () => {
            throw new Error('boom');
          },
          async () => {},
        ],
        // 100ms, then 200ms, then 400ms after each failure.
        expectedRuns: ['ns/a@0', 'ns/a@100', 'ns/a@300', 'ns/a@700'],
        advanceMs: 60_000,
      },
    ])('$name', async ({ outcomes, expectedRuns, advanceMs }) => {
      let call = 0;
      const s = await setup(() => (outcomes[Math.min(call++, outcomes.length - 1)] as () => Promise<void>)());
      await s.clock.advance(advanceMs);
      expect(s.runs).toEqual(expectedRuns);
      expect(s.controller.queue.numRequeues('ns/a')).toBe(0);
      await s.controller.stop();
      await s.informer.stop();
    });

    it('resets the backoff after a success and passes the failure count in the context', async () => {
      const failures: number[] = [];
      let call = 0;
      const s = await setup(async (_key, ctx) => {
        failures.push(ctx.failures);
        if (call++ < 2) throw new Error('boom');
      });
      await s.clock.advance(1_000);
      expect(failures).toEqual([0, 1, 2]);
      s.controller.enqueue('ns/a');
      await flushPromises();
      expect(failures).toEqual([0, 1, 2, 0]);
      await s.controller.stop();
      await s.informer.stop();
    });
  });

  it('re-reconciles on watch events, deduping keys that are already queued', async () => {
    const gate = deferred();
    let first = true;
    const s = await setup(async () => {
      if (first) {
        first = false;
        await gate.promise;
      }
    });
    const watch = s.source.lastWatch();
    watch.push({ type: 'MODIFIED', object: widget('ns/a', '2') });
    watch.push({ type: 'MODIFIED', object: widget('ns/a', '3') });
    watch.push({ type: 'ADDED', object: widget('ns/b', '4') });
    watch.push({ type: 'DELETED', object: widget('ns/b', '5') });
    await flushPromises();
    expect(s.runs).toEqual(['ns/a@0']);
    gate.resolve();
    await flushPromises();
    expect(s.runs).toEqual(['ns/a@0', 'ns/b@0', 'ns/a@0']);
    await s.controller.stop();
    await s.informer.stop();
  });

  it('maps events of other kinds to keys with watches(), honouring filters', async () => {
    const clock = new FakeClock();
    const vnfSource = new ScriptedSource<Widget>();
    vnfSource.listResults.push({ items: [widget('ns/vnf-1', '1'), widget('ns/vnf-2', '1')], resourceVersion: '1' });
    const podSource = new ScriptedSource<Widget>();
    const pod = (name: string, owner: string, rv: string): Widget => ({
      ...widget(`ns/${name}`, rv),
      metadata: {
        ...widget(`ns/${name}`, rv).metadata,
        ownerReferences: [{ apiVersion: 'test.dev/v1', kind: 'Widget', name: owner, uid: `uid-${owner}`, controller: true }],
      } as Widget['metadata'],
    });
    podSource.listResults.push({ items: [pod('p1', 'vnf-1', '1')], resourceVersion: '1' });
    const inventorySource = new ScriptedSource<Widget>();
    inventorySource.listResults.push({ items: [widget('node-1', '1')], resourceVersion: '1' });
    const informers = [vnfSource, podSource, inventorySource].map(
      (source) => new Informer<Widget>({ source, logger: silentLogger(), clock }),
    );
    const [vnfs, pods, inventory] = informers as [Informer<Widget>, Informer<Widget>, Informer<Widget>];
    const seen: string[] = [];
    const controller = new Controller({
      name: 'vnf',
      logger: silentLogger(),
      clock,
      resyncPeriodMs: 0,
      reconcile: async (key) => {
        seen.push(key);
      },
    })
      .for(vnfs)
      .watches(pods, ({ object }) => controllerKey(object, 'Widget'))
      .watches(inventory, () => vnfs.list((v) => v.spec?.size === undefined).map((v) => `${v.metadata.namespace}/${v.metadata.name}`), {
        filter: (event) => event.type !== 'add',
      });
    for (const informer of informers) informer.start();
    await controller.start();
    await flushPromises();
    expect(seen.sort()).toEqual(['ns/vnf-1', 'ns/vnf-2']); // pod p1's owner deduped with the VNF's own add
    seen.length = 0;
    podSource.lastWatch().push({ type: 'MODIFIED', object: pod('p1', 'vnf-1', '2') });
    await flushPromises();
    expect(seen).toEqual(['ns/vnf-1']);
    seen.length = 0;
    inventorySource.lastWatch().push({ type: 'MODIFIED', object: widget('node-1', '2') });
    await flushPromises();
    expect(seen).toEqual(['ns/vnf-1', 'ns/vnf-2']);
    await controller.stop();
    await Promise.all(informers.map((informer) => informer.stop()));
  });

  it('resyncs every primary key each period', async () => {
    const s = await setup(async () => {}, { resyncPeriodMs: 60_000, items: [widget('ns/a', '1'), widget('ns/b', '1')] });
    await s.clock.advance(120_000);
    expect(s.runs).toEqual(['ns/a@0', 'ns/b@0', 'ns/a@60000', 'ns/b@60000', 'ns/a@120000', 'ns/b@120000']);
    await s.controller.stop();
    expect(s.clock.pendingTimers()).toBe(0);
    await s.informer.stop();
  });

  it('counts reconciles by outcome and reports queue figures', async () => {
    const outcomes = [
      async () => {},
      async () => {
        throw new Error('x');
      },
      async () => ({ requeueAfterMs: 1000 }),
      async () => {
        throw new StalledError('Bad', 'bad');
      },
      async () => {
        throw new WaitingError('Wait', 'wait', 1000);
      },
    ];
    let call = 0;
    const samples: string[] = [];
    const clock = new FakeClock();
    const source = new ScriptedSource<Widget>();
    source.listResults.push({ items: ['a', 'b', 'c', 'd', 'e'].map((n) => widget(`ns/${n}`, '1')), resourceVersion: '1' });
    const informer = new Informer<Widget>({ source, logger: silentLogger(), clock });
    const controller = new Controller({
      name: 'widgets',
      logger: silentLogger(),
      clock,
      resyncPeriodMs: 0,
      reconcile: () => (outcomes[call++] ?? (async () => {}))(),
      onReconcile: (sample) => samples.push(`${sample.key}:${sample.outcome}`),
    }).for(informer);
    informer.start();
    await controller.start();
    await flushPromises();
    const metrics = controller.metrics();
    expect(metrics.reconcileTotal).toEqual({ success: 1, error: 1, requeueAfter: 1, stalled: 1, waiting: 1 });
    expect(metrics.reconcileErrorsTotal).toBe(2);
    expect(metrics.reconcileDurationSeconds.count).toBe(5);
    expect(metrics.reconcileDurationSeconds.buckets.at(-1)?.count).toBe(5);
    expect(metrics.queueDepth).toBe(0);
    expect(metrics.queueDelayed).toBe(3); // the error, the requeueAfter and the wait
    expect(metrics.activeWorkers).toBe(0);
    expect(samples).toEqual(['ns/a:success', 'ns/b:error', 'ns/c:requeueAfter', 'ns/d:stalled', 'ns/e:waiting']);
    await controller.stop();
    await informer.stop();
  });

  it('stop() lets a reconcile in flight finish; stop({ abortInFlight }) aborts its signal', async () => {
    for (const abortInFlight of [false, true]) {
      const gate = deferred();
      let signal: AbortSignal | undefined;
      const s = await setup(async (_key, ctx) => {
        signal = ctx.signal;
        await Promise.race([gate.promise, new Promise((resolve) => ctx.signal.addEventListener('abort', resolve))]);
      });
      let stopped = false;
      const stopping = s.controller.stop({ abortInFlight }).then(() => (stopped = true));
      await flushPromises();
      expect(signal?.aborted).toBe(abortInFlight);
      expect(stopped).toBe(abortInFlight);
      gate.resolve();
      await stopping;
      s.controller.enqueue('ns/a');
      await flushPromises();
      expect(s.runs).toEqual(['ns/a@0']);
      await s.informer.stop();
    }
  });

  it('start() resolves false when stopped before the caches sync', async () => {
    const source = new ScriptedSource<Widget>();
    const informer = new Informer<Widget>({ source, logger: silentLogger(), clock: new FakeClock() });
    const controller = new Controller({ name: 'w', logger: silentLogger(), reconcile: async () => {} }).for(informer);
    const starting = controller.start();
    await controller.stop();
    await expect(starting).resolves.toBe(false);
  });
});

describe('generationChanged', () => {
  const at = (generation: number, resourceVersion: string): Widget => ({
    ...widget('ns/a', resourceVersion),
    metadata: { ...widget('ns/a', resourceVersion).metadata, generation },
  });
  it.each([
    { name: 'add', event: { type: 'add' as const, object: at(1, '1') }, passes: true },
    { name: 'delete', event: { type: 'delete' as const, object: at(1, '1') }, passes: true },
    { name: 'spec update', event: { type: 'update' as const, oldObject: at(1, '1'), object: at(2, '2') }, passes: true },
    { name: 'status-only update', event: { type: 'update' as const, oldObject: at(2, '2'), object: at(2, '3') }, passes: false },
  ])('$name → $passes', ({ event, passes }) => {
    expect(generationChanged(event)).toBe(passes);
  });
});
