/**
 * What an e2e test file needs from the shared local cluster that `global-setup.ts` started:
 * a client configuration, a namespace of its own, and a way to restart the API server.
 *
 * ```ts
 * const kc = e2eKubeConfig();
 * let ns: TestNamespace;
 * beforeAll(async () => (ns = await createTestNamespace('placement')));
 * afterAll(() => ns.delete());
 * ```
 */
import { randomBytes } from 'node:crypto';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { waitUntil } from './wait-until.js';

/**
 * Environment variable holding the JSON `E2eClusterInfo`. Set by the global setup (which cannot
 * import this module and so repeats the name as a literal) before any test file runs.
 */
export const E2E_CLUSTER_ENV = 'NFV_E2E_CLUSTER';

/** The shared cluster, as `start-cluster.ts --supervised` describes it on its stdout. */
export interface E2eClusterInfo {
  /** Admin kubeconfig (user in `system:masters`). */
  kubeconfigPath: string;
  /** `https://127.0.0.1:<port>` */
  server: string;
  /** Pinned Kubernetes version the binaries were built at, e.g. `v1.37.2`. */
  kubernetesVersion: string;
  /** KWOK nodes created at start (Ready, default capacity, no taints, label `nfv.dev/e2e-shared: "true"`). */
  nodeNames: string[];
  /** Base URL of the supervisor's loopback control endpoint. */
  controlUrl: string;
  /** Pid of the supervising `start-cluster.ts` process. */
  supervisorPid: number;
  tmpDir: string;
  startupMs: number;
}

/** The shared cluster; throws when not run under the e2e Jest project. */
export function e2eCluster(): E2eClusterInfo {
  const raw = process.env[E2E_CLUSTER_ENV];
  if (!raw) {
    throw new Error(
      `${E2E_CLUSTER_ENV} is not set: e2e tests need the cluster of the global setup; run them with ` +
        '`node --experimental-vm-modules node_modules/jest/bin/jest.js --selectProjects e2e`',
    );
  }
  return JSON.parse(raw) as E2eClusterInfo;
}

/** A fresh admin client configuration for the shared cluster. */
export function e2eKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(e2eCluster().kubeconfigPath);
  return kc;
}

/** A namespace owned by one test file. */
export interface TestNamespace {
  name: string;
  /**
   * Deletes the namespace; with `wait`, resolves only once the namespace controller has emptied
   * and removed it, which takes at least 5 s (the controller's deliberate grace period).
   */
  delete(opts?: { wait?: boolean; timeoutMs?: number }): Promise<void>;
}

/**
 * Creates `<prefix>-<6 hex>` (labelled `nfv.dev/e2e: "true"`) and resolves once its `default`
 * ServiceAccount exists, since the ServiceAccount admission plugin rejects pods until then.
 */
export async function createTestNamespace(prefix: string, kc: KubeConfig = e2eKubeConfig()): Promise<TestNamespace> {
  const core = kc.makeApiClient(CoreV1Api);
  const stem = prefix.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 50) || 'e2e';
  const name = `${stem}-${randomBytes(3).toString('hex')}`;
  await core.createNamespace({ body: { metadata: { name, labels: { 'nfv.dev/e2e': 'true' } } } });
  await waitUntil(`ServiceAccount ${name}/default`, async () =>
    Boolean(await core.readNamespacedServiceAccount({ name: 'default', namespace: name })),
  );
  return {
    name,
    async delete(opts = {}) {
      try {
        await core.deleteNamespace({ name });
      } catch (err) {
        if ((err as { code?: number }).code === 404) return;
        throw err;
      }
      if (!opts.wait) return;
      await waitUntil(
        `namespace ${name} to be gone`,
        async () => {
          try {
            await core.readNamespace({ name });
            return false;
          } catch (err) {
            if ((err as { code?: number }).code === 404) return true;
            throw err;
          }
        },
        { timeoutMs: opts.timeoutMs ?? 60_000, intervalMs: 200 },
      );
    },
  };
}

/**
 * Restarts the shared kube-apiserver (same port, same etcd) and resolves once it is ready again.
 * Every test file running at that moment sees the outage too; on the 2-core machines Jest's
 * default of one worker per spare core runs one e2e file at a time.
 */
export async function restartE2eApiServer(): Promise<void> {
  const res = await fetch(`${e2eCluster().controlUrl}/restart-apiserver`, { method: 'POST' });
  if (!res.ok) throw new Error(`restarting kube-apiserver failed: HTTP ${res.status}: ${await res.text()}`);
}
