/**
 * Starts a local cluster with N KWOK nodes and keeps it up until Ctrl-C (or SIGTERM).
 *
 *   npx tsx test/cluster/start-cluster.ts [--nodes 3] [--node-prefix kwok-node]
 *
 * Prints the admin kubeconfig path on stdout once the cluster is ready (logs go to stderr), so
 * `export KUBECONFIG=$(npx tsx test/cluster/start-cluster.ts &)`-style scripting works.
 *
 * With `--supervised` (used by the e2e global setup) it instead prints one JSON line
 * (`E2eClusterInfo`), moves its own log into the cluster's temp dir so it never writes to a pipe
 * whose reader is gone, serves a loopback control endpoint (POST `<controlUrl>/restart-apiserver`),
 * and stops the cluster when its parent process dies.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pino, type DestinationStream } from 'pino';
import type { E2eClusterInfo } from './e2e-env.js';
import { createKwokNodes, kwokNodeSpecs } from './kwok-nodes.js';
import { LocalCluster } from './local-cluster.js';

/** A log destination that can be moved after start (stderr first, a file once supervised). */
class MovableDestination implements DestinationStream {
  target: { write(chunk: string): unknown } = process.stderr;
  write(chunk: string): void {
    this.target.write(chunk);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', default: '3' },
      'node-prefix': { type: 'string', default: 'kwok-node' },
      supervised: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const nodeCount = Number(values.nodes);
  if (!Number.isInteger(nodeCount) || nodeCount < 0) throw new Error(`--nodes must be a whole number, got "${values.nodes}"`);
  const supervised = values.supervised;

  const destination = new MovableDestination();
  // A reader that went away must not crash the cluster's owner in the middle of a stop.
  process.stderr.on('error', () => undefined);
  const logger = pino({ name: 'start-cluster', level: process.env['NFV_CLUSTER_LOG_LEVEL'] ?? 'info' }, destination);

  // Filled in as start-up proceeds; a signal may arrive at any point of it.
  const running: { cluster?: LocalCluster; control?: Server } = {};
  let stopping = false;
  const shutdown = (why: string, code: number): void => {
    if (stopping) {
      // A second Ctrl-C: the exit handler of LocalCluster SIGKILLs what is left.
      process.exit(130);
    }
    stopping = true;
    logger.info({ why }, 'stopping the local cluster');
    running.control?.close();
    void (running.cluster?.stop() ?? Promise.resolve()).then(
      () => process.exit(code),
      (err: unknown) => {
        logger.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => shutdown(signal, 0));
  if (supervised) {
    const parent = process.ppid;
    const watch = setInterval(() => {
      if (process.ppid === parent) return;
      clearInterval(watch);
      shutdown(`parent process ${parent} exited`, 0);
    }, 500);
  }

  const cluster = await LocalCluster.start({ logger, handleSignals: false });
  running.cluster = cluster;
  if (stopping) {
    await cluster.stop();
    return;
  }
  const kc = cluster.kubeConfig();
  const nodes = kwokNodeSpecs(nodeCount, values['node-prefix'], { labels: { 'nfv.dev/e2e-shared': 'true' } });
  await createKwokNodes(kc, nodes);
  logger.info({ nodes: nodes.length, kubeconfig: cluster.kubeconfigPath, startupMs: cluster.startupMs }, 'local cluster ready');

  if (!supervised) {
    process.stdout.write(`${cluster.kubeconfigPath}\n`);
    process.stderr.write(`\nexport KUBECONFIG=${cluster.kubeconfigPath}\nPress Ctrl-C to stop the cluster.\n`);
    return;
  }

  const token = randomBytes(16).toString('hex');
  const control = createServer((req, res) => {
    if (req.method === 'POST' && req.url === `/${token}/restart-apiserver`) {
      cluster.restartApiServer().then(
        () => res.writeHead(204).end(),
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
      return;
    }
    res.writeHead(404).end();
  });
  running.control = control;
  await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve));
  const address = control.address();
  if (!address || typeof address !== 'object') throw new Error('control endpoint has no port');

  const info: E2eClusterInfo = {
    kubeconfigPath: cluster.kubeconfigPath,
    server: cluster.server,
    kubernetesVersion: cluster.tools.versions.kubernetes,
    nodeNames: nodes.map((n) => n.name),
    controlUrl: `http://127.0.0.1:${address.port}/${token}`,
    supervisorPid: process.pid,
    tmpDir: cluster.tmpDir,
    startupMs: cluster.startupMs,
  };
  destination.target = createWriteStream(path.join(cluster.tmpDir, 'start-cluster.log'), { flags: 'a' });
  process.stdout.write(`${JSON.stringify(info)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`start-cluster: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
