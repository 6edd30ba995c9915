/**
 * What an operator of the cluster sees with the real kubectl (built at the pinned Kubernetes
 * version) against a Ready VNF: the printer columns, the `nfv` category, the short names,
 * `kubectl wait` on the Ready condition, and `kubectl explain` printing the zod descriptions.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { e2eCluster } from '../cluster/e2e-env.js';
import { startNfvFixture, type NfvFixture } from '../cluster/nfv-fixture.js';
import { resolveClusterTools } from '../cluster/tools.js';
import { waitUntil } from '../cluster/wait-until.js';

const run = promisify(execFile);
const VNF = 'fwd';

let f: NfvFixture;
let kubectlPath: string;

/** Runs kubectl against the shared cluster; resolves with stdout, rejects with stderr. */
async function kubectl(...args: string[]): Promise<string> {
  const { stdout } = await run(kubectlPath, ['--kubeconfig', e2eCluster().kubeconfigPath, ...args], { timeout: 90_000 });
  return stdout;
}

/** The rows of a `kubectl get` table, split on runs of spaces (no column here holds a space). */
function table(text: string): string[][] {
  return text
    .trim()
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => line.trim().split(/\s+/));
}

beforeAll(async () => {
  kubectlPath = (await resolveClusterTools()).kubectl;
  f = await startNfvFixture('kubectl', { nodes: 1 });
  await f.create(f.vnf(VNF));
  await f.waitForCondition(VNF, 'Ready', 'True', 'Running');
});

afterAll(async () => {
  await f?.close();
});

describe('kubectl with nfv-operator', () => {
  test('kubectl get vnf shows Phase, Ready, Node, NUMA, CPUs and Age', async () => {
    const vnf = await f.get(VNF);
    const placement = vnf.status!.placement!;
    const rows = table(await kubectl('get', 'vnf', '-n', f.ns.name));
    expect(rows[0]).toEqual(['NAME', 'PHASE', 'READY', 'NODE', 'NUMA', 'CPUS', 'AGE']);
    expect(rows).toHaveLength(2);
    expect(rows[1]!.slice(0, 6)).toEqual([VNF, 'Running', 'True', placement.node, String(placement.numaNode), placement.cpus]);
    expect(rows[1]![6]).toMatch(/^\d+[smhd]/);
  });

  test('kubectl get nfv lists the VNFs, HugepagePools and NfvNodes (the category)', async () => {
    const names = (await kubectl('get', 'nfv', '-n', f.ns.name, '-o', 'name')).trim().split('\n');
    expect(names).toContain(`virtualnetworkfunction.nfv.dev/${VNF}`);
    expect(names).toContain(`hugepagepool.nfv.dev/${f.pool}`);
    for (const node of f.nodeNames) expect(names).toContain(`nfvnode.nfv.dev/${node}`);
    // As a table, one per kind, each with the kind's own columns.
    const text = await kubectl('get', 'nfv', '-n', f.ns.name);
    expect(text).toMatch(/^NAME\s+PHASE\s+READY\s+NODE\s+NUMA\s+CPUS\s+AGE$/m);
    expect(text).toMatch(/^NAME\s+PAGE SIZE\s+REQUESTED\s+ALLOCATED\s+CLAIMED\s+FREE\s+DEGRADED\s+AGE$/m);
    expect(text).toMatch(/^NAME\s+THREADS\/CORE\s+AGENT\s+READY\s+AGE$/m);
  });

  test('the short names vnf, vnfs, hpp and nfvn work', async () => {
    expect((await kubectl('get', 'vnf', VNF, '-n', f.ns.name, '-o', 'name')).trim()).toBe(`virtualnetworkfunction.nfv.dev/${VNF}`);
    expect((await kubectl('get', 'vnfs', VNF, '-n', f.ns.name, '-o', 'name')).trim()).toBe(`virtualnetworkfunction.nfv.dev/${VNF}`);
    expect((await kubectl('get', 'hpp', f.pool, '-o', 'name')).trim()).toBe(`hugepagepool.nfv.dev/${f.pool}`);
    expect((await kubectl('get', 'nfvn', f.nodeNames[0]!, '-o', 'name')).trim()).toBe(`nfvnode.nfv.dev/${f.nodeNames[0]}`);
    // The pool's columns come with its short name too: 4 pages on each of 2 NUMA nodes, 1 claimed.
    const pool = table(await kubectl('get', 'hpp', f.pool));
    expect(pool[1]!.slice(0, 7)).toEqual([f.pool, '1Gi', '8', '8', '1', '7', 'False']);
  });

  test('kubectl wait --for=condition=Ready vnf/NAME succeeds', async () => {
    const out = await kubectl('wait', '--for=condition=Ready', `vnf/${VNF}`, '-n', f.ns.name, '--timeout=60s');
    expect(out.trim()).toBe(`virtualnetworkfunction.nfv.dev/${VNF} condition met`);
  });

  test('kubectl explain vnf.spec.hugepages documents the fields', async () => {
    // The API server publishes a new CRD's OpenAPI a moment after it is established.
    const out = await waitUntil('kubectl explain to know the VNF kind', () => kubectl('explain', 'vnf.spec.hugepages'), { timeoutMs: 30_000, intervalMs: 500 });
    // kubectl wraps descriptions at 80 columns.
    const flat = out.replace(/\s+/g, ' ');
    expect(flat).toMatch(/KIND: VirtualNetworkFunction/);
    expect(flat).toMatch(/FIELD: hugepages <Object>/);
    expect(flat).toContain('Hugepages, taken from a HugepagePool on the NUMA node of the CPUs. Immutable.');
    expect(flat).toContain('amount <string> -required- Hugepage memory for the VNF, a multiple of pageSize, e.g. 2Gi.');
    expect(flat).toContain('pageSize <string> -required- enum: 2Mi, 1Gi Hugepage size: 2Mi or 1Gi.');
    expect(flat).toContain('pool <string> -required- Name of the HugepagePool to draw the pages from; its pageSize must match.');
  });
});
