/**
 * One e2e test file's NFV world on the shared cluster: the CRDs, a namespace, KWOK nodes labelled
 * for this suite only (so suites never place on each other's nodes), a HugepagePool over them,
 * the simulated agent, and the operator running in-process against the real API server.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { EventEmitter } from 'node:events';
import pino, { type Logger } from 'pino';
import { API_VERSION, NFV_NODE_LABEL } from '../../src/api/group.js';
import type { HugepagePool, HugepagePoolSpec } from '../../src/api/hugepage-pool.js';
import type { VirtualNetworkFunction } from '../../src/api/virtual-network-function.js';
import { resources } from '../../src/controllers/resources.js';
import { createOperator, type Operator, type OperatorOptions } from '../../src/operator.js';
import { findCondition } from '../../src/runtime/conditions.js';
import { KubeClient } from '../../src/runtime/kube-client.js';
import { e2eKubeConfig, createTestNamespace, type TestNamespace } from './e2e-env.js';
import { installCrds } from './install-crds.js';
import { createKwokNodes, deleteKwokNodes, kwokNodeSpecs } from './kwok-nodes.js';
import { SimulatedAgent, type SimulatedNode } from './simulated-agent.js';
import { waitUntil } from './wait-until.js';

/** Label that ties nodes, pools and VNFs to one suite. */
export const SUITE_LABEL = 'nfv.dev/e2e-suite';

/** Test logger: silent unless LOG_LEVEL is set. */
export function testLogger(): Logger {
  return pino({ level: process.env.LOG_LEVEL ?? 'silent' });
}

/** An operator replica started in-process. */
export interface OperatorReplica extends Operator {
  done: Promise<string>;
  stop(): Promise<void>;
}

/** Starts an operator replica; `leaseNamespace` turns leader election on. */
export function startOperator(kubeConfig: KubeConfig, identity: string, extra: Partial<OperatorOptions> = {}): OperatorReplica {
  const operator = createOperator({ kubeConfig, logger: testLogger().child({ replica: identity }), identity, signalSource: new EventEmitter(), shutdownSignals: [], ...extra });
  const done = operator.manager.run();
  return {
    ...operator,
    done,
    async stop() {
      await operator.manager.stop();
      await done;
      operator.client.close();
    },
  };
}

/** What a suite works with. */
export interface NfvFixture {
  kc: KubeConfig;
  client: KubeClient;
  ns: TestNamespace;
  suite: string;
  nodeNames: string[];
  agent: SimulatedAgent;
  operator: OperatorReplica | undefined;
  /** Name of the suite's 1Gi pool. */
  pool: string;
  /** Adds simulated NFV nodes to the suite. */
  addNodes(names: string[], shape?: SimulatedNode['shape']): Promise<void>;
  /** A VNF manifest of this suite: 2 CPUs, 1Gi of 1Gi pages, nodeSelector on the suite. */
  vnf(name: string, spec?: Partial<VirtualNetworkFunction['spec']>): VirtualNetworkFunction;
  create(vnf: VirtualNetworkFunction): Promise<VirtualNetworkFunction>;
  get(name: string): Promise<VirtualNetworkFunction>;
  /** Waits until the VNF's condition `type` has `status` (and `reason`, if given). */
  waitForCondition(name: string, type: string, status: string, reason?: string, timeoutMs?: number): Promise<VirtualNetworkFunction>;
  /** Deletes a VNF and waits until it is gone. */
  deleteAndWait(name: string): Promise<void>;
  close(): Promise<void>;
}

/** Waits until the VNF `name`, read with `get`, has condition `type` with `status` (and `reason`, if given). */
export function waitForVnfCondition(
  get: (name: string) => Promise<VirtualNetworkFunction>,
  name: string,
  type: string,
  status: string,
  reason?: string,
  timeoutMs = 60_000,
): Promise<VirtualNetworkFunction> {
  return waitUntil(
    `VNF ${name} ${type}=${status}${reason ? ` (${reason})` : ''}`,
    async () => {
      const vnf = await get(name);
      const condition = findCondition(vnf.status?.conditions, type);
      return condition?.status === status && (!reason || condition.reason === reason) ? vnf : undefined;
    },
    { timeoutMs, intervalMs: 100 },
  );
}

/** Sets up a suite; `operator: false` leaves starting operators to the test. */
export async function startNfvFixture(
  suite: string,
  options: { nodes?: number; shape?: SimulatedNode['shape']; poolSpec?: Partial<HugepagePoolSpec>; operator?: boolean } = {},
): Promise<NfvFixture> {
  const kc = e2eKubeConfig();
  const client = new KubeClient(kc, { userAgent: `nfv-e2e-${suite}` });
  await installCrds(client);
  const ns = await createTestNamespace(suite, kc);
  const agent = new SimulatedAgent(kc, testLogger().child({ agent: suite }));
  await agent.start();
  const pool = `${suite}-gold`;
  await client.apply(
    resources.hugepagePools,
    {
      apiVersion: API_VERSION,
      kind: 'HugepagePool',
      metadata: { name: pool },
      spec: { nodeSelector: { [SUITE_LABEL]: suite }, pageSize: '1Gi', pagesPerNumaNode: 4, ...options.poolSpec },
    } as HugepagePool,
    { fieldManager: 'nfv-e2e', force: true },
  );
  const nodeNames: string[] = [];
  const addNodes = async (names: string[], shape = options.shape) => {
    const specs = names.map((name) => ({ name, labels: { [SUITE_LABEL]: suite, [NFV_NODE_LABEL]: 'true' } }));
    await createKwokNodes(kc, specs);
    nodeNames.push(...names);
    agent.addNodes(names.map((name) => ({ name, ...(shape ? { shape } : {}) })));
  };
  await addNodes(kwokNodeSpecs(options.nodes ?? 2, `${suite}-node`).map((s) => s.name));
  const operator = options.operator === false ? undefined : startOperator(kc, `${suite}-operator`);

  const get = (name: string) => client.get<VirtualNetworkFunction>(resources.vnfs, name, { namespace: ns.name });
  const fixture: NfvFixture = {
    kc,
    client,
    ns,
    suite,
    nodeNames,
    agent,
    operator,
    pool,
    addNodes,
    vnf: (name, spec = {}) => ({
      apiVersion: API_VERSION,
      kind: 'VirtualNetworkFunction',
      metadata: { name, namespace: ns.name },
      spec: {
        image: 'nfv-operator/l2fwd:22.11',
        cpus: { count: 2, fullCores: true },
        hugepages: { pageSize: '1Gi', amount: '1Gi', pool },
        interfaces: [],
        links: [],
        nodeSelector: { [SUITE_LABEL]: suite },
        ...spec,
      },
    }),
    create: (vnf) => client.create(resources.vnfs, vnf),
    get,
    waitForCondition: (name, type, status, reason, timeoutMs) => waitForVnfCondition(get, name, type, status, reason, timeoutMs),
    deleteAndWait: async (name) => {
      await client.delete(resources.vnfs, name, { namespace: ns.name });
      await waitUntil(`VNF ${name} to be gone`, async () => (await client.get(resources.vnfs, name, { namespace: ns.name }).then(() => false, () => true)));
    },
    async close() {
      // VNFs go first, while an operator still runs to release them: their finalizers would
      // otherwise hold the namespace forever.
      const { items } = await client.list<VirtualNetworkFunction>(resources.vnfs, { namespace: ns.name });
      await Promise.all(items.map((vnf) => fixture.deleteAndWait(vnf.metadata.name!).catch(() => undefined)));
      await fixture.operator?.stop();
      await agent.stop();
      await ns.delete({ wait: false });
      await client.delete(resources.hugepagePools, pool).catch(() => undefined);
      await deleteKwokNodes(kc, nodeNames);
      client.close();
    },
  };
  return fixture;
}
