/**
 * The controller runtime against the real API server when things go wrong: an informer keeps an
 * exact cache across a kube-apiserver restart and across a watch that etcd compaction expired
 * (a real 410 Gone), the operator keeps placing VNFs after a restart, two LeaderElectors on a real
 * Lease never both lead and hand over at once on release, and the EventRecorder writes Events the
 * API serves back.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { CoreV1Event, V1ConfigMap, V1Namespace } from '@kubernetes/client-node';
import type { NfvNode } from '../../src/api/nfv-node.js';
import { parseCpuList } from '../../src/api/cpu-list.js';
import { resources } from '../../src/controllers/resources.js';
import { isGone } from '../../src/runtime/api-error.js';
import { EventRecorder } from '../../src/runtime/event-recorder.js';
import { Informer, type InformerEventHandler } from '../../src/runtime/informer.js';
import type { ListResult, WatchEvent } from '../../src/runtime/kube-client.js';
import { KubeClient } from '../../src/runtime/kube-client.js';
import { coreResources, objectKey, type KubeObject, type ResourceRef, type StatusBody } from '../../src/runtime/kube-object.js';
import { LeaderElector, type Lease } from '../../src/runtime/leader-election.js';
import { KubeListWatchSource, type ListWatchSource } from '../../src/runtime/list-watch-source.js';
import { createTestNamespace, e2eKubeConfig, restartE2eApiServer, type TestNamespace } from '../cluster/e2e-env.js';
import { compactE2eEtcd } from '../cluster/etcd-compaction.js';
import { startNfvFixture, testLogger, type NfvFixture } from '../cluster/nfv-fixture.js';
import { waitUntil } from '../cluster/wait-until.js';

/** Jest 30 does not apply the project's testTimeout per project, so each hook and test says its own. */
const TIMEOUT_MS = 180_000;
/** Informer retries in a test need not wait the production 800 ms doubling to 30 s. */
const quickBackoff = { baseMs: 100, maxMs: 1000 };

const kc = e2eKubeConfig();
const logger = testLogger();
let client: KubeClient;
let ns: TestNamespace;

beforeAll(async () => {
  client = new KubeClient(kc, { userAgent: 'nfv-e2e-runtime-resilience' });
  ns = await createTestNamespace('resilience', kc);
}, TIMEOUT_MS);

afterAll(async () => {
  await ns?.delete();
  client?.close();
}, TIMEOUT_MS);

/**
 * Replays an informer's callbacks onto a mirror of its cache and notes every callback that
 * contradicts the mirror: an add of a key already there (a duplicate), an update or delete of a
 * key not there. A mirror equal to the server with no contradictions means nothing was lost or
 * delivered twice.
 */
class CallbackLedger<T extends KubeObject> implements InformerEventHandler<T> {
  readonly mirror = new Map<string, string | undefined>();
  readonly contradictions: string[] = [];
  readonly seen: string[] = [];

  onAdd(obj: T): void {
    const key = objectKey(obj);
    this.seen.push(`add ${key}`);
    if (this.mirror.has(key)) this.contradictions.push(`add of ${key}, already cached`);
    this.mirror.set(key, obj.metadata?.resourceVersion);
  }

  onUpdate(oldObj: T, newObj: T): void {
    const key = objectKey(newObj);
    this.seen.push(`update ${key}`);
    if (this.mirror.get(key) !== oldObj.metadata?.resourceVersion) {
      this.contradictions.push(`update of ${key} from ${oldObj.metadata?.resourceVersion}, mirror has ${this.mirror.get(key)}`);
    }
    this.mirror.set(key, newObj.metadata?.resourceVersion);
  }

  onDelete(obj: T): void {
    const key = objectKey(obj);
    this.seen.push(`delete ${key}`);
    if (!this.mirror.delete(key)) this.contradictions.push(`delete of ${key}, not cached`);
  }
}

/** `key → resourceVersion` of a collection, sorted by key, for exact comparisons. */
function versions(objects: readonly KubeObject[]): [string, string | undefined][] {
  return objects.map((obj): [string, string | undefined] => [objectKey(obj), obj.metadata?.resourceVersion]).sort(([a], [b]) => a.localeCompare(b));
}

/**
 * Waits until the informer's cache and the callback mirror both equal what the API server lists
 * now, then asserts it with a readable diff.
 */
async function expectConverged<T extends KubeObject>(informer: Informer<T>, ledger: CallbackLedger<T>, ref: ResourceRef): Promise<void> {
  const server = async () => versions((await client.list<T>(ref, { namespace: ns.name })).items);
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  await waitUntil(
    `the ${ref.plural} informer to match the API server`,
    async () => {
      const expected = await server();
      return same(versions(informer.list()), expected) && same([...ledger.mirror].sort(([a], [b]) => a.localeCompare(b)), expected);
    },
    { timeoutMs: 60_000, intervalMs: 200 },
  );
  const expected = await server();
  expect(versions(informer.list())).toEqual(expected);
  expect([...ledger.mirror].sort(([a], [b]) => a.localeCompare(b))).toEqual(expected);
  expect(ledger.contradictions).toEqual([]);
}

/** Retries a write while the API server is still coming back (connection refused, 503, 429). */
function retrying<T>(what: string, write: () => Promise<T>): Promise<T> {
  return waitUntil(what, write, { timeoutMs: 30_000, intervalMs: 200 });
}

const configMap = (name: string, data: Record<string, string> = {}): V1ConfigMap => ({ metadata: { name, namespace: ns.name }, data });

describe('Informer against a real API server', () => {
  test(
    'keeps an exact cache across a kube-apiserver restart',
    async () => {
      for (let i = 0; i < 5; i++) await client.create(coreResources.configMaps, configMap(`before-${i}`, { i: String(i) }));
      const informer = Informer.forResource<V1ConfigMap>(client, coreResources.configMaps, { namespace: ns.name, logger, backoff: quickBackoff });
      const ledger = new CallbackLedger<V1ConfigMap>();
      informer.addEventHandler(ledger);
      informer.start();
      try {
        expect(await informer.waitForSync()).toBe(true);
        await expectConverged(informer, ledger, coreResources.configMaps);
        // Changed just before the restart, without waiting for the informer to see it.
        const changedBefore = await client.get<V1ConfigMap>(coreResources.configMaps, 'before-0', { namespace: ns.name });
        await client.update(coreResources.configMaps, { ...changedBefore, data: { i: 'changed before restart' } });

        await restartE2eApiServer();

        for (let i = 0; i < 3; i++) {
          await retrying(`create after-${i}`, () => client.create(coreResources.configMaps, configMap(`after-${i}`)));
        }
        const changedAfter = await client.get<V1ConfigMap>(coreResources.configMaps, 'before-1', { namespace: ns.name });
        await client.update(coreResources.configMaps, { ...changedAfter, data: { i: 'changed after restart' } });
        await client.delete(coreResources.configMaps, 'before-2', { namespace: ns.name });

        await expectConverged(informer, ledger, coreResources.configMaps);
        expect(informer.getByName('before-0', ns.name)?.data).toEqual({ i: 'changed before restart' });
        expect(informer.getByName('before-1', ns.name)?.data).toEqual({ i: 'changed after restart' });
        expect(informer.getByName('before-2', ns.name)).toBeUndefined();
        expect(informer.keys().filter((key) => key.includes('/after-'))).toHaveLength(3);
        // The namespace's own kube-root-ca.crt plus ours: each object exactly once.
        expect(informer.keys()).toHaveLength(1 + 5 + 3 - 1);
      } finally {
        await informer.stop();
      }
    },
    TIMEOUT_MS,
  );

  test(
    'relists on a real 410 Gone after etcd compaction, and converges',
    async () => {
      // Events are the resource the API server watches straight from etcd (its watch cache is off
      // for them by default), so a watch from a compacted revision reaches etcd and is refused.
      const source = new InterruptibleSource(new KubeListWatchSource<CoreV1Event>(client, coreResources.events, { namespace: ns.name }));
      const informer = new Informer<CoreV1Event>({ source, logger, backoff: quickBackoff });
      const ledger = new CallbackLedger<CoreV1Event>();
      informer.addEventHandler(ledger);
      informer.start();
      try {
        expect(await informer.waitForSync()).toBe(true);
        for (let i = 0; i < 3; i++) await client.create(coreResources.events, event(`early-${i}`));
        await expectConverged(informer, ledger, coreResources.events);
        const staleVersion = informer.lastResourceVersion();

        // The connection drops; while the informer is away, objects change and etcd compacts.
        source.disconnect();
        await waitUntil('the informer to wait for its next watch', () => source.waiting);
        await client.create(coreResources.events, event('missed-0'));
        await client.create(coreResources.events, event('missed-1'));
        await client.delete(coreResources.events, 'early-0', { namespace: ns.name });
        const updated = await client.get<CoreV1Event>(coreResources.events, 'early-1', { namespace: ns.name });
        await client.update(coreResources.events, { ...updated, count: 2, message: 'seen twice' });
        const compactedAt = await compactE2eEtcd();
        expect(Number(staleVersion)).toBeLessThan(compactedAt);

        ledger.seen.length = 0;
        source.resume();
        await expectConverged(informer, ledger, coreResources.events);

        expect(source.expired).toEqual([expect.objectContaining({ code: 410, reason: 'Expired', message: expect.stringMatching(/too old/) })]);
        expect(source.lists).toBe(2);
        const [firstWatch, resumedWatch, afterRelist] = source.watchResourceVersions;
        expect(resumedWatch).toBe(staleVersion);
        expect(Number(afterRelist)).toBeGreaterThanOrEqual(compactedAt);
        expect(Number(firstWatch)).toBeLessThan(Number(staleVersion));
        // The relist reported exactly what the informer had missed.
        expect([...ledger.seen].sort()).toEqual([`add ${ns.name}/missed-0`, `add ${ns.name}/missed-1`, `delete ${ns.name}/early-0`, `update ${ns.name}/early-1`]);
        expect(informer.getByName('early-1', ns.name)?.message).toBe('seen twice');

        // And the watch opened after the relist delivers new changes.
        await client.create(coreResources.events, event('after-relist'));
        await expectConverged(informer, ledger, coreResources.events);
        expect(source.expired).toHaveLength(1);
      } finally {
        source.resume();
        await informer.stop();
      }
    },
    TIMEOUT_MS,
  );
});

/** A core/v1 Event about a ConfigMap of the test namespace. */
function event(name: string): CoreV1Event {
  return {
    metadata: { name, namespace: ns.name },
    involvedObject: { apiVersion: 'v1', kind: 'ConfigMap', name: 'subject', namespace: ns.name },
    type: 'Normal',
    reason: 'Tested',
    message: name,
    source: { component: 'nfv-e2e' },
  };
}

/**
 * The real {@link KubeListWatchSource} with a switch to drop the informer's watch connection and
 * hold its next watch until {@link resume}, like a network partition; it records every 410 the
 * server answers. Nothing is mocked: lists and watches go to the API server unchanged.
 */
class InterruptibleSource<T extends KubeObject> implements ListWatchSource<T> {
  readonly description: string;
  lists = 0;
  /** resourceVersion of every watch opened, in order. */
  readonly watchResourceVersions: string[] = [];
  /** The Status of every 410 the server answered, as an ERROR event or a refused watch. */
  readonly expired: StatusBody[] = [];
  /** Whether a watch is held, waiting for {@link resume}. */
  waiting = false;
  private connection?: AbortController;
  private held?: { promise: Promise<void>; release: () => void };

  constructor(private readonly inner: ListWatchSource<T>) {
    this.description = `${inner.description} (interruptible)`;
  }

  list(signal: AbortSignal): Promise<ListResult<T>> {
    this.lists++;
    return this.inner.list(signal);
  }

  async *watch(resourceVersion: string, signal: AbortSignal): AsyncGenerator<WatchEvent<T>> {
    if (this.held) {
      this.waiting = true;
      const aborted = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      await Promise.race([this.held.promise, aborted]);
      this.waiting = false;
      if (signal.aborted) return;
    }
    this.watchResourceVersions.push(resourceVersion);
    const connection = new AbortController();
    const cut = () => connection.abort();
    signal.addEventListener('abort', cut, { once: true });
    this.connection = connection;
    try {
      for await (const event of this.inner.watch(resourceVersion, connection.signal)) {
        if (event.type === 'ERROR' && event.object.code === 410) this.expired.push(event.object);
        yield event;
      }
    } catch (err) {
      if (isGone(err)) this.expired.push({ code: err.code, reason: err.reason, message: err.message });
      throw err;
    } finally {
      signal.removeEventListener('abort', cut);
    }
  }

  /** Cuts the open watch; the informer's next watch waits for {@link resume}. */
  disconnect(): void {
    let release!: () => void;
    const promise = new Promise<void>((resolve) => (release = resolve));
    this.held = { promise, release };
    this.connection?.abort();
  }

  /** Lets the held watch go ahead. */
  resume(): void {
    this.held?.release();
    this.held = undefined;
  }
}

describe('the operator across an API server restart', () => {
  let f: NfvFixture;
  beforeAll(async () => {
    f = await startNfvFixture('resilience-op', { nodes: 1 });
  }, TIMEOUT_MS);
  afterAll(async () => {
    await f?.close();
  }, TIMEOUT_MS);

  test(
    'a VNF created after the restart is placed and becomes Ready, beside one placed before it',
    async () => {
      await f.create(f.vnf('before-restart'));
      await f.waitForCondition('before-restart', 'Ready', 'True');

      await restartE2eApiServer();

      await retrying('create VNF after-restart', () => f.create(f.vnf('after-restart')));
      const placed = await f.waitForCondition('after-restart', 'Placed', 'True', 'Allocated', 90_000);
      await f.waitForCondition('after-restart', 'Ready', 'True', undefined, 90_000);
      expect((await f.get('before-restart')).status!.conditions!.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True' });

      // One ledger entry each, on disjoint CPUs: the restart made nobody forget or repeat a write.
      const ledger = await f.client.get<NfvNode>(resources.nfvNodes, placed.status!.placement!.node);
      const entries = ledger.status!.allocations!.filter((a) => a.vnf.startsWith(`${f.ns.name}/`));
      expect(entries.map((a) => a.vnf).sort()).toEqual([`${f.ns.name}/after-restart`, `${f.ns.name}/before-restart`]);
      const [a, b] = entries.map((entry) => parseCpuList(entry.cpus));
      expect(a!.filter((cpu) => b!.includes(cpu))).toEqual([]);
    },
    TIMEOUT_MS,
  );
});

describe('LeaderElector against a real Lease', () => {
  test(
    'two electors: exactly one leads; stop() releases and the other takes over at once',
    async () => {
      const leaseName = 'resilience-leader';
      // Takeover by expiry would need 15 s; a release lets the standby in on its next retry.
      const timing = { leaseDurationSeconds: 15, renewDeadlineMs: 5000, retryPeriodMs: 400 };
      const startedAt = new Map<string, number>();
      const stoppedAt = new Map<string, number>();
      const elector = (identity: string) =>
        new LeaderElector({
          client,
          namespace: ns.name,
          name: leaseName,
          identity,
          logger,
          ...timing,
          onStartedLeading: () => startedAt.set(identity, Date.now()),
          onStoppedLeading: () => stoppedAt.set(identity, Date.now()),
        });
      const electors = new Map([
        ['replica-a', elector('replica-a')],
        ['replica-b', elector('replica-b')],
      ]);
      const leaders = () => [...electors].filter(([, e]) => e.isLeader()).map(([identity]) => identity);
      const runs = [...electors.values()].map((e) => e.run());
      try {
        const leaderId = await waitUntil('a leader', () => leaders()[0], { timeoutMs: 30_000, intervalMs: 20 });
        const standbyId = leaderId === 'replica-a' ? 'replica-b' : 'replica-a';
        const leader = electors.get(leaderId)!;
        const standby = electors.get(standbyId)!;

        // For several renewals, never two leaders and never a change of holder.
        const until = Date.now() + 4 * timing.retryPeriodMs * 1.2;
        while (Date.now() < until) {
          expect(leaders()).toEqual([leaderId]);
          await new Promise((resolve) => setTimeout(resolve, 25));
        }
        const held = await client.get<Lease>(coreResources.leases, leaseName, { namespace: ns.name });
        expect(held.spec).toMatchObject({ holderIdentity: leaderId, leaseDurationSeconds: 15, leaseTransitions: 0 });
        expect(standby.currentLeader()).toBe(leaderId);
        expect([...startedAt.keys()]).toEqual([leaderId]);

        const releasedAt = Date.now();
        await leader.stop();
        expect(leader.isLeader()).toBe(false);
        expect(stoppedAt.has(leaderId)).toBe(true);
        await waitUntil('the standby to take over', () => standby.isLeader(), { timeoutMs: 10_000, intervalMs: 20 });
        const takeoverMs = Date.now() - releasedAt;
        expect(takeoverMs).toBeLessThan(3 * timing.retryPeriodMs * 1.2 + 1000);

        const taken = await client.get<Lease>(coreResources.leases, leaseName, { namespace: ns.name });
        expect(taken.spec).toMatchObject({ holderIdentity: standbyId, leaseTransitions: 1 });
        expect(startedAt.get(standbyId)!).toBeGreaterThanOrEqual(stoppedAt.get(leaderId)!);
        expect(leaders()).toEqual([standbyId]);
      } finally {
        await Promise.all([...electors.values()].map((e) => e.stop()));
        await Promise.all(runs);
      }
      const released = await client.get<Lease>(coreResources.leases, leaseName, { namespace: ns.name });
      expect(released.spec?.holderIdentity).toBe('');
    },
    TIMEOUT_MS,
  );
});

describe('EventRecorder against a real API server', () => {
  test(
    'writes Events that the API serves back, for namespaced and cluster-scoped objects',
    async () => {
      const recorder = new EventRecorder(client, { component: 'nfv-operator', instance: 'nfv-operator-e2e', logger });
      const subject = await client.create<V1ConfigMap>(coreResources.configMaps, configMap('event-subject'));
      await recorder.record(subject, { type: 'Warning', reason: 'HugepagesUnavailable', message: `no 1Gi pages: ${'x'.repeat(3000)}` });

      const { items } = await client.list<CoreV1Event>(coreResources.events, {
        namespace: ns.name,
        fieldSelector: `involvedObject.uid=${subject.metadata!.uid}`,
      });
      expect(items).toHaveLength(1);
      expect(items[0]).toMatchObject({
        metadata: { namespace: ns.name, name: expect.stringMatching(/^event-subject\./) },
        involvedObject: { kind: 'ConfigMap', name: 'event-subject', namespace: ns.name, uid: subject.metadata!.uid },
        type: 'Warning',
        reason: 'HugepagesUnavailable',
        count: 1,
        source: { component: 'nfv-operator' },
        reportingComponent: 'nfv-operator',
        reportingInstance: 'nfv-operator-e2e',
      });
      expect(items[0]!.message).toHaveLength(1024);
      expect(items[0]!.message!.startsWith('no 1Gi pages: ')).toBe(true);

      // A cluster-scoped object's Events live in `default`, where kubectl describe looks for them.
      const namespaceRef: ResourceRef = { group: '', version: 'v1', plural: 'namespaces', kind: 'Namespace', namespaced: false };
      const namespace = await client.get<V1Namespace>(namespaceRef, ns.name);
      await recorder.record(namespace, { type: 'Normal', reason: 'Observed', message: 'recorded by the e2e suite' });
      const inDefault = await client.list<CoreV1Event>(coreResources.events, {
        namespace: 'default',
        fieldSelector: `involvedObject.uid=${namespace.metadata!.uid}`,
      });
      try {
        expect(inDefault.items).toHaveLength(1);
        expect(inDefault.items[0]).toMatchObject({ involvedObject: { kind: 'Namespace', name: ns.name }, type: 'Normal', reason: 'Observed' });
      } finally {
        for (const item of inDefault.items) await client.delete(coreResources.events, item.metadata!.name!, { namespace: 'default' });
      }
    },
    TIMEOUT_MS,
  );
});
