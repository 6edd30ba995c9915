/**
 * A real Kubernetes control plane on loopback, for the e2e tests and the demo: etcd,
 * kube-apiserver, kube-controller-manager, kube-scheduler and KWOK, each a child process built from
 * the pinned sources (see `tools.ts`). Nothing is mocked: RBAC, admission, garbage collection,
 * namespace deletion and scheduling are the real ones; KWOK plays the kubelet of the nodes that
 * carry its annotation (see `kwok-nodes.ts`).
 *
 * ```ts
 * const cluster = await LocalCluster.start();
 * try {
 *   const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
 * } finally {
 *   await cluster.stop();
 * }
 * ```
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import path from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { pino, type Logger } from 'pino';
import { generateClusterPki, type ClusterPki } from './cluster-pki.js';
import {
  CLUSTER_TMP_PREFIX,
  processStartTime,
  reapOrphanedClusters,
  removeClusterRecord,
  writeClusterRecord,
} from './cluster-registry.js';
import { writeKubeconfig } from './kubeconfig-file.js';
import { kwokDefaultStages } from './kwok-stages.js';
import { KWOK_NODE_ANNOTATION, KWOK_NODE_ANNOTATION_VALUE } from './kwok-nodes.js';
import { freeLoopbackPortsNamed } from './loopback-ports.js';
import { ManagedProcess, type ProcessSpec } from './managed-process.js';
import { resolveClusterTools, type ClusterTools } from './tools.js';
import { waitUntil } from './wait-until.js';

/** The processes of a local cluster. */
export type ComponentName = 'etcd' | 'kube-apiserver' | 'kube-controller-manager' | 'kube-scheduler' | 'kwok';

const COMPONENTS: readonly ComponentName[] = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'];

/** Options of `LocalCluster.start`. All are optional. */
export interface LocalClusterOptions {
  /** Where progress goes; default pino (JSON) on stderr at `$NFV_CLUSTER_LOG_LEVEL`, default `info`. */
  logger?: Logger;
  /**
   * Stop the cluster on SIGINT, SIGTERM and SIGHUP, then re-raise the signal; default true. Turn
   * it off when the caller handles signals itself and calls `stop()`. Whatever this says, an
   * `exit` handler kills the processes and removes the temp dir if `stop()` was never called.
   */
  handleSignals?: boolean;
  /** Time allowed for the control plane to come up, once the tools are built; default 120 s. */
  startTimeoutMs?: number;
  /** `--service-cluster-ip-range`; default `10.96.0.0/16`. */
  serviceClusterIpRange?: string;
  /** Range KWOK assigns pod IPs from; default `10.244.0.0/16`. */
  podCidr?: string;
  /** Flags appended to a component's command line (later flags win), e.g. feature gates. */
  extraArgs?: Partial<Record<ComponentName, string[]>>;
}

/** Loopback ports of one cluster. */
export interface ClusterPorts {
  etcdClient: number;
  etcdPeer: number;
  apiServer: number;
  controllerManager: number;
  scheduler: number;
  kwok: number;
}

const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const live = new Set<LocalCluster>();
let exitHandlerInstalled = false;
let signalHandlersInstalled = false;

/** A running local control plane. Create with `LocalCluster.start()`; always `stop()` it. */
export class LocalCluster {
  /** Unique id (the temp dir's suffix), also the name of its record in the run dir. */
  readonly id: string;
  /** Temp dir holding PKI, kubeconfigs, etcd data and one log file per process. Removed by `stop()`. */
  readonly tmpDir: string;
  /** `https://127.0.0.1:<port>` */
  readonly server: string;
  /** Admin kubeconfig (user in `system:masters`), certificates embedded. */
  readonly kubeconfigPath: string;
  readonly ports: ClusterPorts;
  /** The binaries this cluster runs (kubectl, helm and kubeconform included) and their versions. */
  readonly tools: ClusterTools;

  private readonly logger: Logger;
  private readonly opts: LocalClusterOptions;
  private readonly processes = new Map<ComponentName, ManagedProcess>();
  private pki: ClusterPki | undefined;
  private stopping: Promise<void> | undefined;
  private startedInMs = 0;

  private constructor(id: string, tmpDir: string, ports: ClusterPorts, tools: ClusterTools, logger: Logger, opts: LocalClusterOptions) {
    this.id = id;
    this.tools = tools;
    this.tmpDir = tmpDir;
    this.ports = ports;
    this.server = `https://127.0.0.1:${ports.apiServer}`;
    this.kubeconfigPath = path.join(tmpDir, 'admin.kubeconfig');
    this.logger = logger;
    this.opts = opts;
  }

  /**
   * Starts a cluster and resolves once every component is healthy and the controller-manager has
   * created the `default` ServiceAccount. First reaps clusters whose owner process died, and
   * builds missing tools (minutes, once). On failure everything started is stopped and the error
   * carries the tail of the failing process's log.
   */
  static async start(opts: LocalClusterOptions = {}): Promise<LocalCluster> {
    const logger = opts.logger ?? defaultLogger();
    const began = Date.now();
    reapOrphanedClusters(logger);
    const tools = await resolveClusterTools({ logger });
    for (let attempt = 1; ; attempt++) {
      try {
        const cluster = await LocalCluster.startOnce(tools, logger, opts);
        cluster.startedInMs = Date.now() - began;
        logger.info({ cluster: cluster.id, server: cluster.server, startupMs: cluster.startupMs }, 'local cluster ready');
        return cluster;
      } catch (err) {
        // Another process may take a port between our probe and the bind; that alone is worth a retry.
        if (attempt >= 2 || !String(err).includes('address already in use')) throw err;
        logger.warn({ err }, 'a port was taken meanwhile; starting again on new ports');
      }
    }
  }

  private static async startOnce(tools: ClusterTools, logger: Logger, opts: LocalClusterOptions): Promise<LocalCluster> {
    const tmpDir = await mkdtemp(path.join(tmpdir(), CLUSTER_TMP_PREFIX));
    const ports: ClusterPorts = await freeLoopbackPortsNamed([
      'etcdClient',
      'etcdPeer',
      'apiServer',
      'controllerManager',
      'scheduler',
      'kwok',
    ] as const);
    const id = path.basename(tmpDir).slice(CLUSTER_TMP_PREFIX.length);
    const cluster = new LocalCluster(id, tmpDir, ports, tools, logger.child({ cluster: id }), opts);
    live.add(cluster);
    LocalCluster.installProcessHandlers(opts.handleSignals ?? true);
    cluster.writeRecord();
    try {
      await cluster.boot();
      return cluster;
    } catch (err) {
      await cluster.stop();
      throw err;
    }
  }

  /** Milliseconds `start()` took, reaping and tool resolution included. */
  get startupMs(): number {
    return this.startedInMs;
  }

  /** A fresh client configuration for the admin kubeconfig. */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromFile(this.kubeconfigPath);
    return kc;
  }

  /** The log file of a component (appended across restarts). */
  logFile(component: ComponentName): string {
    return path.join(this.tmpDir, `${component}.log`);
  }

  /**
   * Stops kube-apiserver and starts it again on the same port and etcd, resolving once it is
   * ready again, so tests can prove clients and controllers survive an API server restart.
   *
   * `graceMs` (default 1500) bounds the graceful part: kube-apiserver closes its listener at once
   * on SIGTERM but then waits for the open watch streams of the other components, which never end
   * by themselves, so without a bound every restart would last the full SIGKILL delay.
   */
  async restartApiServer(opts: { graceMs?: number } = {}): Promise<void> {
    const current = this.processes.get('kube-apiserver');
    if (!current || this.stopping) throw new Error(`cluster ${this.id} is not running; cannot restart kube-apiserver`);
    this.logger.info('restarting kube-apiserver');
    await current.stop(opts.graceMs ?? 1500);
    this.startProcess('kube-apiserver', this.apiServerArgs());
    await this.waitApiServerReady(this.opts.startTimeoutMs ?? 120_000);
    this.logger.info('kube-apiserver is ready again');
  }

  /** Stops every process (SIGTERM, then SIGKILL after 5 s) and removes the temp dir. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.stopUncached();
    return this.stopping;
  }

  private async stopUncached(): Promise<void> {
    const stopAll = (names: ComponentName[]): Promise<unknown> =>
      Promise.all(names.map((name) => this.processes.get(name)?.stop()));
    // Clients first, so none logs a storm of connection errors; etcd last, so the API server can
    // finish its writes.
    await stopAll(['kwok', 'kube-scheduler', 'kube-controller-manager']);
    await stopAll(['kube-apiserver']);
    await stopAll(['etcd']);
    await rm(this.tmpDir, { recursive: true, force: true, maxRetries: 3 });
    removeClusterRecord(this.id);
    live.delete(this);
    this.logger.info('local cluster stopped');
  }

  /** For the `exit` handler: SIGKILL everything and remove the temp dir, synchronously. */
  private killNow(): void {
    for (const proc of this.processes.values()) proc.killNow();
    try {
      rmSync(this.tmpDir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      /* the reaper of the next start removes what is left */
    }
    removeClusterRecord(this.id);
  }

  /** Installs, once per process, the handlers that keep processes from outliving their owner. */
  private static installProcessHandlers(handleSignals: boolean): void {
    if (!exitHandlerInstalled) {
      exitHandlerInstalled = true;
      process.on('exit', () => {
        for (const cluster of live) cluster.killNow();
      });
    }
    if (handleSignals && !signalHandlersInstalled) {
      signalHandlersInstalled = true;
      const onSignal = (signal: NodeJS.Signals): void => {
        for (const s of STOP_SIGNALS) process.removeListener(s, onSignal);
        signalHandlersInstalled = false;
        void Promise.allSettled([...live].map((cluster) => cluster.stop())).finally(() => {
          // Re-raise so the process ends as the signal asked (or its other handlers run).
          process.kill(process.pid, signal);
        });
      };
      for (const s of STOP_SIGNALS) process.on(s, onSignal);
    }
  }

  private async boot(): Promise<void> {
    const tools = this.tools;
    const deadline = Date.now() + (this.opts.startTimeoutMs ?? 120_000);
    const remaining = (): number => Math.max(1000, deadline - Date.now());
    const serviceRange = this.opts.serviceClusterIpRange ?? '10.96.0.0/16';

    const [pki, stages] = await Promise.all([
      generateClusterPki(path.join(this.tmpDir, 'pki'), { kubernetesServiceIp: firstServiceIp(serviceRange) }),
      kwokDefaultStages(tools.versions.kwok),
    ]);
    this.pki = pki;
    await Promise.all([
      writeKubeconfig(this.kubeconfigPath, { server: this.server, caPem: pki.ca.certPem, client: pki.admin, user: 'admin' }),
      writeKubeconfig(this.kubeconfigFor('kube-controller-manager'), {
        server: this.server,
        caPem: pki.ca.certPem,
        client: pki.controllerManager,
        user: 'system:kube-controller-manager',
      }),
      writeKubeconfig(this.kubeconfigFor('kube-scheduler'), {
        server: this.server,
        caPem: pki.ca.certPem,
        client: pki.scheduler,
        user: 'system:kube-scheduler',
      }),
      writeFile(path.join(this.tmpDir, 'kwok.yaml'), stages),
    ]);

    this.startProcess('etcd', this.etcdArgs());
    await this.waitHttpOk('etcd', `http://127.0.0.1:${this.ports.etcdClient}/health`, {}, remaining());

    this.startProcess('kube-apiserver', this.apiServerArgs());
    await this.waitApiServerReady(remaining());

    this.startProcess('kube-controller-manager', this.controllerManagerArgs(pki, serviceRange));
    this.startProcess('kube-scheduler', this.schedulerArgs());
    this.startProcess('kwok', this.kwokArgs());
    await Promise.all([
      this.waitHttpOk('kube-controller-manager', `https://127.0.0.1:${this.ports.controllerManager}/healthz`, { insecure: true }, remaining()),
      this.waitHttpOk('kube-scheduler', `https://127.0.0.1:${this.ports.scheduler}/healthz`, { insecure: true }, remaining()),
      this.waitHttpOk('kwok', `http://127.0.0.1:${this.ports.kwok}/healthz`, {}, remaining()),
    ]);

    // The ServiceAccount admission plugin rejects pods until this exists, and only a working
    // controller-manager creates it: the last proof that the control plane is usable.
    const core = this.kubeConfig().makeApiClient(CoreV1Api);
    await waitUntil(
      'the controller-manager to create ServiceAccount default/default',
      async () => Boolean(await core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' })),
      { timeoutMs: remaining(), intervalMs: 100, abortIf: () => this.throwIfAnyExited('before the cluster was ready') },
    );
  }

  private requirePki(): ClusterPki {
    if (!this.pki) throw new Error('PKI not generated');
    return this.pki;
  }

  private kubeconfigFor(component: ComponentName): string {
    return path.join(this.tmpDir, `${component}.kubeconfig`);
  }

  private startProcess(name: ComponentName, args: string[]): ManagedProcess {
    const tools = this.tools;
    const command: Record<ComponentName, string> = {
      etcd: tools.etcd,
      'kube-apiserver': tools.kubeApiserver,
      'kube-controller-manager': tools.kubeControllerManager,
      'kube-scheduler': tools.kubeScheduler,
      kwok: tools.kwok,
    };
    const spec: ProcessSpec = {
      name,
      command: command[name],
      args: [...args, ...(this.opts.extraArgs?.[name] ?? [])],
      logFile: this.logFile(name),
    };
    const proc = ManagedProcess.start(spec);
    this.processes.set(name, proc);
    this.writeRecord();
    this.logger.debug({ component: name, pid: proc.pid }, 'started');
    return proc;
  }

  private writeRecord(): void {
    writeClusterRecord({
      id: this.id,
      ownerPid: process.pid,
      ownerStartTime: processStartTime(process.pid),
      tmpDir: this.tmpDir,
      processes: [...this.processes.entries()]
        .filter(([, proc]) => !proc.exitStatus)
        .map(([name, proc]) => ({ name, pid: proc.pid, startTime: processStartTime(proc.pid) })),
    });
  }

  private throwIfAnyExited(what: string): void {
    for (const name of COMPONENTS) {
      const proc = this.processes.get(name);
      if (proc?.exitStatus) throw proc.exitedError(what);
    }
  }

  private async waitApiServerReady(timeoutMs: number): Promise<void> {
    const pki = this.requirePki();
    await this.waitHttpOk(
      'kube-apiserver',
      `${this.server}/readyz`,
      { ca: pki.ca.certPem, cert: pki.admin.certPem, key: pki.admin.keyPem },
      timeoutMs,
    );
  }

  private async waitHttpOk(component: ComponentName, url: string, tls: TlsOptions, timeoutMs: number): Promise<void> {
    try {
      await waitUntil(
        `${component} at ${url}`,
        async () => (await httpGet(url, tls)).status === 200,
        { timeoutMs, intervalMs: 100, abortIf: () => this.throwIfAnyExited(`while waiting for ${component} to be healthy`) },
      );
    } catch (err) {
      const proc = this.processes.get(component);
      if (proc && !proc.exitStatus && err instanceof Error && err.message.startsWith('timed out')) {
        throw new Error(`${err.message}; last lines of ${proc.spec.logFile}:\n${proc.logTail()}`);
      }
      throw err;
    }
    this.logger.debug({ component }, 'healthy');
  }

  private etcdArgs(): string[] {
    const client = `http://127.0.0.1:${this.ports.etcdClient}`;
    const peer = `http://127.0.0.1:${this.ports.etcdPeer}`;
    return [
      '--name=local',
      `--data-dir=${path.join(this.tmpDir, 'etcd')}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=local=${peer}`,
      '--initial-cluster-state=new',
      // Test data is thrown away with the temp dir; fsync would only slow every write down.
      '--unsafe-no-fsync',
      '--log-level=warn',
    ];
  }

  private apiServerArgs(): string[] {
    const pki = this.requirePki();
    return [
      `--etcd-servers=http://127.0.0.1:${this.ports.etcdClient}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${this.ports.apiServer}`,
      `--cert-dir=${path.join(this.tmpDir, 'apiserver-certs')}`,
      `--tls-cert-file=${pki.apiServer.certFile}`,
      `--tls-private-key-file=${pki.apiServer.keyFile}`,
      `--client-ca-file=${pki.ca.certFile}`,
      '--authorization-mode=Node,RBAC',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${pki.serviceAccountPublicKeyFile}`,
      `--service-account-signing-key-file=${pki.serviceAccountKeyFile}`,
      `--service-cluster-ip-range=${this.opts.serviceClusterIpRange ?? '10.96.0.0/16'}`,
      // The node agent of the operator runs privileged, as on a real cluster.
      '--allow-privileged=true',
      '--profiling=false',
      ...advertiseAddressArgs(),
    ];
  }

  private controllerManagerArgs(pki: ClusterPki, serviceRange: string): string[] {
    return [
      `--kubeconfig=${this.kubeconfigFor('kube-controller-manager')}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${this.ports.controllerManager}`,
      '--leader-elect=false',
      // Each controller acts as its own service account, so RBAC is exercised as in production.
      '--use-service-account-credentials=true',
      // The default 20 QPS makes setting those credentials up the longest step of a start (~5 s)
      // and throttles tests that create many pods; loopback needs no protection.
      '--kube-api-qps=200',
      '--kube-api-burst=400',
      `--service-account-private-key-file=${pki.serviceAccountKeyFile}`,
      `--root-ca-file=${pki.ca.certFile}`,
      `--cluster-signing-cert-file=${pki.ca.certFile}`,
      `--cluster-signing-key-file=${pki.ca.keyFile}`,
      `--service-cluster-ip-range=${serviceRange}`,
      '--profiling=false',
    ];
  }

  private schedulerArgs(): string[] {
    return [
      `--kubeconfig=${this.kubeconfigFor('kube-scheduler')}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${this.ports.scheduler}`,
      '--leader-elect=false',
      '--profiling=false',
    ];
  }

  private kwokArgs(): string[] {
    return [
      `--kubeconfig=${this.kubeconfigPath}`,
      `--config=${path.join(this.tmpDir, 'kwok.yaml')}`,
      '--manage-all-nodes=false',
      `--manage-nodes-with-annotation-selector=${KWOK_NODE_ANNOTATION}=${KWOK_NODE_ANNOTATION_VALUE}`,
      '--node-ip=127.0.0.1',
      `--server-address=127.0.0.1:${this.ports.kwok}`,
      '--node-lease-duration-seconds=40',
      `--cidr=${this.opts.podCidr ?? '10.244.0.0/16'}`,
    ];
  }
}

function defaultLogger(): Logger {
  return pino(
    { name: 'local-cluster', level: process.env['NFV_CLUSTER_LOG_LEVEL'] ?? 'info' },
    pino.destination({ dest: 2, sync: true }),
  );
}

/**
 * kube-apiserver advertises (in the `kubernetes` Service's endpoints) the address of the host's
 * default interface and refuses a loopback one. Where the host has no other address, advertise
 * loopback without the endpoint reconciler: nothing in a KWOK cluster dials that Service.
 */
function advertiseAddressArgs(): string[] {
  const external = Object.values(networkInterfaces())
    .flat()
    .some((address) => address && !address.internal && address.family === 'IPv4');
  return external ? [] : ['--advertise-address=127.0.0.1', '--endpoint-reconciler-type=none'];
}

/** The first host address of an IPv4 CIDR: the `kubernetes` Service's cluster IP. */
function firstServiceIp(cidr: string): string {
  const [base] = cidr.split('/');
  const octets = (base ?? '').split('.').map(Number);
  if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) {
    throw new Error(`serviceClusterIpRange "${cidr}" is not an IPv4 CIDR such as 10.96.0.0/16`);
  }
  const value = (((octets[0] ?? 0) << 24) | ((octets[1] ?? 0) << 16) | ((octets[2] ?? 0) << 8) | (octets[3] ?? 0)) + 1;
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

interface TlsOptions {
  ca?: string;
  cert?: string;
  key?: string;
  /** Skip verification: only for the self-signed health endpoints of our own loopback processes. */
  insecure?: boolean;
}

function httpGet(url: string, tls: TlsOptions, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const isHttps = url.startsWith('https:');
    const options = isHttps
      ? { agent: false, ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: !tls.insecure, timeout: timeoutMs }
      : { agent: false, timeout: timeoutMs };
    const req = (isHttps ? httpsRequest : httpRequest)(url, options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}
