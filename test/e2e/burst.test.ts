import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { VirtualNetworkFunction } from '../../src/api/virtual-network-function.js';
import { resources } from '../../src/controllers/resources.js';
import { findCondition } from '../../src/runtime/conditions.js';
import { auditAllocations } from '../cluster/allocation-audit.js';
import { e2eCluster } from '../cluster/e2e-env.js';
import { startNfvFixture, startOperator, type NfvFixture } from '../cluster/nfv-fixture.js';
import { spawnOperator, type OperatorProcess } from '../cluster/operator-process.js';
import { waitUntil } from '../cluster/wait-until.js';

const VNFS = 200;
let f: NfvFixture;
let logDir: string;
let operator: OperatorProcess | undefined;

beforeAll(async () => {
  // 16 nodes x 2 NUMA x 7 isolated cores: 224 slots of 2 CPUs on whole cores for 200 VNFs.
  f = await startNfvFixture('burst', { nodes: 16, operator: false, poolSpec: { pagesPerNumaNode: 8 } });
  logDir = mkdtempSync(join(tmpdir(), 'nfv-burst-logs-'));
});
afterAll(async () => {
  await operator?.kill('SIGTERM');
  f.operator = startOperator(f.kc, 'burst-cleanup');
  await f?.close();
  rmSync(logDir, { recursive: true, force: true });
});

const countPlaced = async () => {
  const { items } = await f.client.list<VirtualNetworkFunction>(resources.vnfs, { namespace: f.ns.name });
  return items.filter((v) => v.status?.placement).length;
};

test(`SIGKILL of the controller in the middle of a ${VNFS}-VNF burst loses and doubles nothing`, async () => {
  const kubeconfig = e2eCluster().kubeconfigPath;
  operator = spawnOperator(kubeconfig, 'burst-1', logDir, { NFV_WORKERS: '8' });
  const creating = (async () => {
    for (let i = 0; i < VNFS; i += 20) {
      await Promise.all(Array.from({ length: 20 }, (_, j) => f.create(f.vnf(`vnf-${String(i + j).padStart(3, '0')}`))));
    }
  })();
  await waitUntil('a quarter of the burst to be placed', async () => (await countPlaced()) >= VNFS / 4, { timeoutMs: 120_000, intervalMs: 50 });
  expect(await operator.kill('SIGKILL')).toBe('SIGKILL');
  await creating;
  const atKill = await countPlaced();
  expect(atKill).toBeLessThan(VNFS);

  operator = spawnOperator(kubeconfig, 'burst-2', logDir, { NFV_WORKERS: '8' });
  await waitUntil(
    `all ${VNFS} VNFs Ready`,
    async () => {
      const { items } = await f.client.list<VirtualNetworkFunction>(resources.vnfs, { namespace: f.ns.name });
      return items.length === VNFS && items.every((v) => findCondition(v.status?.conditions, 'Ready')?.status === 'True');
    },
    { timeoutMs: 240_000, intervalMs: 500 },
  );
  const audit = await auditAllocations(f.client, f.nodeNames, f.ns.name);
  expect(audit.problems).toEqual([]);
  expect(audit.entries).toBe(VNFS);
  expect(audit.placed).toBe(VNFS);
});
