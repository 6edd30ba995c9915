/**
 * A HugepagePool on the real API server shows when a node's kubelet does not advertise the pages
 * the agent reserved: kubelet reads the hugepage capacity only at its start, so a kubelet started
 * before the reservation leaves them unschedulable until it restarts. One node's simulated kubelet
 * behaves as if restarted, the other as if started before the pool; both nodes hold as many
 * boot-time pages as pool pages, so the stale kubelet advertises exactly the pool's count and only a
 * comparison with everything the kernel holds finds it. Restarting that kubelet clears the
 * condition through the Node watch (the controller's resync is 10 minutes away).
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { V1Node } from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { NFV_NODE_LABEL } from '../../src/api/group.js';
import type { HugepagePool } from '../../src/api/hugepage-pool.js';
import { resources } from '../../src/controllers/resources.js';
import { findCondition, type Condition } from '../../src/runtime/conditions.js';
import { e2eCluster } from '../cluster/e2e-env.js';
import { createKwokNodes } from '../cluster/kwok-nodes.js';
import { SUITE_LABEL, startNfvFixture, type NfvFixture } from '../cluster/nfv-fixture.js';
import { resolveClusterTools } from '../cluster/tools.js';
import { waitUntil } from '../cluster/wait-until.js';

const SUITE = 'hpp-kubelet';
/** 4 boot-time 1Gi pages per NUMA node, and the fixture's pool reserves 4 more on each. */
const SHAPE = { numaNodes: 2, hugepages1GiPerNuma: 4 };
const FRESH = `${SUITE}-node-0`;
const STALE = `${SUITE}-node-1`;

let f: NfvFixture;

async function poolWith(description: string, accept: (conditions: readonly Condition[]) => boolean): Promise<HugepagePool> {
  return waitUntil(
    description,
    async () => {
      const pool = await f.client.get<HugepagePool>(resources.hugepagePools, f.pool);
      return accept(pool.status?.conditions ?? []) ? pool : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 200 },
  );
}

const has = (type: string, status: string, reason: string) => (conditions: readonly Condition[]) =>
  findCondition(conditions, type)?.status === status && findCondition(conditions, type)?.reason === reason;

async function allocatable1Gi(node: string): Promise<string | undefined> {
  return (await f.client.get<V1Node>(resources.nodes, node)).status?.allocatable?.['hugepages-1Gi'];
}

beforeAll(async () => {
  f = await startNfvFixture(SUITE, { nodes: 1, shape: SHAPE });
  await createKwokNodes(f.kc, [{ name: STALE, labels: { [SUITE_LABEL]: SUITE, [NFV_NODE_LABEL]: 'true' } }]);
  f.nodeNames.push(STALE);
  f.agent.addNodes([{ name: STALE, shape: SHAPE, kubeletStartedBeforePools: true }]);
});

afterAll(async () => {
  await f?.close();
});

describe('HugepagePool KubeletAdvertised against a real API server', () => {
  test('a kubelet started before the reservation: KubeletAdvertised and Ready are False with KubeletRestartRequired, naming that node only', async () => {
    const pool = await poolWith('the pool to flag the stale kubelet', has('KubeletAdvertised', 'False', 'KubeletRestartRequired'));
    expect(pool.status).toMatchObject({ requested: 16, allocated: 16 });
    const advertised = findCondition(pool.status!.conditions, 'KubeletAdvertised')!;
    expect(advertised.message).toMatch(new RegExp(`^kubelet on ${STALE} advertises 8 of the 16 1Gi pages its kernel holds\\. .*: restart kubelet on ${STALE} \\(systemctl restart kubelet\\)`));
    expect(advertised.message).not.toContain(FRESH);
    expect(advertised.observedGeneration).toBe(pool.metadata.generation);
    expect(findCondition(pool.status!.conditions, 'Ready')).toMatchObject({ status: 'False', reason: 'KubeletRestartRequired', message: advertised.message });
    expect(findCondition(pool.status!.conditions, 'Degraded')).toMatchObject({ status: 'False' });
    expect([await allocatable1Gi(FRESH), await allocatable1Gi(STALE)]).toEqual(['16Gi', '8Gi']);
  });

  test('kubectl get hpp -o wide shows Ready and its reason', async () => {
    const { kubectl } = await resolveClusterTools();
    const { stdout } = await promisify(execFile)(kubectl, ['--kubeconfig', e2eCluster().kubeconfigPath, 'get', 'hpp', f.pool, '-o', 'wide'], { timeout: 90_000 });
    const [header, row] = stdout.trim().split('\n').map((line) => line.trim().split(/\s{2,}/));
    expect(header).toEqual(['NAME', 'PAGE SIZE', 'REQUESTED', 'ALLOCATED', 'CLAIMED', 'FREE', 'DEGRADED', 'READY', 'REASON', 'AGE']);
    expect(row!.slice(0, 9)).toEqual([f.pool, '1Gi', '16', '16', '0', '16', 'False', 'False', 'KubeletRestartRequired']);
  });

  test('restarting that kubelet clears both by themselves', async () => {
    f.agent.restartKubelet(STALE);
    const pool = await poolWith('the pool to see the restarted kubelet', has('KubeletAdvertised', 'True', 'PagesAdvertised'));
    expect(findCondition(pool.status!.conditions, 'Ready')).toMatchObject({ status: 'True', reason: 'Reserved' });
    expect(await allocatable1Gi(STALE)).toBe('16Gi');
  });
});
