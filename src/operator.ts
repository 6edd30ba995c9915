import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { HugepagePool } from './api/hugepage-pool.js';
import { CONTROLLER_FIELD_MANAGER } from './api/group.js';
import { DEFAULT_STATE_ROOT } from './api/host-paths.js';
import type { NfvNode } from './api/nfv-node.js';
import type { VirtualNetworkFunction } from './api/virtual-network-function.js';
import { hugepagePoolController } from './controllers/hugepage-pool/controller.js';
import { resources } from './controllers/resources.js';
import { vnfController } from './controllers/vnf/controller.js';
import { LedgerOverlay } from './controllers/vnf/ledger-overlay.js';
import type { ReadinessCheck } from './metrics/http-server.js';
import { operatorMetricsCollector } from './metrics/operator-metrics.js';
import { MetricsRegistry } from './metrics/prometheus-text.js';
import { controllerReadiness } from './metrics/readiness.js';
import { ChildApplier } from './runtime/apply.js';
import { realClock, type Clock } from './runtime/clock.js';
import { EventRecorder } from './runtime/event-recorder.js';
import { Informer } from './runtime/informer.js';
import { KubeClient } from './runtime/kube-client.js';
import type { KubeObject, ResourceRef } from './runtime/kube-object.js';
import { Manager, type ManagerOptions } from './runtime/manager.js';
import { StatusWriter } from './runtime/status-writer.js';
import { VNF_NAME_LABEL } from './api/group.js';

/** Settings of the operator process. */
export interface OperatorOptions {
  kubeConfig: KubeConfig;
  logger: Logger;
  /** Unique per replica; the Lease holder identity. */
  identity: string;
  /** Lease namespace; leader election is off when undefined (single replica, tests). */
  leaseNamespace?: string;
  /** Lease name. Default `nfv-operator-leader`. */
  leaseName?: string;
  /** Lease timing, shortened by tests. */
  leaseTiming?: Pick<NonNullable<ManagerOptions['leaderElection']>, 'leaseDurationSeconds' | 'renewDeadlineMs' | 'retryPeriodMs'>;
  /** Directory under which node agents prepare host paths. Default /var/lib/nfv-operator. */
  stateRoot?: string;
  /** Image of the pods' init gate; default each VNF's own image. */
  gateImage?: string;
  /** VNF reconcile workers. Default 4. */
  workers?: number;
  clock?: Clock;
  /** Passed to the manager; tests turn off process signal handling. */
  signalSource?: ManagerOptions['signalSource'];
  shutdownSignals?: ManagerOptions['shutdownSignals'];
}

/** The running operator: its manager, its client for request counts, and what a metrics server serves. */
export interface Operator {
  manager: Manager;
  client: KubeClient;
  /** The NfvNode cache (inventories and allocation ledgers); filled only while this replica leads. */
  nfvNodes: Informer<NfvNode>;
  /** Reconcile, work queue, node allocation and leader metrics, collected at scrape time. */
  metrics: MetricsRegistry;
  /** `/readyz`: ready once the informers synced, or at once as a standby. */
  readiness: ReadinessCheck;
}

/** Wires informers, the VNF and HugepagePool controllers and leader election into a manager. */
export function createOperator(options: OperatorOptions): Operator {
  const { logger } = options;
  const clock = options.clock ?? realClock;
  const client = new KubeClient(options.kubeConfig, { logger: logger.child({ component: 'kube-client' }) });
  const informer = <T extends KubeObject>(ref: ResourceRef, labelSelector?: string) =>
    Informer.forResource<T>(client, ref, { logger, clock, ...(labelSelector ? { labelSelector } : {}) });
  const caches = {
    vnfs: informer<VirtualNetworkFunction>(resources.vnfs),
    pods: informer<V1Pod>(resources.pods, VNF_NAME_LABEL),
    pools: informer<HugepagePool>(resources.hugepagePools),
    nodes: informer<V1Node>(resources.nodes),
    nfvNodes: informer<NfvNode>(resources.nfvNodes),
  };
  const fieldManager = CONTROLLER_FIELD_MANAGER;
  const statusWriter = new StatusWriter(client, { fieldManager, logger });
  const manager = new Manager({
    logger,
    clock,
    ...(options.signalSource ? { signalSource: options.signalSource } : {}),
    ...(options.shutdownSignals ? { shutdownSignals: options.shutdownSignals } : {}),
    ...(options.leaseNamespace
      ? {
          leaderElection: {
            client,
            namespace: options.leaseNamespace,
            name: options.leaseName ?? 'nfv-operator-leader',
            identity: options.identity,
            ...options.leaseTiming,
          },
        }
      : {}),
  });
  manager.addInformer(...(Object.values(caches) as Informer<KubeObject>[]));
  manager.addController(
    vnfController({
      caches,
      overlay: new LedgerOverlay(),
      act: {
        client,
        children: new ChildApplier(client, { fieldManager }),
        statusWriter,
        events: new EventRecorder(client, { component: 'nfv-operator', instance: options.identity, logger, clock }),
        fieldManager,
      },
      logger,
      clock,
      stateRoot: options.stateRoot ?? DEFAULT_STATE_ROOT,
      ...(options.gateImage ? { gateImage: options.gateImage } : {}),
      ...(options.workers ? { workers: options.workers } : {}),
    }),
    hugepagePoolController({ pools: caches.pools, nodes: caches.nodes, nfvNodes: caches.nfvNodes, statusWriter, logger, clock }),
  );
  const isLeading = () => manager.isRunningWorkloads();
  const metrics = new MetricsRegistry().register(
    operatorMetricsCollector({ controllers: () => manager.metrics(), nfvNodes: () => caches.nfvNodes.list(), isLeader: isLeading }),
  );
  const readiness = controllerReadiness({ isLeading, informers: Object.values(caches) });
  return { manager, client, nfvNodes: caches.nfvNodes, metrics, readiness };
}
