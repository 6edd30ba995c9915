/**
 * `npm run demo`: the operator for real on an embedded local cluster.
 *
 * Starts etcd, kube-apiserver, kube-scheduler, kube-controller-manager and KWOK (built once from
 * the Go module proxy), three simulated NFV nodes with the simulated node agent, installs the
 * CRDs, runs the operator, applies examples/ and shows the VNFs converging in a live table.
 * Ctrl-C stops everything and removes the cluster's temp dir.
 *
 * With KUBECONFIG set it runs the operator against that cluster instead (no simulated nodes:
 * the real node agents must run there).
 *
 * Environment: NFV_DEMO_NODES (default 3), NFV_DEMO_EXIT_WHEN_READY=1 to stop once every VNF is
 * Ready (used by the test of this demo), LOG_LEVEL for the operator log (written to a file).
 */
import { KubeConfig } from '@kubernetes/client-node';
import { once } from 'node:events';
import { createWriteStream, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { NFV_NODE_LABEL } from '../src/api/group.js';
import type { VirtualNetworkFunction } from '../src/api/virtual-network-function.js';
import { resources } from '../src/controllers/resources.js';
import { createOperator } from '../src/operator.js';
import { findCondition } from '../src/runtime/conditions.js';
import { KubeClient } from '../src/runtime/kube-client.js';
import { applyManifests } from '../test/cluster/apply-manifests.js';
import { installCrds } from '../test/cluster/install-crds.js';
import { createKwokNodes, kwokNodeSpecs } from '../test/cluster/kwok-nodes.js';
import { LocalCluster } from '../test/cluster/local-cluster.js';
import { SimulatedAgent } from '../test/cluster/simulated-agent.js';
import { repoRoot } from '../test/cluster/tools.js';
import { renderVnfTable } from './vnf-table.js';

const say = (text: string) => process.stderr.write(`${text}\n`);
const logDir = mkdtempSync(join(tmpdir(), 'nfv-demo-'));
const logFile = join(logDir, 'operator.log');
const logger = pino({ level: process.env.LOG_LEVEL ?? 'info' }, createWriteStream(logFile));
const cleanups: (() => Promise<unknown>)[] = [];

async function main(): Promise<void> {
  let kubeConfig: KubeConfig;
  if (process.env.KUBECONFIG) {
    kubeConfig = new KubeConfig();
    kubeConfig.loadFromDefault();
    say(`using the cluster of KUBECONFIG (${kubeConfig.getCurrentCluster()?.server})`);
  } else {
    say('starting the local cluster (the first run builds Kubernetes from the Go module proxy)...');
    const cluster = await LocalCluster.start({ logger: logger.child({ component: 'local-cluster' }), handleSignals: false });
    cleanups.unshift(() => cluster.stop());
    kubeConfig = cluster.kubeConfig();
    await installCrdsWith(kubeConfig);
    const count = Number(process.env.NFV_DEMO_NODES ?? 3);
    const specs = kwokNodeSpecs(count, 'nfv-node').map((spec) => ({ ...spec, labels: { [NFV_NODE_LABEL]: 'true' } }));
    await createKwokNodes(kubeConfig, specs);
    const agent = new SimulatedAgent(kubeConfig, logger.child({ component: 'simulated-agent' }));
    agent.addNodes(specs.map(({ name }) => ({ name })));
    await agent.start();
    cleanups.unshift(() => agent.stop());
    say(`cluster ${cluster.server} with ${count} simulated NFV nodes (2 NUMA nodes, 16 cores, 4 NICs each); KUBECONFIG=${cluster.kubeconfigPath}`);
  }
  const client = await installCrdsWith(kubeConfig);
  const operator = createOperator({ kubeConfig, logger, identity: 'demo', shutdownSignals: [] });
  const running = operator.manager.run();
  cleanups.unshift(async () => {
    await operator.manager.stop();
    await running;
    operator.client.close();
  });
  const examples = join(repoRoot(), 'examples');
  const files = readdirSync(examples).filter((f) => f.endsWith('.yaml')).sort().map((f) => join(examples, f));
  await applyManifests(client, files, 'nfv-demo');
  say(`applied ${files.length} files of examples/; operator log: ${logFile}; Ctrl-C stops everything`);

  const interrupted = once(process, 'SIGINT').then(() => 'interrupted');
  const terminated = once(process, 'SIGTERM').then(() => 'interrupted');
  let last = '';
  for (;;) {
    const { items } = await client.list<VirtualNetworkFunction>(resources.vnfs);
    const table = renderVnfTable(items);
    if (table !== last) {
      if (process.stdout.isTTY) process.stdout.write('\x1b[2J\x1b[H');
      process.stdout.write(`${new Date().toISOString()}\n${table}\n\n`);
      last = table;
    }
    const allReady = items.length > 0 && items.every((v) => findCondition(v.status?.conditions, 'Ready')?.status === 'True');
    if (allReady && process.env.NFV_DEMO_EXIT_WHEN_READY === '1') {
      say(`all ${items.length} VNFs are Ready`);
      return;
    }
    const outcome = await Promise.race([interrupted, terminated, new Promise((resolve) => setTimeout(resolve, 500, 'tick'))]);
    if (outcome === 'interrupted') return;
  }
}

// The simulated agent and the operator watch the CRDs: they go in first.
async function installCrdsWith(kubeConfig: KubeConfig): Promise<KubeClient> {
  const client = new KubeClient(kubeConfig);
  cleanups.push(async () => client.close());
  await installCrds(client);
  return client;
}

async function shutdown(code: number): Promise<never> {
  say('stopping...');
  for (const cleanup of cleanups) await cleanup().catch((error) => say(`cleanup: ${String(error)}`));
  say('stopped cleanly');
  process.exit(code);
}

main().then(
  () => shutdown(0),
  (error) => {
    say(`demo failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return shutdown(1);
  },
);
