/**
 * `npm run bench:scale`: VNFs on simulated nodes against the real local control plane.
 *
 * Prints, for the operator: p50/p95/p99 from create to Placed and to pod created, throughput,
 * API requests per VNF, CPU seconds and peak RSS of the operator process; and the raw limit of the
 * same cluster: a client creating the same VNF objects and pods directly, without the controller.
 *
 * BENCH_VNFS (default 1000), BENCH_NODES (default 100), BENCH_WORKERS (operator workers, default 8).
 */
import type { V1Pod } from '@kubernetes/client-node';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { API_VERSION, NFV_NODE_LABEL } from '../../src/api/group.js';
import type { NfvNode } from '../../src/api/nfv-node.js';
import type { VirtualNetworkFunction } from '../../src/api/virtual-network-function.js';
import { resources } from '../../src/controllers/resources.js';
import { findCondition } from '../../src/runtime/conditions.js';
import { Informer } from '../../src/runtime/informer.js';
import { KubeClient } from '../../src/runtime/kube-client.js';
import { installCrds } from '../../test/cluster/install-crds.js';
import { createKwokNodes, kwokNodeSpecs } from '../../test/cluster/kwok-nodes.js';
import { LocalCluster } from '../../test/cluster/local-cluster.js';
import { spawnOperator } from '../../test/cluster/operator-process.js';
import { SimulatedAgent } from '../../test/cluster/simulated-agent.js';
import { waitUntil } from '../../test/cluster/wait-until.js';
import { percentile, runBounded } from './stats.js';

const VNFS = Number(process.env.BENCH_VNFS ?? 1000);
const NODES = Number(process.env.BENCH_NODES ?? 100);
const WORKERS = process.env.BENCH_WORKERS ?? '8';
const CREATE_CONCURRENCY = 32;
const logger = pino({ level: 'warn' });
const say = (text: string) => process.stdout.write(`${text}\n`);

function vnfManifest(namespace: string, name: string): VirtualNetworkFunction {
  return {
    apiVersion: API_VERSION,
    kind: 'VirtualNetworkFunction',
    metadata: { name, namespace },
    spec: { image: 'nfv-operator/l2fwd:22.11', cpus: { count: 2, fullCores: true }, hugepages: { pageSize: '1Gi', amount: '1Gi', pool: 'gold' }, interfaces: [], links: [] },
  };
}

/** Records when each name was first seen satisfying `done` through a watch. */
function recordFirstSeen<T extends { metadata?: { name?: string } }>(informer: Informer<T>, done: (obj: T) => boolean, into: Map<string, number>) {
  const check = (obj: T) => {
    const name = obj.metadata?.name;
    if (name && !into.has(name) && done(obj)) into.set(name, performance.now());
  };
  informer.addEventHandler({ onAdd: check, onUpdate: (_old, obj) => check(obj) });
}

function latencies(created: Map<string, number>, seen: Map<string, number>): number[] {
  return [...seen].map(([name, at]) => (at - created.get(name)!) / 1000).sort((a, b) => a - b);
}

const fmt = (seconds: number[]) => ['50', '95', '99'].map((p) => `p${p} ${percentile(seconds, Number(p)).toFixed(2)}s`).join('  ');

async function main(): Promise<void> {
  say(`bench:scale: ${VNFS} VNFs on ${NODES} simulated nodes`);
  const cluster = await LocalCluster.start({ logger, handleSignals: true });
  const logDir = mkdtempSync(join(tmpdir(), 'nfv-bench-scale-'));
  try {
    const kc = cluster.kubeConfig();
    const client = new KubeClient(kc, { userAgent: 'nfv-bench' });
    await installCrds(client);
    const specs = kwokNodeSpecs(NODES, 'bench-node').map((spec) => ({ ...spec, labels: { [NFV_NODE_LABEL]: 'true' } }));
    await createKwokNodes(kc, specs, { concurrency: 32, timeoutMs: 180_000 });
    const agent = new SimulatedAgent(kc, logger);
    agent.addNodes(specs.map(({ name }) => ({ name })));
    await agent.start();
    await client.apply(
      resources.hugepagePools,
      { apiVersion: API_VERSION, kind: 'HugepagePool', metadata: { name: 'gold' }, spec: { pageSize: '1Gi', pagesPerNumaNode: 8 } },
      { fieldManager: 'nfv-bench', force: true },
    );
    await waitUntil(`${NODES} NfvNodes with pool pages`, async () => {
      const { items } = await client.list<NfvNode>(resources.nfvNodes);
      return items.filter((n) => (n.status?.hugepagePools?.length ?? 0) > 0).length === NODES;
    }, { timeoutMs: 180_000, intervalMs: 500 });
    for (const ns of ['raw', 'bench']) await client.create(resources.namespaces, { metadata: { name: ns } });

    // The raw limit: the same objects created by a client directly, no controller in the loop.
    const rawCreated = new Map<string, number>();
    const rawPods = new Map<string, number>();
    const rawPodInformer = Informer.forResource<V1Pod>(client, resources.pods, { logger, namespace: 'raw' });
    recordFirstSeen(rawPodInformer, () => true, rawPods);
    rawPodInformer.start();
    await rawPodInformer.waitForSync();
    const rawStart = performance.now();
    await runBounded(VNFS, CREATE_CONCURRENCY, async (i) => {
      const name = `vnf-${i}`;
      rawCreated.set(name, performance.now());
      await client.create(resources.vnfs, vnfManifest('raw', name));
      await client.create(resources.pods, {
        metadata: { name, namespace: 'raw' },
        spec: { nodeName: specs[i % NODES]!.name, containers: [{ name: 'vnf', image: 'nfv-operator/l2fwd:22.11' }] },
      } as V1Pod);
    });
    await waitUntil('raw pods', () => rawPods.size === VNFS, { timeoutMs: 300_000 });
    const rawSeconds = (performance.now() - rawStart) / 1000;
    await rawPodInformer.stop();
    // The operator must not find the raw VNFs: it would place them too.
    await client.delete(resources.namespaces, 'raw');
    await waitUntil('raw VNFs gone', async () => (await client.list(resources.vnfs, { namespace: 'raw' })).items.length === 0, { timeoutMs: 120_000, intervalMs: 500 });

    // The operator, in its own process so its CPU and memory are its own.
    const operator = spawnOperator(cluster.kubeconfigPath, 'bench-operator', logDir, { NFV_WORKERS: WORKERS, LOG_LEVEL: 'info' });
    const created = new Map<string, number>();
    const placed = new Map<string, number>();
    const podCreated = new Map<string, number>();
    const vnfInformer = Informer.forResource<VirtualNetworkFunction>(client, resources.vnfs, { logger, namespace: 'bench' });
    const podInformer = Informer.forResource<V1Pod>(client, resources.pods, { logger, namespace: 'bench' });
    recordFirstSeen(vnfInformer, (v) => findCondition(v.status?.conditions, 'Placed')?.status === 'True', placed);
    recordFirstSeen(podInformer, () => true, podCreated);
    vnfInformer.start();
    podInformer.start();
    await Promise.all([vnfInformer.waitForSync(), podInformer.waitForSync()]);
    const start = performance.now();
    await runBounded(VNFS, CREATE_CONCURRENCY, async (i) => {
      const name = `vnf-${i}`;
      created.set(name, performance.now());
      await client.create(resources.vnfs, vnfManifest('bench', name));
    });
    await waitUntil(`${VNFS} VNFs placed with pods`, () => placed.size === VNFS && podCreated.size === VNFS, { timeoutMs: 600_000, intervalMs: 200 });
    const seconds = (Math.max(...placed.values(), ...podCreated.values()) - start) / 1000;
    const [cpuSeconds, peakRssMiB] = processUsage(operator.child.pid!);
    await operator.kill('SIGTERM');
    await Promise.all([vnfInformer.stop(), podInformer.stop(), agent.stop()]);
    const requests = operatorRequests(join(logDir, 'bench-operator.log'));

    say('');
    say(`operator (${WORKERS} workers), ${VNFS} VNFs on ${NODES} nodes:`);
    say(`  create -> Placed        ${fmt(latencies(created, placed))}`);
    say(`  create -> pod created   ${fmt(latencies(created, podCreated))}`);
    say(`  throughput              ${(VNFS / seconds).toFixed(1)} VNFs/s (${seconds.toFixed(1)} s for all placed with pods)`);
    say(`  API requests per VNF    ${(requests.total / VNFS).toFixed(2)} (${Object.entries(requests.byVerb).map(([verb, n]) => `${verb} ${n}`).join(', ')})`);
    say(`  operator CPU            ${cpuSeconds.toFixed(1)} s (${((cpuSeconds / seconds) * 100).toFixed(0)}% of one core while placing)`);
    say(`  operator peak RSS       ${peakRssMiB.toFixed(0)} MiB`);
    say(`raw limit: a client creating the same ${VNFS} VNF objects and ${VNFS} pods directly, no controller:`);
    say(`  create -> pod created   ${fmt(latencies(rawCreated, rawPods))}`);
    say(`  throughput              ${(VNFS / rawSeconds).toFixed(1)} VNFs/s (${rawSeconds.toFixed(1)} s), 2 requests per VNF`);
    client.close();
  } finally {
    await cluster.stop();
    rmSync(logDir, { recursive: true, force: true });
  }
}

// utime + stime from /proc/<pid>/stat (clock ticks of 1/100 s), VmHWM from /proc/<pid>/status.
function processUsage(pid: number): [number, number] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / 100;
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return [cpuSeconds, Number(hwm) / 1024];
}

function operatorRequests(logFile: string): { total: number; byVerb: Record<string, number> } {
  const line = readFileSync(logFile, 'utf8').split('\n').reverse().find((l) => l.includes('"operator stopped"'));
  const byVerb = (line ? (JSON.parse(line) as { apiRequests: Record<string, number> }).apiRequests : {}) ?? {};
  return { total: Object.values(byVerb).reduce((a, b) => a + b, 0), byVerb };
}

main().catch((error) => {
  process.stderr.write(`bench:scale failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
