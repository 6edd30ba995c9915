import { EventEmitter } from 'node:events';
import type { KubeConfig, V1Node, V1Pod } from '@kubernetes/client-node';
import pino, { type Logger } from 'pino';
import { VNF_NAME_LABEL } from '../src/api/group.js';
import { DEFAULT_STATE_ROOT } from '../src/api/host-paths.js';
import type { HugepagePool } from '../src/api/hugepage-pool.js';
import { isHugepageResource } from '../src/api/device-resources.js';
import type { Inventory, NfvNode } from '../src/api/nfv-node.js';
import type { VirtualNetworkFunction } from '../src/api/virtual-network-function.js';
import { realClock, type Clock } from '../src/runtime/clock.js';
import { Controller } from '../src/runtime/controller.js';
import { Informer } from '../src/runtime/informer.js';
import { KubeClient } from '../src/runtime/kube-client.js';
import { coreResources, type KubeObject, type ResourceRef } from '../src/runtime/kube-object.js';
import { Manager, type ManagerExitReason, type SignalSource } from '../src/runtime/manager.js';
import { ChangeMonitor, KERNEL_CHANGE_FEEDS } from './change-monitor.js';
import { DevicePlugins } from './device-plugin/device-plugins.js';
import { hugepageDevicesOf } from './device-plugin/hugepage-devices.js';
import { pluginDevicesOf } from './device-plugin/plugin-devices.js';
import { DEFAULT_POD_RESOURCES_SOCKET, KubeletPodResources } from './device-plugin/pod-resources.js';
import { discoverCpus } from './discover/cpu-topology.js';
import type { NicPoolRule } from './discover/pci-nics.js';
import { createNodeHost, type HostRoots, type NodeHost, type NodeHostOptions } from './host/node-host.js';
import { JournalStore } from './journal.js';
import { AgentMetrics } from './agent-metrics.js';
import { NFV_NODE_RESOURCE, nodeReconciler } from './node-reconciler.js';
import { DEFAULT_NRI_SOCKET } from './nri/nri-api.js';
import { NriPlugin } from './nri/nri-plugin.js';
import { vnfHugepageSource, type VnfHugepageSource } from './nri/vnf-hugepage-source.js';
import { recoverJournals } from './recover.js';
import { VNF_RESOURCE, vnfKeyOfPod, vnfReconciler } from './vnf-reconciler.js';

const HUGEPAGE_POOL_RESOURCE: ResourceRef = { group: 'nfv.dev', version: 'v1alpha1', plural: 'hugepagepools', kind: 'HugepagePool', namespaced: false };

/** Options of a {@link NodeAgent}. */
export interface NodeAgentOptions {
  /** Name of this node (the Node object and the NfvNode). */
  nodeName: string;
  /** API server access. Ignored when `client` is given. */
  kubeConfig?: KubeConfig;
  /** A ready client (tests). Default: one built from `kubeConfig`. */
  client?: KubeClient;
  /** Default: pino at info. */
  logger?: Logger;
  /** Directory of host paths and journals; must equal the controller's. Default {@link DEFAULT_STATE_ROOT}. */
  stateRoot?: string;
  /** Where the kernel is. Default: /sys, /proc, /sys/fs/cgroup, /dev. */
  roots?: Partial<HostRoots>;
  /** Options of the host mechanisms (mount namespace, network probe). */
  hostOptions?: NodeHostOptions;
  /** Host mechanisms, replacing the ones built from `roots` (tests). */
  host?: NodeHost;
  /** NIC pools of this node. Default none. */
  nicPools?: NicPoolRule[];
  /** Reported in NfvNode.status.agentVersion. Default `0.1.0`. */
  agentVersion?: string;
  /** Kernel change feeds (udevadm, ip monitor); [] disables them. Default {@link KERNEL_CHANGE_FEEDS}. */
  changeFeeds?: readonly (readonly string[])[];
  /** Fallback inventory re-check, publishing only on change, in ms. Default 60000. */
  inventoryRecheckMs?: number;
  /** Concurrent VNF reconciles (different VNFs only). Default 4. */
  workers?: number;
  clock?: Clock;
  /** Shutdown signals come from here. Default: none (call {@link NodeAgent.stop}); main.ts passes `process`. */
  signalSource?: SignalSource;
  /** Records prepare and teardown durations and failures. Default: a fresh one, see {@link NodeAgent.metrics}. */
  metrics?: AgentMetrics;
  /**
   * kubelet's device-plugin directory, where the agent serves one plugin per VFIO group, uio
   * device and pool page size and registers them through `kubelet.sock`. Default
   * `/var/lib/kubelet/device-plugins`; `false` serves none (no kubelet on this node).
   */
  devicePluginDir?: string | false;
  /** How often the device plugins check kubelet.sock and the device nodes, in ms. Default 2000. */
  devicePluginCheckMs?: number;
  /**
   * The container runtime's NRI socket, where the agent's NRI plugin registers to set the hugetlb
   * limit of the VNFs' DPDK containers. Default {@link DEFAULT_NRI_SOCKET}; `false` runs no plugin.
   */
  nriSocket?: string | false;
  /**
   * kubelet's PodResources socket: which page IDs kubelet gave running pods, so that a shrinking
   * page list keeps them. Default {@link DEFAULT_POD_RESOURCES_SOCKET}; `false` reads none (a
   * shrink then drops the highest IDs).
   */
  podResourcesSocket?: string | false;
}

/**
 * The node agent: one per NFV node. It publishes the node's NfvNode (inventory, hugepage pool
 * reservations, Ready), reserves hugepages for the HugepagePools, prepares and tears down the
 * VNFs placed on the node, reporting NodePrepared on each, and offers their VFIO groups and uio
 * devices, and the pools' pages, to kubelet as device plugins. Everything it does to the host goes
 * through the journal under the state root, so a restarted agent picks up where it stopped.
 *
 * @example
 * const agent = new NodeAgent({ nodeName: 'worker-1', kubeConfig, roots: { sysfs: '/host/sys' } });
 * await agent.start();
 * // ...
 * await agent.stop();
 */
export class NodeAgent {
  readonly nodeName: string;
  readonly stateRoot: string;
  readonly host: NodeHost;
  readonly journals: JournalStore;
  /** Prepare and teardown durations and failures, for the /metrics endpoint. */
  readonly metrics: AgentMetrics;
  private readonly client: KubeClient;
  private readonly ownsClient: boolean;
  private readonly logger: Logger;
  private readonly manager: Manager;
  private readonly vnfController: Controller;
  private readonly nodeController: Controller;
  private readonly monitor?: ChangeMonitor;
  /** The kubelet device plugins of this node's devices; undefined when turned off. */
  readonly devicePlugins?: DevicePlugins;
  /** The NRI plugin that sets the VNF containers' hugetlb limits; undefined when turned off. */
  readonly nri?: NriPlugin;
  private readonly nriSource?: VnfHugepageSource;
  private readonly informers: {
    vnfs: Informer<VirtualNetworkFunction>;
    pods: Informer<V1Pod & KubeObject>;
    pools: Informer<HugepagePool>;
    nodes: Informer<V1Node & KubeObject>;
    nfvNodes: Informer<NfvNode>;
  };
  private inventory?: Inventory;
  private running?: Promise<ManagerExitReason>;

  constructor(options: NodeAgentOptions) {
    this.metrics = options.metrics ?? new AgentMetrics();
    if (!options.nodeName) throw new Error('the node agent needs its node name (set NODE_NAME from spec.nodeName)');
    this.nodeName = options.nodeName;
    this.stateRoot = options.stateRoot ?? DEFAULT_STATE_ROOT;
    this.logger = (options.logger ?? pino({ level: 'info' })).child({ component: 'nfv-node-agent', node: this.nodeName });
    if (!options.client && !options.kubeConfig) throw new Error('the node agent needs a kubeConfig or a client');
    this.client = options.client ?? new KubeClient(options.kubeConfig!, { userAgent: 'nfv-node-agent' });
    this.ownsClient = !options.client;
    this.host = options.host ?? createNodeHost(options.roots, options.hostOptions);
    this.journals = new JournalStore(this.stateRoot);
    const clock = options.clock ?? realClock;
    const logger = this.logger;
    const node = this.nodeName;
    this.informers = {
      vnfs: Informer.forResource<VirtualNetworkFunction>(this.client, VNF_RESOURCE, { logger, fieldSelector: `status.placement.node=${node}` }),
      pods: Informer.forResource<V1Pod & KubeObject>(this.client, coreResources.pods, { logger, fieldSelector: `spec.nodeName=${node}`, labelSelector: VNF_NAME_LABEL }),
      pools: Informer.forResource<HugepagePool>(this.client, HUGEPAGE_POOL_RESOURCE, { logger }),
      nodes: Informer.forResource<V1Node & KubeObject>(this.client, coreResources.nodes, { logger, fieldSelector: `metadata.name=${node}` }),
      nfvNodes: Informer.forResource<NfvNode>(this.client, NFV_NODE_RESOURCE, { logger, fieldSelector: `metadata.name=${node}` }),
    };
    const { vnfs, pods, pools, nodes, nfvNodes } = this.informers;

    this.nodeController = new Controller({
      name: 'nfv-node',
      logger,
      clock,
      resyncPeriodMs: 0,
      reconcile: nodeReconciler({
        nodeName: node,
        stateRoot: this.stateRoot,
        host: this.host,
        journals: this.journals,
        agentVersion: options.agentVersion ?? '0.1.0',
        nicPools: options.nicPools ?? [],
        clock,
        client: this.client,
        getNode: () => nodes.getByName(node),
        getNfvNode: () => nfvNodes.getByName(node),
        listPools: () => pools.list(),
        onInventory: (inventory) => {
          this.inventory = inventory;
          this.devicePlugins?.setDevices(pluginDevicesOf(inventory.nics));
        },
        recheckMs: options.inventoryRecheckMs ?? 60_000,
      }),
    })
      .watches(pools, () => node)
      .watches(nodes, () => node, { filter: (e) => e.type !== 'update' || JSON.stringify(e.oldObject.metadata?.labels) !== JSON.stringify(e.object.metadata?.labels) })
      .watches(nfvNodes, () => node, { filter: (e) => e.type !== 'update' });

    this.vnfController = new Controller({
      name: 'vnf-host',
      logger,
      clock,
      workers: options.workers ?? 4,
      reconcile: vnfReconciler({
        nodeName: node,
        stateRoot: this.stateRoot,
        host: this.host,
        journals: this.journals,
        getVnf: (key) => vnfs.get(key),
        podsOf: (namespace, name) => pods.list((pod) => pod.metadata?.namespace === namespace && pod.metadata?.labels?.[VNF_NAME_LABEL] === name),
        client: this.client,
        clock,
        hostFacts: () => this.hostFacts(),
        onHostChanged: () => {
          this.nodeController.enqueue(node);
          // A bound or released driver made or removed device nodes: tell kubelet now.
          this.devicePlugins?.refresh();
        },
        metrics: this.metrics,
        containerLimitsMissing: () => this.nriMissing(),
      }),
    })
      .for(vnfs)
      .watches(pods, ({ object }) => vnfKeyOfPod(object));

    if (options.devicePluginDir !== false) {
      this.devicePlugins = new DevicePlugins({
        ...(options.devicePluginDir ? { pluginDir: options.devicePluginDir } : {}),
        nodes: this.host.deviceNodes,
        logger,
        clock,
        ...(options.devicePluginCheckMs ? { checkIntervalMs: options.devicePluginCheckMs } : {}),
        ...(options.podResourcesSocket !== false
          ? { podResources: new KubeletPodResources(options.podResourcesSocket ?? DEFAULT_POD_RESOURCES_SOCKET, isHugepageResource) }
          : {}),
      });
      // Pages to offer kubelet: from the NfvNode this agent publishes (its reservations) and the
      // controller's ledger in it, the very figures the controller places from.
      const offerPages = (nfvNode?: NfvNode) => this.devicePlugins?.setHugepages(hugepageDevicesOf(nfvNode?.status));
      nfvNodes.addEventHandler({ onAdd: offerPages, onUpdate: (_before, nfvNode) => offerPages(nfvNode), onDelete: () => offerPages() });
    }

    if (options.nriSocket !== false) {
      const source = (this.nriSource = vnfHugepageSource({
        nodeName: node,
        vnfsIn: (namespace) => vnfs.list((vnf) => vnf.metadata.namespace === namespace),
        pod: (namespace, name) => pods.getByName(name, namespace),
        cgroupRoot: this.host.roots.cgroup,
        logger,
      }));
      this.nri = new NriPlugin({ socketPath: options.nriSocket ?? DEFAULT_NRI_SOCKET, source, logger, clock });
    }

    const feeds = options.changeFeeds ?? KERNEL_CHANGE_FEEDS;
    if (feeds.length > 0) this.monitor = new ChangeMonitor({ commands: feeds, logger, onChange: () => this.nodeController.enqueue(node) });

    this.manager = new Manager({ logger, clock, signalSource: options.signalSource ?? new EventEmitter() })
      .addInformer(vnfs, pods, pools, nodes, nfvNodes)
      .addController(this.nodeController, this.vnfController);
  }

  /**
   * Finishes teardowns a previous run left half-done, then starts watching and reconciling.
   * Resolves once started; {@link done} resolves when the agent stops.
   */
  async start(): Promise<void> {
    if (this.running) throw new Error('the node agent is already started');
    const recovered = await recoverJournals(this.journals, this.host, () => ({ intent: 'unknown' }), this.logger);
    for (const outcome of recovered) if (outcome.action === 'tornDown') this.logger.info({ vnfUid: outcome.uid }, 'finished a teardown interrupted by the last stop');
    // Every journaled VNF is reconciled once, even if it vanished from the API server meanwhile.
    for (const state of (await this.journals.states()).values()) {
      if (state.plan) this.vnfController.enqueue(`${state.plan.namespace}/${state.plan.name}`);
    }
    this.nodeController.enqueue(this.nodeName);
    this.running = this.manager.run();
    this.monitor?.start();
    this.devicePlugins?.start();
    // Registered before the caches are loaded, the plugin would leave VNF containers alone.
    void Promise.all([this.informers.vnfs.waitForSync(), this.informers.pods.waitForSync()]).then((synced) => synced.every(Boolean) && this.nri?.start());
  }

  /**
   * Why a VNF container created now would miss its hugetlb limit: the runtime applies container
   * limits on this host and the NRI plugin that sets them is not registered. Undefined otherwise,
   * and always when NRI is turned off (the operator chose the pod-level limit alone).
   */
  private async nriMissing(): Promise<string | undefined> {
    const status = this.nri?.status();
    if (!status || status.registered || !this.nriSource) return undefined;
    if (!(await this.nriSource.runtimeSetsContainerHugetlb())) return undefined;
    const { lastError } = status;
    return `the container runtime applies container hugetlb limits here and the agent's NRI plugin is not registered with it${lastError ? ` (${lastError})` : ''}; the VNF container would start with kubelet's limit 0. Enable NRI in the runtime, or set the chart's agent.nriSocket to "" if the runtime applies no container hugetlb limits (containerd's disable_hugetlb_controller = true)`;
  }

  /** Resolves when the agent has stopped, with the reason. */
  done(): Promise<ManagerExitReason> {
    if (!this.running) throw new Error('the node agent was not started');
    return this.running;
  }

  /** Stops gracefully: reconciles in flight finish, host state stays as the journal records it. */
  async stop(): Promise<void> {
    this.monitor?.stop();
    await this.devicePlugins?.stop();
    await this.nri?.stop();
    if (this.running) await this.manager.stop();
    if (this.ownsClient) this.client.close();
  }

  private async hostFacts(): Promise<{ cpus: Set<number>; numaNodes: Set<number> }> {
    const cpus = this.inventory?.cpus ?? (await discoverCpus({ sysfs: this.host.roots.sysfs, proc: this.host.roots.proc })).cpus;
    return { cpus: new Set(cpus.map((c) => c.id)), numaNodes: new Set(cpus.map((c) => c.numaNode)) };
  }
}
