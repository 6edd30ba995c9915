import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { VirtualNetworkFunction } from '../../src/api/virtual-network-function.js';
import { resources } from '../../src/controllers/resources.js';
import { findCondition } from '../../src/runtime/conditions.js';
import type { Lease } from '../../src/runtime/leader-election.js';
import { auditAllocations } from '../cluster/allocation-audit.js';
import { e2eCluster } from '../cluster/e2e-env.js';
import { startNfvFixture, startOperator, type NfvFixture, type OperatorReplica } from '../cluster/nfv-fixture.js';
import { spawnOperator, type OperatorProcess } from '../cluster/operator-process.js';
import { waitUntil } from '../cluster/wait-until.js';

let f: NfvFixture;
let logDir: string;
const processes: OperatorProcess[] = [];
const replicas: OperatorReplica[] = [];
// Short leases so failover takes seconds, not the production 15 s.
const fastLease = { NFV_LEASE_DURATION_SECONDS: '3', NFV_LEASE_RENEW_DEADLINE_MS: '2000', NFV_LEASE_RETRY_PERIOD_MS: '300' };

beforeAll(async () => {
  f = await startNfvFixture('replicas', { nodes: 1, operator: false, shape: { numaNodes: 1, coresPerNuma: 4, threadsPerCore: 2 } });
  logDir = mkdtempSync(join(tmpdir(), 'nfv-operator-logs-'));
});
afterEach(async () => {
  await Promise.all(processes.splice(0).map((p) => p.kill('SIGTERM')));
  await Promise.all(replicas.splice(0).map((r) => r.stop()));
});
afterAll(async () => {
  replicas.push(startOperator(f.kc, 'replicas-cleanup'));
  f.operator = replicas[0];
  await f?.close();
  rmSync(logDir, { recursive: true, force: true });
});

const placedVnfs = async () => {
  const { items } = await f.client.list<VirtualNetworkFunction>(resources.vnfs, { namespace: f.ns.name });
  return items;
};

describe('two controller replicas', () => {
  test('both active without leader election, eight VNFs racing for three slots never share a CPU', async () => {
    replicas.push(startOperator(f.kc, 'racer-a'), startOperator(f.kc, 'racer-b'));
    const names = Array.from({ length: 8 }, (_, i) => `race-${i}`);
    await Promise.all(names.map((name) => f.create(f.vnf(name))));
    // Without election both replicas write status; one may briefly report Placed=False from a
    // cache that has not seen the other's ledger write yet, and converges on the next ledger event.
    const settled = await waitUntil('every racer decided and the three slots taken', async () => {
      const racers = (await placedVnfs()).filter((v) => v.metadata.name!.startsWith('race-'));
      const decided = racers.filter((v) => findCondition(v.status?.conditions, 'Placed')?.observedGeneration === 1);
      const placedNow = decided.filter((v) => findCondition(v.status?.conditions, 'Placed')?.status === 'True');
      return decided.length === 8 && placedNow.length >= 3 ? decided : undefined;
    });
    const placed = settled.filter((v) => findCondition(v.status?.conditions, 'Placed')?.status === 'True');
    expect(placed).toHaveLength(3);
    expect(new Set(placed.map((v) => v.status!.placement!.cpus))).toEqual(new Set(['1,5', '2,6', '3,7']));
    const audit = await auditAllocations(f.client, f.nodeNames, f.ns.name);
    expect(audit.problems).toEqual([]);
    expect(audit.entries).toBe(3);
    await Promise.all(names.map((name) => f.deleteAndWait(name)));
  });

  test('with leader election exactly one leads, and the other takes over when the leader is killed', async () => {
    const env = { POD_NAMESPACE: f.ns.name, ...fastLease };
    processes.push(spawnOperator(e2eCluster().kubeconfigPath, 'replica-a', logDir, env), spawnOperator(e2eCluster().kubeconfigPath, 'replica-b', logDir, env));
    const holder = () => f.client.get<Lease>(resources.leases, 'nfv-operator-leader', { namespace: f.ns.name }).then((l) => l.spec?.holderIdentity);
    const first = await waitUntil('a leader', async () => (await holder()) || undefined, { timeoutMs: 30_000 });
    await f.create(f.vnf('before-failover'));
    await f.waitForCondition('before-failover', 'Ready', 'True');

    const leader = processes.find((p) => p.identity === first)!;
    expect(await leader.kill('SIGKILL')).toBe('SIGKILL');
    await f.create(f.vnf('after-failover'));
    const second = await waitUntil('the other replica to lead', async () => {
      const now = await holder();
      return now && now !== first ? now : undefined;
    }, { timeoutMs: 30_000 });
    expect(second).toBe(first === 'replica-a' ? 'replica-b' : 'replica-a');
    const placed = await f.waitForCondition('after-failover', 'Ready', 'True', undefined, 30_000);
    expect(placed.status!.placement!.cpus).not.toBe((await f.get('before-failover')).status!.placement!.cpus);
    expect((await auditAllocations(f.client, f.nodeNames, f.ns.name)).problems).toEqual([]);
    await Promise.all(['before-failover', 'after-failover'].map((name) => f.deleteAndWait(name)));
  });
});
