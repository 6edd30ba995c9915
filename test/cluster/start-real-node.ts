/**
 * Joins this machine to a running local cluster as a real node and keeps it until SIGINT or
 * SIGTERM, then stops it cleanly.
 *
 *   node --import tsx test/cluster/start-real-node.ts --kubeconfig <admin.kubeconfig> \
 *     --pki-dir <cluster tmpDir>/pki [--name nfv-real-0] [--image nfv-operator/debian:bookworm]...
 *
 * Prints one JSON line on stdout once the node is Ready (name, dir, devicePluginDir, address,
 * cgroupRoot); logs go to stderr. A SIGKILL leaves the cleanup to the next start's reaper.
 */
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { RealNode } from './real-node.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      kubeconfig: { type: 'string' },
      'pki-dir': { type: 'string' },
      name: { type: 'string' },
      image: { type: 'string', multiple: true, default: [] },
    },
    strict: true,
  });
  if (!values.kubeconfig || !values['pki-dir']) throw new Error('--kubeconfig and --pki-dir are required');
  const logger = pino({ name: 'start-real-node', level: process.env['NFV_CLUSTER_LOG_LEVEL'] ?? 'info' }, pino.destination(2));
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(values.kubeconfig);
  const server = kubeConfig.getCurrentCluster()?.server;
  if (!server) throw new Error(`${values.kubeconfig} names no cluster server`);

  const node = await RealNode.start({ server, pkiDir: values['pki-dir'], kubeConfig, name: values.name, images: values.image, logger });
  const { name, devicePluginDir, address, cgroupRoot } = node;
  process.stdout.write(`${JSON.stringify({ name, dir: node.layout.dir, devicePluginDir, address, cgroupRoot })}\n`);

  let stopping = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping the real node');
    node.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'the real node did not stop cleanly');
        process.exit(1);
      },
    );
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, shutdown);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
