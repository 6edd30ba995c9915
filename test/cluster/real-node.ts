/**
 * This machine as a real node of a running local cluster: its own containerd and a kubelet that
 * registers as `nfv-real-0` (by default), runs the pods bound to it with runc, and serves their
 * logs to the API server. Nothing of Docker's containerd is touched; every host change is recorded
 * first and undone by `stop()` or, after an interrupted run, by the next start (see
 * `real-node-host.ts` and `real-node-registry.ts`).
 *
 * ```ts
 * const node = await RealNode.start({ server, pkiDir: path.join(clusterTmpDir, 'pki'), kubeConfig });
 * // pods with nodeName: node.name and node.toleration run here
 * await node.stop();
 * ```
 *
 * Needs root, the Docker engine with the images (hack/build-images.sh) and the binaries of
 * hack/build-tools.sh; throws when any is missing.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, type KubeConfig, type V1Node, type V1Toleration } from '@kubernetes/client-node';
import { pino, type Logger } from 'pino';
import { issueClientCertificate } from './cluster-pki.js';
import { processStartTime } from './cluster-registry.js';
import { writeKubeconfig } from './kubeconfig-file.js';
import { freeLoopbackPortsNamed } from './loopback-ports.js';
import { ManagedProcess } from './managed-process.js';
import {
  gatewayAddress,
  REAL_NODE_BRIDGE,
  realNodeLayout,
  renderCniConfig,
  renderContainerdConfig,
  renderKubeletConfig,
  type RealNodeLayout,
} from './real-node-config.js';
import {
  addHostsEntry,
  canLowerOomScoreAdj,
  createBridge,
  createCgroupRoot,
  restoreHost,
  snapshotHost,
  type HostSnapshot,
} from './real-node-host.js';
import { criImageName, importDockerImages, requireDockerImages } from './real-node-images.js';
import {
  killProcessesNaming,
  reapOrphanedRealNodes,
  removeRealNodeRecord,
  REAL_NODE_TMP_PREFIX,
  writeRealNodeRecord,
  type RealNodeRecord,
} from './real-node-registry.js';
import { resolveRealNodeTools, type RealNodeTools } from './real-node-tools.js';
import { waitUntil } from './wait-until.js';

const execFileAsync = promisify(execFile);

/** The sandbox image hack/build-images.sh builds (`pause`). */
export const REAL_NODE_PAUSE_IMAGE = 'nfv-operator/pause:local';

const DEFAULT_POD_SUBNET = '10.250.0.0/24';

/** Taint of every real node: only pods that tolerate it (`RealNode.toleration`) are scheduled here. */
export const REAL_NODE_TAINT = { key: 'nfv.dev/real-node', value: 'true', effect: 'NoSchedule' } as const;

/** How to start a real node. */
export interface RealNodeOptions {
  /** API server URL, `https://127.0.0.1:<port>`. */
  server: string;
  /** The cluster's PKI dir (ca.crt, ca.key, openssl.cnf): `<cluster tmpDir>/pki`. */
  pkiDir: string;
  /** Admin client of the cluster: to wait for the node and to delete it on stop. */
  kubeConfig: KubeConfig;
  /** Node name; default `nfv-real-0`. */
  name?: string;
  /** Docker images to import besides the pause image, e.g. `nfv-operator/debian:bookworm`. */
  images?: readonly string[];
  /** Top-level cgroup of the node's pods; default `/nfv-real-node`. */
  cgroupRoot?: string;
  /** Subnet of the pod network (a bridge of its own); default `10.250.0.0/24`. */
  podSubnet?: string;
  /** Time for the node to become Ready once the binaries are built; default 60 s. */
  readyTimeoutMs?: number;
  /** Default pino JSON on stderr at `$NFV_CLUSTER_LOG_LEVEL`, default `info`. */
  logger?: Logger;
}

/** What tests read of the OCI runtime spec of a container: privileges, devices and hugetlb limits. */
export interface OciSpecExcerpt {
  process?: { capabilities?: Record<'bounding' | 'effective' | 'permitted', string[] | undefined>; noNewPrivileges?: boolean };
  root?: { readonly?: boolean };
  linux?: {
    devices?: Array<{ path: string; type: string; major: number; minor: number }>;
    resources?: {
      devices?: Array<{ allow: boolean; type?: string; major?: number; minor?: number; access?: string }>;
      hugepageLimits?: Array<{ pageSize: string; limit: number }>;
    };
    /** Empty for a privileged container. */
    maskedPaths?: string[];
  };
}

/** `crictl inspect` of a container, the parts tests read. */
export interface InspectedContainer {
  info?: { pid?: number; runtimeSpec?: OciSpecExcerpt };
}

/** A running real node. */
export class RealNode {
  readonly name: string;
  readonly layout: RealNodeLayout;
  readonly cgroupRoot: string;
  /** Subnet of the pod network on the node's bridge. */
  readonly podSubnet: string;
  /** The node's InternalIP: the bridge's gateway address (kubelet refuses a loopback node IP). */
  readonly address: string;
  /** Add to a pod's tolerations so it can run here. */
  readonly toleration: V1Toleration = { ...REAL_NODE_TAINT, operator: 'Equal' };
  private readonly id: string;
  private readonly processes = new Map<'containerd' | 'kubelet', ManagedProcess>();
  private stopping: Promise<void> | undefined;
  private readonly killOnExit = (): void => this.processes.forEach((proc) => proc.killNow());

  private constructor(
    readonly host: HostSnapshot,
    private readonly tools: RealNodeTools,
    private readonly opts: RealNodeOptions,
    private readonly logger: Logger,
  ) {
    this.name = host.nodeName;
    this.layout = realNodeLayout(host.dir);
    this.cgroupRoot = host.cgroupRoot;
    this.podSubnet = opts.podSubnet ?? DEFAULT_POD_SUBNET;
    this.address = gatewayAddress(this.podSubnet);
    this.id = path.basename(host.dir).slice(REAL_NODE_TMP_PREFIX.length);
  }

  /** Kubelet's device plugin directory, where a device plugin registers (`kubelet.sock` lives here). */
  get devicePluginDir(): string {
    return this.layout.devicePluginDir;
  }

  /** containerd's NRI socket, where an NRI plugin registers (the node agent's `NFV_NRI_SOCKET`). */
  get nriSocket(): string {
    return this.layout.nriSocket;
  }

  /** kubelet's PodResources socket (under its root dir), which the node agent reads (`NFV_POD_RESOURCES_SOCKET`). */
  get podResourcesSocket(): string {
    return path.join(this.layout.kubeletRootDir, 'pod-resources', 'kubelet.sock');
  }

  /** The kubelet's process id: a test that must do without a kubelet restart checks it stays the same. */
  get kubeletPid(): number | undefined {
    return this.processes.get('kubelet')?.pid;
  }

  /** Starts containerd and the kubelet; resolves once the node is Ready. */
  static async start(opts: RealNodeOptions): Promise<RealNode> {
    const logger = (opts.logger ?? defaultLogger()).child({ realNode: opts.name ?? 'nfv-real-0' });
    if (process.getuid?.() !== 0) throw new Error('a real node needs root (kubelet, containerd, cgroups, mounts)');
    gatewayAddress(opts.podSubnet ?? DEFAULT_POD_SUBNET); // a bad subnet fails before anything starts
    const began = Date.now();
    await reapOrphanedRealNodes(logger);
    const tools = await resolveRealNodeTools(logger);
    const images = [REAL_NODE_PAUSE_IMAGE, ...(opts.images ?? [])];
    await requireDockerImages(images);

    const dir = await mkdtemp(path.join(tmpdir(), REAL_NODE_TMP_PREFIX));
    const layout = realNodeLayout(dir);
    const host = await snapshotHost({
      nodeName: opts.name ?? 'nfv-real-0',
      dir,
      podLogsDir: layout.podLogsDir,
      cgroupRoot: opts.cgroupRoot ?? '/nfv-real-node',
      bridge: REAL_NODE_BRIDGE,
    });
    const node = new RealNode(host, tools, opts, logger);
    node.record();
    process.once('exit', node.killOnExit);
    try {
      await node.startContainerd();
      await importDockerImages(tools.ctr, layout.containerdSocket, images);
      await node.startKubelet();
      await node.waitReady();
    } catch (err) {
      const logs = [...node.processes.values()].map((proc) => `--- ${proc.spec.name}:\n${proc.logTail(15)}`).join('\n');
      await node.stop().catch((stopErr: unknown) => logger.error({ err: stopErr }, 'cleaning up a failed real node start failed'));
      throw new Error(`real node ${host.nodeName} did not start: ${err instanceof Error ? err.message : String(err)}\n${logs}`);
    }
    logger.info({ startupMs: Date.now() - began, dir }, 'real node ready');
    return node;
  }

  /**
   * Stops the kubelet, removes every pod sandbox (containers, shims, mounts), stops containerd,
   * undoes the host changes and deletes the Node object. Throws, listing them, if some host
   * change could not be undone; the temp dir is then kept for inspection.
   */
  stop(): Promise<void> {
    this.stopping ??= this.stopUncached();
    return this.stopping;
  }

  private async stopUncached(): Promise<void> {
    await this.processes.get('kubelet')?.stop(10_000);
    await this.removeAllPodSandboxes();
    await this.processes.get('containerd')?.stop(10_000);
    process.removeListener('exit', this.killOnExit);
    const failures: string[] = [];
    // Shims outlive containerd by design; they name its socket, under our dir.
    await killProcessesNaming(this.host.dir).catch((err: unknown) => failures.push(String(err)));
    failures.push(...(await restoreHost(this.host, this.logger)));
    await this.deleteNodeObject().catch((err: unknown) => failures.push(`delete Node ${this.name}: ${String(err)}`));
    if (failures.length > 0) throw new Error(`real node ${this.name} left host changes behind (dir ${this.host.dir}):\n${failures.join('\n')}`);
    await rm(this.host.dir, { recursive: true, force: true, maxRetries: 3 });
    removeRealNodeRecord(this.id);
    this.logger.info('real node stopped');
  }

  private record(): void {
    const record: RealNodeRecord = {
      id: this.id,
      ownerPid: process.pid,
      ownerStartTime: processStartTime(process.pid),
      host: this.host,
      processes: [...this.processes.entries()].map(([name, proc]) => ({ name, pid: proc.pid, startTime: processStartTime(proc.pid) })),
    };
    writeRealNodeRecord(record);
  }

  /**
   * Stops containerd and starts it again with the same configuration, as a runtime upgrade does:
   * running containers keep running (their shims have process groups of their own), kubelet and
   * NRI plugins reconnect. Resolves once containerd answers again.
   */
  async restartContainerd(): Promise<void> {
    await this.processes.get('containerd')?.stop(10_000);
    await this.runContainerd();
  }

  private async startContainerd(): Promise<void> {
    const { layout, tools } = this;
    await Promise.all([
      mkdir(layout.cniConfDir, { recursive: true }),
      mkdir(layout.podLogsDir, { recursive: true }),
      mkdir(layout.kubeletRootDir, { recursive: true }),
    ]);
    await writeFile(
      layout.containerdConfigFile,
      renderContainerdConfig(layout, {
        sandboxImage: criImageName(REAL_NODE_PAUSE_IMAGE),
        runcBinary: tools.runc,
        cniBinDir: tools.cniBinDir,
        restrictOomScoreAdj: !canLowerOomScoreAdj(),
      }),
    );
    await writeFile(path.join(layout.cniConfDir, '10-nfv-real-node.conflist'), renderCniConfig(layout, this.podSubnet));
    await this.runContainerd();
  }

  private async runContainerd(): Promise<void> {
    const { layout, tools } = this;
    const containerd = this.startProcess('containerd', tools.containerd, ['--config', layout.containerdConfigFile], {
      ...process.env,
      // containerd starts its runc shim by name from PATH.
      PATH: `${tools.containerdBinDir}:${process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`,
    });
    await waitUntil(
      'containerd to answer on its socket',
      async () => existsSync(layout.containerdSocket) && (await execFileAsync(tools.ctr, ['--address', layout.containerdSocket, 'version'])) && true,
      { timeoutMs: 20_000, intervalMs: 100, abortIf: () => this.abortIfEnded(containerd) },
    );
  }

  private async startKubelet(): Promise<void> {
    const { layout } = this;
    const ports = await freeLoopbackPortsNamed(['kubelet', 'healthz'] as const);
    const cert = await issueClientCertificate(this.opts.pkiDir, `kubelet-${this.name}`, `/O=system:nodes/CN=system:node:${this.name}`);
    const caPem = await readFile(path.join(this.opts.pkiDir, 'ca.crt'), 'utf8');
    await writeKubeconfig(layout.kubeletKubeconfig, { server: this.opts.server, caPem, client: cert, user: `system:node:${this.name}` });
    await writeFile(
      layout.kubeletConfigFile,
      renderKubeletConfig(layout, {
        address: this.address,
        cgroupRoot: this.cgroupRoot,
        port: ports.kubelet,
        healthzPort: ports.healthz,
        taint: REAL_NODE_TAINT,
      }),
    );
    createCgroupRoot(this.cgroupRoot);
    await createBridge(REAL_NODE_BRIDGE, this.address, Number(this.podSubnet.split('/')[1]));
    // The API server dials a kubelet by its Hostname address first (`kubectl logs`).
    addHostsEntry(this.name, this.address);
    this.startProcess('kubelet', this.tools.kubelet, [
      `--config=${layout.kubeletConfigFile}`,
      `--kubeconfig=${layout.kubeletKubeconfig}`,
      `--root-dir=${layout.kubeletRootDir}`,
      `--hostname-override=${this.name}`,
      `--node-ip=${this.address}`,
      '--node-labels=nfv.dev/real-node=true',
      '--v=2',
    ]);
  }

  private async waitReady(): Promise<V1Node> {
    const core = this.opts.kubeConfig.makeApiClient(CoreV1Api);
    return waitUntil(
      `node ${this.name} to be Ready`,
      async () => {
        const node = await core.readNode({ name: this.name });
        const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
        return ready?.status === 'True' ? node : undefined;
      },
      {
        timeoutMs: this.opts.readyTimeoutMs ?? 60_000,
        intervalMs: 250,
        abortIf: () => this.processes.forEach((proc) => this.abortIfEnded(proc)),
      },
    );
  }

  private startProcess(name: 'containerd' | 'kubelet', command: string, args: string[], env?: NodeJS.ProcessEnv): ManagedProcess {
    const proc = ManagedProcess.start({ name, command, args, env, logFile: path.join(this.host.dir, `${name}.log`) });
    this.processes.set(name, proc);
    this.record();
    return proc;
  }

  private abortIfEnded(proc: ManagedProcess): void {
    if (proc.exitStatus) throw proc.exitedError('while the real node was starting');
  }

  /** Ids of every container containerd knows in the CRI namespace, running or not. */
  async listContainers(): Promise<string[]> {
    const { stdout } = await execFileAsync(this.tools.crictl, ['--runtime-endpoint', `unix://${this.layout.containerdSocket}`, 'ps', '--all', '--quiet']);
    return stdout.split('\n').filter(Boolean);
  }

  /** `crictl inspect`: the container's status and, under `info.runtimeSpec`, the OCI spec containerd gave runc. */
  async inspectContainer(id: string): Promise<InspectedContainer> {
    const { stdout } = await execFileAsync(this.tools.crictl, ['--runtime-endpoint', `unix://${this.layout.containerdSocket}`, 'inspect', '--output', 'json', id]);
    return JSON.parse(stdout) as InspectedContainer;
  }

  /** `crictl rmp --all --force`: stops and removes every pod sandbox and its containers. */
  private async removeAllPodSandboxes(): Promise<void> {
    const containerd = this.processes.get('containerd');
    if (!containerd || containerd.exitStatus) return;
    try {
      await execFileAsync(this.tools.crictl, ['--runtime-endpoint', `unix://${this.layout.containerdSocket}`, 'rmp', '--all', '--force'], {
        timeout: 60_000,
      });
    } catch (err) {
      // What is left is killed through the cgroups by restoreHost.
      this.logger.warn({ err }, 'crictl rmp --all failed');
    }
  }

  private async deleteNodeObject(): Promise<void> {
    try {
      await this.opts.kubeConfig.makeApiClient(CoreV1Api).deleteNode({ name: this.name });
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
    }
  }
}

function defaultLogger(): Logger {
  return pino({ name: 'real-node', level: process.env['NFV_CLUSTER_LOG_LEVEL'] ?? 'info' }, pino.destination({ dest: 2, sync: true }));
}
