/**
 * Plays the node agent's side of the protocol for KWOK nodes, so the controller can be tested end
 * to end without hardware: publishes each node's NfvNode inventory and its HugepagePool
 * reservations, reports NodePrepared=True once a placed VNF's pod exists on the node, and
 * TornDown once a deleted VNF's pod is gone. It writes exactly what the real agent writes, with
 * the agent's field manager.
 *
 * It also writes what kubelet would then report in the Node's capacity and allocatable, from the
 * agent's device plugins, after the NfvNode as the real agent's plugins follow it:
 * - one `nfv.dev/vfio-group-<N>` per IOMMU group and one `nfv.dev/uio-<address>` per NIC, all
 *   allocatable (a simulated driver is bound at once; the real plugins report a device healthy only
 *   after the agent bound it);
 * - `nfv.dev/hugepages-<size>`: the pages the agent's hugepage plugin lists, from the published
 *   reservations and the ledger, at once (a real kubelet takes seconds, and needs no restart).
 * The native `hugepages-<size>` stay as the Node was created: VNF pods do not request them.
 */
import type { KubeConfig, V1Node, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { AGENT_FIELD_MANAGER, VNF_NAME_LABEL } from '../../src/api/group.js';
import { poolPagesPerNumaNode, type HugepagePool } from '../../src/api/hugepage-pool.js';
import type { Inventory, NfvNode, PoolReservation } from '../../src/api/nfv-node.js';
import type { VirtualNetworkFunction } from '../../src/api/virtual-network-function.js';
import { resources } from '../../src/controllers/resources.js';
import { matchesSelector } from '../../src/controllers/placement/node-eligibility.js';
import { vnfPodName } from '../../src/controllers/vnf/render-pod.js';
import { hugepageDevicesOf, listedHugepages } from '../../node-agent/device-plugin/hugepage-devices.js';
import { pluginDevicesOf } from '../../node-agent/device-plugin/plugin-devices.js';
import { findCondition, formatTime } from '../../src/runtime/conditions.js';
import { Controller } from '../../src/runtime/controller.js';
import { Informer } from '../../src/runtime/informer.js';
import { KubeClient } from '../../src/runtime/kube-client.js';
import { objectKey } from '../../src/runtime/kube-object.js';
import { buildInventory, type InventoryShape } from './nfv-inventory.js';

/** A simulated NFV node: its name, hardware shape, and optionally a kernel that gives fewer pages. */
export interface SimulatedNode {
  name: string;
  shape?: InventoryShape;
  /** Pages the kernel can give per NUMA node and pool, to simulate fragmentation. Default: all. */
  maxPagesPerNuma?: number;
  /**
   * Whether kubelet has the agent's device plugins. False plays a node where they are not
   * registered (no kubelet.sock yet, or an agent run with NFV_DEVICE_PLUGIN_DIR=none): its Node
   * lists no `nfv.dev/` resources until {@link SimulatedAgent.registerDevicePlugins}. Default: true.
   */
  devicePluginsRegistered?: boolean;
}

/** Field manager of the Node status this plays kubelet for. */
const KUBELET_FIELD_MANAGER = 'nfv-simulated-kubelet';

/** The test-side agent; start it, then stop it in afterAll. */
export class SimulatedAgent {
  private readonly client: KubeClient;
  private readonly vnfs: Informer<VirtualNetworkFunction>;
  private readonly pods: Informer<V1Pod>;
  private readonly pools: Informer<HugepagePool>;
  private readonly nodes: Informer<V1Node>;
  private readonly controllers: Controller[];
  private readonly simulated = new Map<string, SimulatedNode>();

  constructor(kubeConfig: KubeConfig, private readonly logger: Logger) {
    this.client = new KubeClient(kubeConfig, { userAgent: 'nfv-simulated-agent' });
    this.vnfs = Informer.forResource(this.client, resources.vnfs, { logger });
    this.pods = Informer.forResource(this.client, resources.pods, { logger, labelSelector: VNF_NAME_LABEL });
    this.pools = Informer.forResource(this.client, resources.hugepagePools, { logger });
    this.nodes = Informer.forResource(this.client, resources.nodes, { logger });
    const onMyNode = (vnf: VirtualNetworkFunction) => this.simulated.has(vnf.status?.placement?.node ?? '');
    const vnfController = new Controller({ name: 'sim-agent-vnf', logger, workers: 4, reconcile: (key) => this.reconcileVnf(key) })
      .for(this.vnfs, { filter: ({ object }) => onMyNode(object) })
      .watches(this.pods, ({ object }) => `${object.metadata!.namespace}/${object.metadata!.labels![VNF_NAME_LABEL]}`);
    const nodeController = new Controller({ name: 'sim-agent-node', logger, reconcile: (key) => this.publishNode(key) })
      .watches(this.nodes, ({ object }) => (this.simulated.has(object.metadata!.name!) ? object.metadata!.name! : undefined))
      .watches(this.pools, () => [...this.simulated.keys()]);
    this.controllers = [vnfController, nodeController];
  }

  /** Adds nodes to simulate (their Node objects must exist, e.g. from createKwokNodes). */
  addNodes(nodes: readonly SimulatedNode[]): void {
    for (const node of nodes) {
      this.simulated.set(node.name, node);
      this.controllers[1]!.enqueue(node.name);
    }
  }

  /** Registers a node's device plugins with its kubelet, which then lists their resources in the Node. */
  registerDevicePlugins(name: string): void {
    const sim = this.simulated.get(name);
    if (!sim) throw new Error(`node ${name} is not simulated`);
    this.simulated.set(name, { ...sim, devicePluginsRegistered: true });
    this.controllers[1]!.enqueue(name);
  }

  /** Stops simulating a node, as if its agent died. */
  removeNode(name: string): void {
    this.simulated.delete(name);
  }

  async start(): Promise<void> {
    for (const informer of [this.vnfs, this.pods, this.pools, this.nodes]) informer.start();
    await Promise.all(this.controllers.map((c) => c.start()));
  }

  async stop(): Promise<void> {
    await Promise.all(this.controllers.map((c) => c.stop({ abortInFlight: true })));
    await Promise.all([this.vnfs, this.pods, this.pools, this.nodes].map((i) => i.stop()));
    this.client.close();
  }

  /** API requests this agent made, to subtract from a benchmark's count. */
  requestCount(): number {
    return Object.values(this.client.requestCounts()).reduce((a, b) => a + b, 0);
  }

  private async publishNode(name: string): Promise<void> {
    const sim = this.simulated.get(name);
    const node = this.nodes.getByName(name);
    if (!sim || !node) return;
    const bootInventory = buildInventory(sim.shape);
    const metadata = {
      name,
      ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name, uid: node.metadata!.uid!, blockOwnerDeletion: false }],
    };
    await this.client.apply(resources.nfvNodes, { metadata }, { fieldManager: AGENT_FIELD_MANAGER, force: true });
    const hugepagePools = this.reservations(sim, node, bootInventory);
    const inventory = withReservedPages(bootInventory, hugepagePools);
    const status = {
      inventory,
      hugepagePools,
      agentVersion: 'simulated',
      conditions: [{ type: 'Ready', status: 'True', reason: 'InventoryPublished', message: 'simulated agent', lastTransitionTime: formatTime(new Date()) }],
    };
    // The answer carries the ledger too: the real agent's page list reads both from the NfvNode.
    const published = await this.client.apply<NfvNode>(resources.nfvNodes, { metadata: { name }, status } as NfvNode, {
      fieldManager: AGENT_FIELD_MANAGER,
      force: true,
      subresource: 'status',
    });
    if (sim.devicePluginsRegistered !== false) await this.reportNodeResources(node, kubeletResources(inventory, published.status));
  }

  private async reportNodeResources(node: V1Node, reported: Record<string, string>): Promise<void> {
    const { capacity = {}, allocatable = {} } = node.status ?? {};
    if (Object.entries(reported).every(([name, quantity]) => capacity[name] === quantity && allocatable[name] === quantity)) return;
    await this.client.apply(resources.nodes, { metadata: { name: node.metadata!.name }, status: { capacity: reported, allocatable: reported } }, {
      fieldManager: KUBELET_FIELD_MANAGER,
      force: true,
      subresource: 'status',
    });
  }

  private reservations(sim: SimulatedNode, node: V1Node, inventory: Inventory): PoolReservation[] {
    const numaIds = inventory.numaNodes.map((n) => n.id);
    return this.pools
      .list((pool) => matchesSelector(node.metadata?.labels ?? {}, pool.spec.nodeSelector))
      .flatMap((pool) =>
        [...poolPagesPerNumaNode(pool.spec, numaIds)].map(([numaNode, requested]) => {
          const allocated = Math.min(requested, sim.maxPagesPerNuma ?? requested);
          return {
            pool: pool.metadata.name!,
            pageSize: pool.spec.pageSize,
            numaNode,
            requested,
            allocated,
            ...(allocated < requested ? { reason: 'KernelFragmentation', message: `the kernel gave ${allocated} of ${requested} pages` } : {}),
          };
        }),
      );
  }

  private async reconcileVnf(key: string): Promise<void> {
    const vnf = this.vnfs.get(key);
    const node = vnf?.status?.placement?.node;
    if (!vnf || !node || !this.simulated.has(node)) return;
    const pod = this.pods.getByName(vnfPodName(vnf.metadata.name!), vnf.metadata.namespace);
    const current = findCondition(vnf.status?.conditions, 'NodePrepared');
    let next: { status: 'True' | 'False'; reason: string; message: string } | undefined;
    if (vnf.metadata.deletionTimestamp) {
      if (!pod) next = { status: 'False', reason: 'TornDown', message: `simulated agent on ${node} undid every host change` };
    } else if (pod?.spec?.nodeName === node) {
      next = { status: 'True', reason: 'Prepared', message: `simulated agent on ${node} prepared pod ${pod.metadata!.uid}` };
    }
    if (!next || (current?.status === next.status && current.reason === next.reason)) return;
    this.logger.debug({ vnf: objectKey(vnf), reason: next.reason }, 'simulated agent reports');
    await this.client.apply(
      resources.vnfs,
      {
        metadata: { name: vnf.metadata.name, namespace: vnf.metadata.namespace },
        status: { conditions: [{ type: 'NodePrepared', ...next, lastTransitionTime: formatTime(new Date()), observedGeneration: vnf.metadata.generation }] },
      },
      { fieldManager: AGENT_FIELD_MANAGER, force: true, subresource: 'status' },
    );
  }
}

/**
 * The inventory as the real agent publishes it: discovered after reserving, so each NUMA node's
 * nr_hugepages counts the pools' pages on top of the boot-time ones.
 */
function withReservedPages(boot: Inventory, reservations: readonly PoolReservation[]): Inventory {
  const reserved = (numaNode: number, pageSize: string) =>
    reservations.filter((r) => r.numaNode === numaNode && r.pageSize === pageSize).reduce((sum, r) => sum + r.allocated, 0);
  return {
    ...boot,
    numaNodes: boot.numaNodes.map((numa) => ({
      ...numa,
      hugepages: numa.hugepages.map((h) => ({ ...h, total: h.total + reserved(numa.id, h.pageSize), free: h.free + reserved(numa.id, h.pageSize) })),
    })),
  };
}

/** What kubelet reports from the agent's device plugins (see the file comment): one per NIC device, the pages of each size. */
function kubeletResources(inventory: Inventory, status: NfvNode['status']): Record<string, string> {
  const devices = pluginDevicesOf(inventory.nics).map((device) => [device.resource, '1']);
  const pages = hugepageDevicesOf(status).map((offered) => [offered.resource, String(listedHugepages(offered).length)]);
  return Object.fromEntries([...devices, ...pages]);
}
