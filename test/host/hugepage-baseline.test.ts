import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { readFileSync, writeFileSync } from 'node:fs';
import { posix } from 'node:path';
import pino from 'pino';
import type { V1Node } from '@kubernetes/client-node';
import type { HugepagePool } from '../../src/api/hugepage-pool.js';
import type { ReconcileContext } from '../../src/runtime/controller.js';
import { HugepageReservation } from '../../node-agent/host/hugepage-reservation.js';
import { createNodeHost } from '../../node-agent/host/node-host.js';
import { JournalStore } from '../../node-agent/journal.js';
import { nodeReconciler } from '../../node-agent/node-reconciler.js';
import { buildFakeMachine } from './helpers/fake-sysfs.js';
import { TempTree } from './helpers/host-fixtures.js';

// Pages reserved at boot (or by anyone else) belong to their owner: pools are reserved on top of
// them, and deleting the last pool gives back down to them, not to zero.
let tree: TempTree;
beforeAll(() => {
  tree = new TempTree('nfv-hugepage-baseline');
  buildFakeMachine(tree.path('sys'), tree.path('proc'), { numaNodes: 1, coresPerNode: 2, threadsPerCore: 1, isolated: [1] });
});
afterAll(() => tree.cleanup());

it('reserves pools on top of the boot reservation and gives back only its own pages', async () => {
  const nrHugepages = posix.join(tree.path('sys'), 'devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages');
  writeFileSync(nrHugepages, '7\n'); // reserved at boot
  const reservation = new HugepageReservation(tree.path('sys'), { procRoot: tree.path('proc'), attempts: 1, retryDelayMs: 1, compactBeforeRetry: false });
  const host = createNodeHost({ sysfs: tree.path('sys'), proc: tree.path('proc') }, { overrides: { reservation } });
  let pools: HugepagePool[] = [{ apiVersion: 'nfv.dev/v1alpha1', kind: 'HugepagePool', metadata: { name: 'small' }, spec: { pageSize: '2Mi', pagesPerNumaNode: 5 } }];
  const applied: { status?: { hugepagePools?: unknown[] } }[] = [];
  const node: V1Node = { metadata: { name: 'worker-1', uid: 'node-uid-1' } };
  const reconcile = nodeReconciler({
    nodeName: 'worker-1',
    stateRoot: tree.path('state'),
    host,
    journals: new JournalStore(tree.path('state')),
    agentVersion: 'test',
    nicPools: [],
    clock: { now: () => Date.parse('2025-01-01T00:00:00Z'), setTimer: () => ({ cancel: () => undefined }) },
    client: { apply: async (_ref, obj) => (applied.push(structuredClone(obj) as (typeof applied)[number]), obj) },
    getNode: () => node,
    getNfvNode: () => undefined,
    listPools: () => pools,
    onInventory: () => undefined,
    recheckMs: 60_000,
  });
  const context: ReconcileContext = { key: 'worker-1', name: 'worker-1', reconcileId: 't', logger: pino({ level: 'silent' }), signal: new AbortController().signal, failures: 0 };
  const kernelPages = () => Number(readFileSync(nrHugepages, 'utf8'));

  await reconcile('worker-1', context);
  expect(kernelPages()).toBe(12);
  expect(applied.at(-1)!.status!.hugepagePools).toEqual([{ pool: 'small', pageSize: '2Mi', numaNode: 0, requested: 5, allocated: 5 }]);

  // A restart keeps the baseline it recorded: it does not take the pool's pages for boot pages.
  await reconcile('worker-1', context);
  expect(kernelPages()).toBe(12);

  pools = [];
  await reconcile('worker-1', context);
  expect(kernelPages()).toBe(7);
  expect(readFileSync(posix.join(tree.path('state'), 'hugepage-baselines.json'), 'utf8')).toBe('{}');
});
