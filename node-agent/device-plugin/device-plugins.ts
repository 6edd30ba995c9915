import { stat } from 'node:fs/promises';
import { posix } from 'node:path';
import type { Logger } from 'pino';
import { realClock, type Clock, type Timer } from '../../src/runtime/clock.js';
import { isErrno } from '../host/kernel-files.js';
import { DEFAULT_DEVICE_PLUGIN_DIR, KUBELET_SOCKET } from './device-plugin-api.js';
import { registerWithKubelet } from './kubelet-registration.js';
import type { HugepageDevices } from './hugepage-devices.js';
import type { AllocatedDeviceIds, PodResourcesReader } from './pod-resources.js';
import type { DeviceNodes, PluginDevice } from './plugin-devices.js';
import { DevicePluginServer, listSummary } from './plugin-server.js';

/** Options of {@link DevicePlugins}. */
export interface DevicePluginsOptions {
  /** kubelet's device-plugin directory, where kubelet.sock is. Default {@link DEFAULT_DEVICE_PLUGIN_DIR}. */
  pluginDir?: string;
  /** Reads the device nodes behind each device's health. */
  nodes: DeviceNodes;
  logger: Logger;
  /** How often kubelet.sock, the plugin sockets and the device nodes are checked, in ms. Default 2000. */
  checkIntervalMs?: number;
  /** Default the wall clock. */
  clock?: Clock;
  /** Which page IDs kubelet gave running pods, so a shrinking list keeps them. Default: none read (a shrink drops the highest IDs). */
  podResources?: PodResourcesReader;
}

/**
 * The agent's kubelet device plugins: one server per {@link PluginDevice} of a NIC and one per page
 * size of {@link HugepageDevices}, each registered with kubelet. It converges on every
 * {@link refresh} and on a short timer, which is also how it notices:
 * - kubelet absent: it waits for kubelet.sock and serves nothing;
 * - kubelet restarted: a new kubelet.sock (kubelet empties the directory when it starts, which
 *   removes the plugin sockets too): every plugin is served again and registered again;
 * - health changes: a device is Healthy only while its device nodes exist, which is once the agent
 *   has bound its driver, so kubelet admits a VNF's pod only after the host side is prepared;
 * - pages: {@link setHugepages} sends the new page lists at once, and kubelet updates the Node's
 *   capacity and allocatable with its next status update, without a restart.
 */
export class DevicePlugins {
  readonly pluginDir: string;
  private readonly servers = new Map<string, DevicePluginServer>();
  private devices: readonly PluginDevice[] = [];
  private hugepages: readonly HugepageDevices[] = [];
  private kubeletSocketId?: string;
  private timer?: Timer;
  private syncing?: Promise<void>;
  private syncAgain = false;
  private stopped = false;
  /** Resources whose registration failed, so a retry every check does not repeat the warning. */
  private readonly failing = new Set<string>();
  /** kubelet's page IDs in use as last read; kept while PodResources does not answer. */
  private pagesInUse: AllocatedDeviceIds = new Map();
  /**
   * The page offers changed since kubelet's IDs were last read. Only then can a list change:
   * kubelet hands out listed IDs only, so between two changes the held IDs stay within the list.
   */
  private pagesChanged = false;
  private podResourcesFailing = false;

  constructor(private readonly options: DevicePluginsOptions) {
    this.pluginDir = options.pluginDir ?? DEFAULT_DEVICE_PLUGIN_DIR;
  }

  /** Starts the periodic check. */
  start(): void {
    const clock = this.options.clock ?? realClock;
    const tick = () => {
      this.refresh();
      if (!this.stopped) this.timer = clock.setTimer(tick, this.options.checkIntervalMs ?? 2000);
    };
    tick();
  }

  /** The NIC devices to offer (from the inventory); plugins of devices no longer listed are stopped. */
  setDevices(devices: readonly PluginDevice[]): void {
    this.devices = devices;
    this.refresh();
  }

  /** The pool pages to offer, per page size (from the NfvNode status); plugins of sizes no longer listed are stopped. */
  setHugepages(hugepages: readonly HugepageDevices[]): void {
    this.hugepages = hugepages;
    this.pagesChanged = true;
    this.refresh();
  }

  /** Converges soon (e.g. after a driver was bound); never throws, failures are logged and retried. */
  refresh(): void {
    if (this.stopped) return;
    if (this.syncing) {
      this.syncAgain = true;
      return;
    }
    this.syncing = this.sync()
      .catch((err: unknown) => this.options.logger.warn({ err }, 'device plugins: sync failed; retrying'))
      .finally(() => {
        this.syncing = undefined;
        if (this.syncAgain) {
          this.syncAgain = false;
          this.refresh();
        }
      });
  }

  /** Resolves once what is pending has been done (tests). */
  async settled(): Promise<void> {
    while (this.syncing) await this.syncing;
  }

  /** Resources registered with the current kubelet. */
  registered(): string[] {
    return [...this.servers.keys()].sort();
  }

  /** Stops every plugin and removes its socket. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    await this.settled();
    await this.stopServers([...this.servers.keys()]);
  }

  private async sync(): Promise<void> {
    const { logger, nodes } = this.options;
    const kubeletSocket = posix.join(this.pluginDir, KUBELET_SOCKET);
    const kubeletId = await socketId(kubeletSocket);
    if (!kubeletId) {
      if (this.kubeletSocketId !== '') logger.info({ kubeletSocket }, 'device plugins: waiting for kubelet to create its registration socket');
      this.kubeletSocketId = '';
      await this.stopServers([...this.servers.keys()]);
      return;
    }
    const kubeletRestarted = kubeletId !== this.kubeletSocketId;
    if (kubeletRestarted && this.kubeletSocketId) logger.info({ kubeletSocket }, 'device plugins: kubelet restarted; registering again');
    this.kubeletSocketId = kubeletId;

    const wanted = new Map([...this.devices, ...(await this.hugepagesInUse())].map((offered) => [offered.resource, offered]));
    await this.stopServers([...this.servers.keys()].filter((resource) => !wanted.has(resource)));
    const view = await nodes.view(this.devices);
    for (const offered of wanted.values()) {
      const { resource } = offered;
      const server = this.servers.get(resource);
      if (server && !kubeletRestarted && (await socketId(server.socketPath))) {
        server.update(offered, view);
        continue;
      }
      await this.stopServers(server ? [resource] : []);
      const started = new DevicePluginServer(offered, posix.join(this.pluginDir, socketName(resource)), view, nodes, logger);
      try {
        await started.start();
        await registerWithKubelet(kubeletSocket, socketName(resource), resource);
        this.servers.set(resource, started);
        this.failing.delete(resource);
        logger.info({ resource, ...listSummary(started.current) }, 'device plugin registered with kubelet');
      } catch (err) {
        await started.stop();
        const level = this.failing.has(resource) ? 'debug' : 'warn';
        this.failing.add(resource);
        logger[level]({ err, resource }, 'device plugin could not register; retrying at every check');
      }
    }
  }

  /**
   * The page offers with the IDs kubelet has handed out, read again after the offers changed; the
   * last answer while kubelet does not give one (and the read is tried again at the next check).
   */
  private async hugepagesInUse(): Promise<HugepageDevices[]> {
    const { podResources, logger } = this.options;
    if (podResources && this.pagesChanged && this.hugepages.length > 0) {
      try {
        this.pagesInUse = await podResources.allocatedIds();
        this.pagesChanged = false;
        if (this.podResourcesFailing) logger.info('device plugins: kubelet\'s PodResources answers again');
        this.podResourcesFailing = false;
      } catch (err) {
        if (!this.podResourcesFailing) logger.warn({ err }, 'device plugins: cannot read which hugepage IDs kubelet gave pods; keeping the last answer');
        this.podResourcesFailing = true;
      }
    }
    return this.hugepages.map((offered) => ({ ...offered, inUse: this.pagesInUse.get(offered.resource) ?? new Set<string>() }));
  }

  private async stopServers(resources: readonly string[]): Promise<void> {
    for (const resource of resources) {
      await this.servers.get(resource)?.stop();
      this.servers.delete(resource);
    }
  }
}

/** Socket file of a resource's plugin: `nfv.dev_vfio-group-20.sock`. */
export function socketName(resource: string): string {
  return `${resource.replace('/', '_')}.sock`;
}

/**
 * Identity of a socket file: a new kubelet makes a new one. The inode alone is not enough (a file
 * system may give the new socket the inode of the one just deleted), its change time is.
 */
async function socketId(path: string): Promise<string | undefined> {
  try {
    const info = await stat(path, { bigint: true });
    return info.isSocket() ? `${info.dev}:${info.ino}:${info.ctimeNs}` : undefined;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}
