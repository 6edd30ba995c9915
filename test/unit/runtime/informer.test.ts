import { ApiError } from '../../../src/runtime/api-error.js';
import { FakeClock, flushPromises } from '../../../src/runtime/fake-clock.js';
import { Informer } from '../../../src/runtime/informer.js';
import { objectKey } from '../../../src/runtime/kube-object.js';
import { ScriptedSource, silentLogger, widget, type Widget } from './test-support.js';

function describeEvent(kind: string, obj: Widget, old?: Widget): string {
  const version = old ? `${old.metadata.resourceVersion}→${obj.metadata.resourceVersion}` : obj.metadata.resourceVersion;
  return `${kind} ${objectKey(obj)}@${version}`;
}

function setup(options: { minWatchDurationMs?: number } = {}) {
  const clock = new FakeClock();
  const source = new ScriptedSource<Widget>();
  const informer = new Informer<Widget>({
    source,
    logger: silentLogger(),
    clock,
    random: () => 0,
    minWatchDurationMs: options.minWatchDurationMs ?? 0,
  });
  const events: string[] = [];
  informer.addEventHandler({
    onAdd: (obj) => events.push(describeEvent('add', obj)),
    onUpdate: (old, obj) => events.push(describeEvent('update', obj, old)),
    onDelete: (obj) => events.push(describeEvent('delete', obj)),
  });
  return { clock, source, informer, events };
}

describe('Informer', () => {
  it('lists, fills the cache, reports adds, syncs, and watches from the list resourceVersion', async () => {
    const { source, informer, events } = setup();
    source.listResults.push({ items: [widget('ns/a', '5'), widget('ns/b', '7'), widget('node-1', '3')], resourceVersion: '10' });
    const synced = informer.waitForSync();
    expect(informer.hasSynced()).toBe(false);
    informer.start();
    await expect(synced).resolves.toBe(true);
    await flushPromises();
    expect(events).toEqual(['add ns/a@5', 'add ns/b@7', 'add node-1@3']);
    expect(informer.keys()).toEqual(['ns/a', 'ns/b', 'node-1']);
    expect(informer.getByName('a', 'ns')?.metadata.resourceVersion).toBe('5');
    expect(informer.get('node-1')?.metadata.name).toBe('node-1');
    expect(informer.list((w) => w.metadata.namespace === 'ns')).toHaveLength(2);
    expect(source.watchResourceVersions).toEqual(['10']);
    await informer.stop();
  });

  it('applies watch events to the cache and tracks the resourceVersion', async () => {
    const { source, informer, events } = setup();
    source.listResults.push({ items: [widget('ns/a', '1')], resourceVersion: '1' });
    informer.start();
    await flushPromises();
    const watch = source.lastWatch();
    watch.push({ type: 'ADDED', object: widget('ns/b', '2') });
    watch.push({ type: 'MODIFIED', object: widget('ns/a', '3', { size: 2 }) });
    watch.push({ type: 'ADDED', object: widget('ns/b', '4') }); // re-add of a known key is an update
    watch.push({ type: 'MODIFIED', object: widget('ns/c', '5') }); // modify of an unknown key is an add
    watch.push({ type: 'DELETED', object: widget('ns/a', '6') });
    watch.push({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '9' } } as Widget });
    await flushPromises();
    expect(events).toEqual(['add ns/a@1', 'add ns/b@2', 'update ns/a@1→3', 'update ns/b@2→4', 'add ns/c@5', 'delete ns/a@6']);
    expect(informer.keys().sort()).toEqual(['ns/b', 'ns/c']);
    expect(informer.lastResourceVersion()).toBe('9');
    await informer.stop();
  });

  it('re-watches from the last resourceVersion (bookmark) when a watch ends, without relisting', async () => {
    const { source, informer } = setup();
    source.listResults.push({ items: [], resourceVersion: '1' });
    informer.start();
    await flushPromises();
    source.lastWatch().push({ type: 'ADDED', object: widget('ns/a', '4') });
    source.lastWatch().push({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '8' } } as Widget });
    source.lastWatch().close();
    await flushPromises();
    expect(source.watchResourceVersions).toEqual(['1', '8']);
    expect(source.listCalls).toBe(1);
    await informer.stop();
  });

  describe('relist after 410 Gone emits only the differences', () => {
    it.each([
      {
        name: 'changed, new, removed and unchanged objects',
        before: [widget('ns/a', '1'), widget('ns/b', '1'), widget('ns/c', '1')],
        after: [widget('ns/a', '1'), widget('ns/b', '2'), widget('ns/d', '1')],
        expected: ['update ns/b@1→2', 'add ns/d@1', 'delete ns/c@1'],
      },
      { name: 'nothing changed', before: [widget('ns/a', '1')], after: [widget('ns/a', '1')], expected: [] },
      {
        name: 'everything deleted',
        before: [widget('ns/a', '1'), widget('ns/b', '1')],
        after: [],
        expected: ['delete ns/a@1', 'delete ns/b@1'],
      },
      { name: 'from empty', before: [], after: [widget('x', '3')], expected: ['add x@3'] },
    ])('$name', async ({ before, after, expected }) => {
      const { source, informer, events } = setup();
      source.listResults.push({ items: before, resourceVersion: '10' }, { items: after, resourceVersion: '20' });
      informer.start();
      await flushPromises();
      events.length = 0;
      source.lastWatch().push({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' } });
      await flushPromises();
      expect(events).toEqual(expected);
      expect(informer.keys().sort()).toEqual(after.map((w) => objectKey(w)).sort());
      expect(source.listCalls).toBe(2);
      expect(source.watchResourceVersions).toEqual(['10', '20']);
      await informer.stop();
    });

    it('also relists when opening the watch fails with HTTP 410', async () => {
      const { source, informer, events } = setup();
      source.listResults.push({ items: [widget('ns/a', '1')], resourceVersion: '10' }, { items: [], resourceVersion: '30' });
      source.watchOpenErrors.push(new ApiError(410, { reason: 'Expired', message: 'too old' }));
      informer.start();
      await flushPromises();
      expect(events).toEqual(['add ns/a@1', 'delete ns/a@1']);
      expect(source.watchResourceVersions).toEqual(['10', '30']);
      await informer.stop();
    });

    it('backs off instead of relisting in a tight loop when 410s repeat', async () => {
      const { clock, source, informer } = setup();
      source.listResults.push({ items: [], resourceVersion: '1' }, { items: [], resourceVersion: '2' }, { items: [], resourceVersion: '3' });
      const gone = () => new ApiError(410, { reason: 'Expired' });
      source.watchOpenErrors.push(gone(), gone());
      informer.start();
      await flushPromises();
      expect(source.listCalls).toBe(2); // first 410 relists at once
      expect(clock.pendingDelays()).toEqual([1600]); // the second waits, as the second failure in a row
      await clock.advance(1600);
      expect(source.listCalls).toBe(3);
      await informer.stop();
    });
  });

  it('retries failed watches with exponential backoff from the same resourceVersion', async () => {
    const { clock, source, informer } = setup();
    source.listResults.push({ items: [], resourceVersion: '5' });
    source.watchOpenErrors.push(new ApiError(500, { message: 'etcd unhappy' }), new Error('ECONNRESET'), new Error('ECONNRESET'));
    informer.start();
    await flushPromises();
    expect(clock.pendingDelays()).toEqual([800]);
    await clock.advance(800);
    expect(clock.pendingDelays()).toEqual([1600]);
    await clock.advance(1600);
    expect(clock.pendingDelays()).toEqual([3200]);
    await clock.advance(3200);
    expect(clock.pendingTimers()).toBe(0);
    expect(source.watchResourceVersions).toEqual(['5', '5', '5', '5']);
    expect(source.listCalls).toBe(1);
    await informer.stop();
  });

  it('retries a failed initial list and only then reports synced', async () => {
    const { clock, source, informer } = setup();
    source.listResults.push(new Error('connection refused'), { items: [widget('a', '1')], resourceVersion: '2' });
    informer.start();
    await flushPromises();
    expect(informer.hasSynced()).toBe(false);
    await clock.advance(800);
    expect(informer.hasSynced()).toBe(true);
    expect(informer.keys()).toEqual(['a']);
    await informer.stop();
  });

  it('treats a watch that closes at once without events as a failure', async () => {
    const { clock, source, informer } = setup({ minWatchDurationMs: 1000 });
    source.listResults.push({ items: [], resourceVersion: '1' });
    informer.start();
    await flushPromises();
    source.lastWatch().close();
    await flushPromises();
    expect(clock.pendingDelays()).toEqual([800]);
    await informer.stop();
  });

  it('replays the cache to a handler added late, and survives a throwing handler', async () => {
    const { source, informer, events } = setup();
    source.listResults.push({ items: [widget('a', '1'), widget('b', '1')], resourceVersion: '1' });
    informer.addEventHandler({
      onAdd: () => {
        throw new Error('handler bug');
      },
    });
    informer.start();
    await flushPromises();
    expect(events).toEqual(['add a@1', 'add b@1']);
    const late: string[] = [];
    const unsubscribe = informer.addEventHandler({ onAdd: (obj) => late.push(objectKey(obj)) });
    expect(late).toEqual(['a', 'b']);
    unsubscribe();
    source.lastWatch().push({ type: 'ADDED', object: widget('c', '2') });
    await flushPromises();
    expect(late).toEqual(['a', 'b']);
    expect(events).toContain('add c@2');
    await informer.stop();
  });

  it('stops cleanly: closes the watch, cancels backoff timers, and cannot be restarted', async () => {
    const { clock, source, informer } = setup();
    source.listResults.push({ items: [], resourceVersion: '1' });
    informer.start();
    await flushPromises();
    const watch = source.lastWatch();
    await informer.stop();
    expect(watch.closed).toBe(true);
    expect(clock.pendingTimers()).toBe(0);
    expect(() => informer.start()).toThrow(/cannot be restarted/);

    const second = setup();
    second.source.listResults.push(new Error('down'));
    second.informer.start();
    await flushPromises();
    expect(second.clock.pendingTimers()).toBe(1);
    await second.informer.stop();
    expect(second.clock.pendingTimers()).toBe(0);
  });

  it('waitForSync resolves false when stopped or aborted before syncing', async () => {
    const { informer } = setup();
    const abort = new AbortController();
    const aborted = informer.waitForSync(abort.signal);
    abort.abort();
    await expect(aborted).resolves.toBe(false);
    const pending = informer.waitForSync();
    await informer.stop();
    await expect(pending).resolves.toBe(false);
  });
});
