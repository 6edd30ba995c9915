/**
 * The operator process. Configuration comes from the environment, as the Helm chart sets it:
 *   KUBECONFIG            kubeconfig file; in a pod the service account is used
 *   POD_NAME              replica identity for leader election (default: hostname + pid)
 *   POD_NAMESPACE         namespace of the leader Lease; leader election is off without it
 *   NFV_STATE_ROOT        directory of the node agents' host paths (default /var/lib/nfv-operator)
 *   NFV_GATE_IMAGE        image of the pods' init gate (default: each VNF's image)
 *   NFV_WORKERS           VNF reconcile workers (default 4)
 *   LOG_LEVEL             pino level (default info)
 *   NFV_METRICS_ADDRESS   [host]:port of /metrics, /healthz and /readyz (default :8080, every
 *                         interface); 0 turns the endpoint off
 *   NFV_LEASE_DURATION_SECONDS, NFV_LEASE_RENEW_DEADLINE_MS, NFV_LEASE_RETRY_PERIOD_MS
 *                         leader election timing (defaults 15 s, 10 s, 2 s)
 */
import { KubeConfig } from '@kubernetes/client-node';
import { hostname } from 'node:os';
import pino from 'pino';
import { MetricsServer } from './metrics/http-server.js';
import { createOperator } from './operator.js';

function env(name: string): number | undefined {
  const value = process.env[name];
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0) throw new Error(`${name}=${value}: expected a positive number`);
  return number;
}

const logger = pino({ level: process.env.LOG_LEVEL ?? 'info', base: { component: 'nfv-operator' } });
const kubeConfig = new KubeConfig();
kubeConfig.loadFromDefault();

const { manager, metrics, readiness, client } = createOperator({
  kubeConfig,
  logger,
  identity: process.env.POD_NAME ?? `${hostname()}-${process.pid}`,
  ...(process.env.POD_NAMESPACE ? { leaseNamespace: process.env.POD_NAMESPACE } : {}),
  ...(process.env.NFV_STATE_ROOT ? { stateRoot: process.env.NFV_STATE_ROOT } : {}),
  ...(process.env.NFV_GATE_IMAGE ? { gateImage: process.env.NFV_GATE_IMAGE } : {}),
  ...(process.env.NFV_WORKERS ? { workers: Number(process.env.NFV_WORKERS) } : {}),
  leaseTiming: {
    ...(env('NFV_LEASE_DURATION_SECONDS') !== undefined ? { leaseDurationSeconds: env('NFV_LEASE_DURATION_SECONDS') } : {}),
    ...(env('NFV_LEASE_RENEW_DEADLINE_MS') !== undefined ? { renewDeadlineMs: env('NFV_LEASE_RENEW_DEADLINE_MS') } : {}),
    ...(env('NFV_LEASE_RETRY_PERIOD_MS') !== undefined ? { retryPeriodMs: env('NFV_LEASE_RETRY_PERIOD_MS') } : {}),
  },
});

const metricsAddress = process.env.NFV_METRICS_ADDRESS ?? ':8080';
const metricsServer = metricsAddress === '0' ? undefined : new MetricsServer({ address: metricsAddress, registry: metrics, readiness, logger });
// Listening before the campaign starts, so a standby answers its probes too; a port that cannot be
// bound ends the process here, before it could take the lease.
try {
  await metricsServer?.start();
} catch (err) {
  logger.fatal({ err }, 'cannot serve metrics: set NFV_METRICS_ADDRESS to a free [host]:port, or to 0 to turn the endpoint off');
  process.exit(1);
}

const reason = await manager.run();
await metricsServer?.stop();
logger.info({ reason, apiRequests: client.requestCounts() }, 'operator stopped');
// A replica that lost leadership exits so that its pod restarts as a clean follower.
process.exit(reason === 'leadershipLost' ? 1 : 0);
