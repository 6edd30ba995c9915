/**
 * The operator's metrics endpoint with a real operator, API server, scheduler and KWOK node: after
 * a VNF is placed, `/metrics` counts the reconciles and reports the node's CPUs, hugepages and
 * NICs exactly as the NfvNode ledger holds them; `/healthz` and `/readyz` answer. And the operator
 * process (`src/main.ts`) serves them on NFV_METRICS_ADDRESS, ready even as a standby.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCpuList } from '../../src/api/cpu-list.js';
import type { NfvNode } from '../../src/api/nfv-node.js';
import { resources } from '../../src/controllers/resources.js';
import { MetricsServer } from '../../src/metrics/http-server.js';
import { PROMETHEUS_TEXT_CONTENT_TYPE } from '../../src/metrics/prometheus-text.js';
import { LeaderElector } from '../../src/runtime/leader-election.js';
import { e2eCluster } from '../cluster/e2e-env.js';
import { freeLoopbackPorts } from '../cluster/loopback-ports.js';
import { startNfvFixture, testLogger, type NfvFixture } from '../cluster/nfv-fixture.js';
import { spawnOperator } from '../cluster/operator-process.js';
import { waitUntil } from '../cluster/wait-until.js';

/** Jest 30 does not apply the project's testTimeout per project, so each hook and test says its own. */
const TIMEOUT_MS = 180_000;
const GiB = 2 ** 30;
// One NUMA node, 4 cores × 2 threads, core 0 left to the host: 6 isolated CPUs, 2 NICs, 4 × 1Gi pages.
const shape = { numaNodes: 1, coresPerNuma: 4, threadsPerCore: 2 };

let f: NfvFixture;
let server: MetricsServer;
let baseUrl: string;

beforeAll(async () => {
  f = await startNfvFixture('metrics', { nodes: 1, shape });
  server = new MetricsServer({ address: '127.0.0.1:0', registry: f.operator!.metrics, readiness: f.operator!.readiness, logger: testLogger() });
  baseUrl = (await server.start()).url;
}, TIMEOUT_MS);

afterAll(async () => {
  await server?.stop();
  await f?.close();
}, TIMEOUT_MS);

/** One sample line of a text exposition. */
interface ScrapedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the sample lines of a Prometheus text exposition (HELP and TYPE lines skipped). */
function parseExposition(text: string): ScrapedSample[] {
  return text
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!match) throw new Error(`not a sample line: ${line}`);
      const labels: Record<string, string> = {};
      for (const [, label, value] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
        labels[label!] = value!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      }
      const value = match[3] === '+Inf' ? Infinity : Number(match[3]);
      return { name: match[1]!, labels, value };
    });
}

async function scrape(url = baseUrl): Promise<ScrapedSample[]> {
  const res = await fetch(`${url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe(PROMETHEUS_TEXT_CONTENT_TYPE);
  return parseExposition(await res.text());
}

/** The value of the one series of `name` with exactly these labels, or undefined. */
function valueOf(samples: ScrapedSample[], name: string, labels: Record<string, string>): number | undefined {
  const matching = samples.filter(
    (s) => s.name === name && Object.keys(s.labels).length === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (matching.length > 1) throw new Error(`${name}${JSON.stringify(labels)} matches ${matching.length} series`);
  return matching[0]?.value;
}

/** What the metrics must say about a node, computed straight from its NfvNode as the API serves it. */
function expectedFromLedger(nfvNode: NfvNode, pool: string): Record<string, number> {
  const status = nfvNode.status!;
  const allocations = status.allocations ?? [];
  const heldCpus = new Set(allocations.flatMap((a) => parseCpuList(a.cpus)));
  const isolated = status.inventory!.cpus.filter((cpu) => cpu.isolated).map((cpu) => cpu.id);
  const heldNics = allocations.flatMap((a) => a.devices.map((d) => d.pciAddress));
  const claimedBytes = allocations.filter((a) => a.hugepages.pool === pool && a.numaNode === 0).reduce((sum, a) => sum + a.hugepages.bytes, 0);
  const reservedPages = status.hugepagePools!.find((r) => r.pool === pool && r.numaNode === 0)!.allocated;
  return {
    cpusUsed: heldCpus.size,
    cpusFree: isolated.filter((id) => !heldCpus.has(id)).length,
    hugepagesUsed: claimedBytes,
    hugepagesFree: reservedPages * GiB - claimedBytes,
    devicesUsed: heldNics.length,
    devicesFree: status.inventory!.nics.length - heldNics.length,
  };
}

function scrapedForNode(samples: ScrapedSample[], node: string, pool: string): Record<string, number | undefined> {
  const pages = (state: string) => valueOf(samples, 'nfv_operator_node_hugepages_bytes', { node, pool, page_size: '1Gi', numa_node: '0', state });
  return {
    cpusUsed: valueOf(samples, 'nfv_operator_node_cpus', { node, state: 'used' }),
    cpusFree: valueOf(samples, 'nfv_operator_node_cpus', { node, state: 'free' }),
    hugepagesUsed: pages('used'),
    hugepagesFree: pages('free'),
    devicesUsed: valueOf(samples, 'nfv_operator_node_devices', { node, state: 'used' }),
    devicesFree: valueOf(samples, 'nfv_operator_node_devices', { node, state: 'free' }),
  };
}

/** Scrapes until the node's figures match its ledger on the API server, then returns the scrape. */
async function waitForMetricsToMatchLedger(node: string): Promise<{ samples: ScrapedSample[]; expected: Record<string, number> }> {
  let last: unknown;
  try {
    return await waitUntil(
      `metrics of ${node} to match its ledger`,
      async () => {
        const expected = expectedFromLedger(await f.client.get<NfvNode>(resources.nfvNodes, node), f.pool);
        const samples = await scrape();
        last = { expected, scraped: scrapedForNode(samples, node, f.pool) };
        return JSON.stringify(scrapedForNode(samples, node, f.pool)) === JSON.stringify(expected) ? { samples, expected } : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last comparison: ${JSON.stringify(last)}`);
  }
}

describe('operator metrics endpoint', () => {
  test(
    'after a VNF is placed, /metrics counts reconciles and reports the node allocations of the ledger',
    async () => {
      await f.create(f.vnf('fwd', { interfaces: [{ name: 'uplink', device: { pool: 'fast' }, driver: 'vfio-pci' }] }));
      const ready = await f.waitForCondition('fwd', 'Ready', 'True');
      const node = ready.status!.placement!.node;

      const { samples, expected } = await waitForMetricsToMatchLedger(node);
      // 2 CPUs on a whole core, 1Gi of 1Gi pages and one NIC, from 6 CPUs, 4 pages and 2 NICs.
      expect(expected).toEqual({ cpusUsed: 2, cpusFree: 4, hugepagesUsed: GiB, hugepagesFree: 3 * GiB, devicesUsed: 1, devicesFree: 1 });
      expect(scrapedForNode(samples, node, f.pool)).toEqual(expected);

      for (const controller of ['vnf', 'hugepagepool']) {
        const byResult = ['success', 'requeue_after', 'waiting', 'stalled', 'error'].map(
          (result) => valueOf(samples, 'nfv_operator_reconcile_total', { controller, result }) ?? NaN,
        );
        expect(byResult.every(Number.isInteger)).toBe(true);
        const total = byResult.reduce((a, b) => a + b, 0);
        expect(valueOf(samples, 'nfv_operator_reconcile_total', { controller, result: 'success' })).toBeGreaterThan(0);
        // Every reconcile is one observation of the duration histogram.
        expect(valueOf(samples, 'nfv_operator_reconcile_duration_seconds_count', { controller })).toBe(total);
        expect(valueOf(samples, 'nfv_operator_reconcile_duration_seconds_bucket', { controller, le: '+Inf' })).toBe(total);
        expect(valueOf(samples, 'nfv_operator_reconcile_errors_total', { controller })).toBeGreaterThanOrEqual(0);
        expect(valueOf(samples, 'nfv_operator_workqueue_depth', { controller })).toBeGreaterThanOrEqual(0);
      }
      expect(valueOf(samples, 'nfv_operator_leader', {})).toBe(1);

      expect(await (await fetch(`${baseUrl}/healthz`)).text()).toBe('ok\n');
      const readyz = await fetch(`${baseUrl}/readyz`);
      expect(readyz.status).toBe(200);
      expect(await readyz.text()).toBe('ok: leading, 5 informers synced\n');
    },
    TIMEOUT_MS,
  );

  test(
    'deleting the VNF frees its CPUs, pages and NIC in the metrics',
    async () => {
      const node = (await f.get('fwd')).status!.placement!.node;
      await f.deleteAndWait('fwd');
      const { expected } = await waitForMetricsToMatchLedger(node);
      expect(expected).toEqual({ cpusUsed: 0, cpusFree: 6, hugepagesUsed: 0, hugepagesFree: 4 * GiB, devicesUsed: 0, devicesFree: 2 });
    },
    TIMEOUT_MS,
  );
});

describe('the operator process', () => {
  test(
    'serves /metrics, /healthz and /readyz on NFV_METRICS_ADDRESS, and a standby is ready',
    async () => {
      // This test holds the operator's Lease, so the process stays a standby for its whole life.
      let leading!: () => void;
      const led = new Promise<void>((resolve) => (leading = resolve));
      const holding = new LeaderElector({
        client: f.client,
        namespace: f.ns.name,
        name: 'nfv-operator-leader',
        identity: 'e2e-holder',
        logger: testLogger(),
        onStartedLeading: () => leading(),
      });
      const campaign = holding.run();
      await led;

      const logDir = mkdtempSync(join(tmpdir(), 'nfv-metrics-e2e-'));
      const [port] = await freeLoopbackPorts(1);
      const url = `http://127.0.0.1:${port}`;
      const operator = spawnOperator(e2eCluster().kubeconfigPath, 'metrics-standby', logDir, {
        POD_NAMESPACE: f.ns.name,
        NFV_METRICS_ADDRESS: `127.0.0.1:${port}`,
      });
      try {
        const readyz = await waitUntil('the standby process to answer /readyz', async () => {
          const res = await fetch(`${url}/readyz`);
          return { status: res.status, body: await res.text() };
        }, { timeoutMs: 60_000, intervalMs: 200 });
        expect(readyz).toEqual({ status: 200, body: 'ok: standby, waiting for the leader lease\n' });
        expect(await (await fetch(`${url}/healthz`)).text()).toBe('ok\n');
        const samples = await scrape(url);
        expect(valueOf(samples, 'nfv_operator_leader', {})).toBe(0);
        // A standby runs no controllers and fills no cache: nothing to report but the leader gauge.
        expect(samples.filter((s) => s.name.startsWith('nfv_operator_node_'))).toEqual([]);

        expect(await operator.kill('SIGTERM')).toBe('0');
        await expect(fetch(`${url}/healthz`)).rejects.toThrow();
      } catch (err) {
        throw new Error(`${(err as Error).message}\noperator log:\n${readFileSync(join(logDir, 'metrics-standby.log'), 'utf8').slice(-4000)}`);
      } finally {
        await operator.kill('SIGKILL');
        await holding.stop();
        await campaign;
        rmSync(logDir, { recursive: true, force: true });
      }
    },
    TIMEOUT_MS,
  );
});
