/**
 * This machine as a one-node NFV cluster, without an API server, through the project's own code:
 *
 * - the API objects as the API server holds them: specs defaulted and validated by the CRD's zod
 *   schema, a UID, the controller's finalizer;
 * - the VNF controller's decision (`planVnf`): placement on the node's inventory minus its ledger,
 *   memif peers checked and co-located, the allocation for the ledger, the status, the pod;
 * - the node agent's work on the real kernel: the inventory it discovers (CPUs, NUMA nodes and
 *   hugepages of this machine; NICs of a fake PCI bus), the HugepagePool reservation, and
 *   prepare (host stage, then the pod stage once the pod's cgroup exists) and teardown.
 *
 * The agent's host mechanisms are its own, on the real /sys, /proc and cgroups, except that PCI
 * devices are read from the fake bus, so no step can ever reach the machine's own devices.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { API_VERSION, VNF_FINALIZER } from '../../../src/api/group.js';
import { hugepagePoolSpecSchema, type HugepagePool } from '../../../src/api/hugepage-pool.js';
import type { Inventory } from '../../../src/api/nfv-node.js';
import { vnfSpecSchema, type VirtualNetworkFunction } from '../../../src/api/virtual-network-function.js';
import type { CandidateNode } from '../../../src/controllers/placement/candidate-node.js';
import type { VnfObservation } from '../../../src/controllers/vnf/observation.js';
import { planVnf, type VnfAction, type VnfPlan } from '../../../src/controllers/vnf/plan.js';
import { discoverCpus, type DiscoveryRoots } from '../../../node-agent/discover/cpu-topology.js';
import { discoverNumaNodes } from '../../../node-agent/discover/numa-nodes.js';
import { discoverNics } from '../../../node-agent/discover/pci-nics.js';
import { planHugepageTargets, poolReservations, type HugepageOutcome } from '../../../node-agent/hugepage-pools.js';
import { DriverBinding } from '../../../node-agent/host/driver-binding.js';
import { KernelHostUseProbe } from '../../../node-agent/host/host-use.js';
import { createNodeHost, type NodeHost } from '../../../node-agent/host/node-host.js';
import { SysfsMasks } from '../../../node-agent/host/sysfs-masks.js';
import { JournalStore } from '../../../node-agent/journal.js';
import { prepareVnf } from '../../../node-agent/prepare.js';
import { journalStepContext } from '../../../node-agent/recover.js';
import { teardownVnf } from '../../../node-agent/teardown.js';
import { planVnfHost, type VnfHostPlan } from '../../../node-agent/validate.js';
import type { FakePciBus } from './fake-pci-bus.js';

/** What `kubectl apply` would send as a VNF's spec. */
export type VnfSpecInput = Parameters<typeof vnfSpecSchema.parse>[0];

/** Options of {@link OneNodeCluster.start}. */
export interface OneNodeClusterOptions {
  /** The agent's (and the controller's) state root: host paths and journals. */
  stateRoot: string;
  /** CPUs the node isolates for VNFs, as isolcpus= would (this machine boots without it). */
  isolatedCpus: readonly number[];
  /** 2Mi pages per NUMA node of the HugepagePool {@link OneNodeCluster.POOL}. */
  poolPages: number;
  /** The node's PCI devices, as the agent discovers and masks them: a fake bus. */
  pciBus: FakePciBus;
}

/** What one reconcile of the VNF controller decided for a new VNF. */
export interface PlacedVnf {
  /** The VNF with the status the controller wrote (status.placement mirrors the ledger). */
  vnf: VirtualNetworkFunction;
  /** The pod the controller creates. */
  pod: V1Pod;
}

/** One node, its HugepagePool, the VNFs on it, the controller's decisions and the agent's host work. */
export class OneNodeCluster {
  static readonly NODE = 'dataplane-node';
  static readonly NAMESPACE = 'dataplane';
  static readonly POOL = 'dataplane';

  readonly journals: JournalStore;
  readonly pool: HugepagePool;
  private readonly vnfs = new Map<string, VirtualNetworkFunction>();
  /** nr_hugepages per NUMA node before the pool was reserved: given back in {@link stop}. */
  private readonly hugepagesBefore = new Map<number, number>();

  private constructor(
    readonly stateRoot: string,
    readonly host: NodeHost,
    readonly node: CandidateNode,
    poolPages: number,
  ) {
    this.journals = new JournalStore(stateRoot);
    this.pool = {
      apiVersion: API_VERSION,
      kind: 'HugepagePool',
      metadata: { name: OneNodeCluster.POOL, uid: randomUUID() },
      spec: hugepagePoolSpecSchema.parse({ pageSize: '2Mi', pagesPerNumaNode: poolPages }),
    };
  }

  /**
   * Discovers the node as the agent does, and reserves the pool's hugepages with the agent's
   * reservation code, as its node reconcile does: on top of the pages the kernel held before,
   * which are not the agent's and are never taken back.
   */
  static async start(options: OneNodeClusterOptions): Promise<OneNodeCluster> {
    const real: DiscoveryRoots = { sysfs: '/sys', proc: '/proc' };
    const fakePci: DiscoveryRoots = { sysfs: options.pciBus.root, proc: '/proc' };
    const hostUse = new KernelHostUseProbe({ sysfsRoot: fakePci.sysfs });
    const host = createNodeHost(
      {},
      { overrides: { hostUse, masks: new SysfsMasks(fakePci.sysfs), drivers: new DriverBinding(fakePci.sysfs, { hostUse }) } },
    );
    const discovered = await discoverCpus(real);
    const cpus = discovered.cpus.map((cpu) => ({ ...cpu, isolated: options.isolatedCpus.includes(cpu.id) }));
    const inventory: Inventory = {
      threadsPerCore: discovered.threadsPerCore,
      cpus,
      numaNodes: await discoverNumaNodes(real, cpus),
      nics: await discoverNics(fakePci, hostUse, []),
    };
    const node: CandidateNode = {
      name: OneNodeCluster.NODE,
      labels: { 'kubernetes.io/hostname': OneNodeCluster.NODE },
      taints: [],
      unschedulable: false,
      ready: true,
      inventory,
      pools: [],
      allocations: [],
    };
    const cluster = new OneNodeCluster(options.stateRoot, host, node, options.poolPages);
    try {
      await cluster.reservePool();
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  private async reservePool(): Promise<void> {
    const numaNodes = this.node.inventory.numaNodes.map((n) => n.id);
    const outcomes: HugepageOutcome[] = [];
    for (const target of planHugepageTargets([this.pool], this.node.labels, numaNodes, new Map<string, number>())) {
      const before = (await this.host.reservation.read(target.numaNode, target.pageSize)).total;
      this.hugepagesBefore.set(target.numaNode, before);
      const result = await this.host.reservation.reserve(target.numaNode, target.pageSize, before + target.requested);
      outcomes.push({ ...target, allocated: result.allocated - before });
    }
    this.node.pools = poolReservations([this.pool], this.node.labels, numaNodes, outcomes);
    const short = this.node.pools.filter((p) => p.allocated < p.requested);
    if (short.length > 0) throw new Error(`the kernel did not give the pool its hugepages: ${JSON.stringify(short)}`);
  }

  /** Every CPU id of the node. */
  get cpus(): number[] {
    return this.node.inventory.cpus.map((c) => c.id);
  }

  /** `kubectl apply` of a new VNF: the object as the API server stores it, finalizer added by the controller's first reconcile. */
  create(name: string, spec: VnfSpecInput): VirtualNetworkFunction {
    if (this.vnfs.has(name)) throw new Error(`VNF ${name} exists already`);
    const vnf: VirtualNetworkFunction = {
      apiVersion: API_VERSION,
      kind: 'VirtualNetworkFunction',
      metadata: { name, namespace: OneNodeCluster.NAMESPACE, uid: randomUUID(), generation: 1, finalizers: [VNF_FINALIZER] },
      spec: vnfSpecSchema.parse(spec),
    };
    this.vnfs.set(name, vnf);
    return vnf;
  }

  /**
   * One reconcile of the VNF controller for a VNF that holds nothing yet: it must place it. The
   * allocation goes into the node's ledger and the status into the VNF, as the controller's act
   * step would write them.
   */
  place(vnf: VirtualNetworkFunction): PlacedVnf {
    const plan = this.reconcile(vnf);
    const commit = plan.actions.find((a): a is Extract<VnfAction, { type: 'CommitAllocation' }> => a.type === 'CommitAllocation');
    const apply = plan.actions.find((a): a is Extract<VnfAction, { type: 'ApplyPod' }> => a.type === 'ApplyPod');
    if (!commit || !apply || !plan.status) {
      throw new Error(`the controller did not place VNF ${vnf.metadata.name}: ${JSON.stringify(plan.status?.conditions ?? plan.actions)}`);
    }
    this.node.allocations.push(commit.allocation);
    vnf.status = plan.status;
    return { vnf, pod: apply.pod };
  }

  /** The VNF controller's plan for a VNF that holds nothing yet, from what the cluster holds now. Writes nothing. */
  reconcile(vnf: VirtualNetworkFunction): VnfPlan {
    const observation: VnfObservation = {
      vnf,
      pod: undefined,
      pool: this.pool,
      // The VNFs it links to: for the two-VNF chains here, every other member of its chain.
      peers: new Map(vnf.spec.links.map((link) => [link.peer, this.vnfs.get(link.peer)])),
      ledger: undefined,
      nodes: [this.node],
      ledgerNodeExists: true,
      stateRoot: this.stateRoot,
    };
    return planVnf(observation, new Date());
  }

  /** The agent's validated plan for a placed VNF. */
  hostPlan(vnf: VirtualNetworkFunction): VnfHostPlan {
    return planVnfHost(vnf, {
      stateRoot: this.stateRoot,
      nodeName: OneNodeCluster.NODE,
      cpus: new Set(this.cpus),
      numaNodes: new Set(this.node.inventory.numaNodes.map((n) => n.id)),
    });
  }

  /** The agent's host stage: hugetlbfs, PCI and CPU masks, memif directories. */
  async prepareHost(vnf: VirtualNetworkFunction): Promise<VnfHostPlan> {
    const plan = this.hostPlan(vnf);
    const result = await prepareVnf(plan, this.journals.journal(plan.uid), this.host, journalStepContext(this.journals, plan.uid));
    if (result.stage !== 'host') throw new Error(`unexpected preparation stage ${result.stage}`);
    return plan;
  }

  /** The agent's pod stage once the pod's cgroup exists: cgroup limits, then the ready signal for this pod. */
  async preparePod(vnf: VirtualNetworkFunction, podUid: string): Promise<void> {
    const plan = this.hostPlan(vnf);
    const result = await prepareVnf(plan, this.journals.journal(plan.uid), this.host, journalStepContext(this.journals, plan.uid), { podUid });
    if (result.stage !== 'ready') throw new Error(`unexpected preparation stage ${result.stage}`);
  }

  /**
   * Deletion of a VNF whose pod is gone: the agent tears down what its journal records, then the
   * controller releases the ledger entry and the finalizer, and the object goes.
   */
  async delete(vnf: VirtualNetworkFunction): Promise<void> {
    const uid = vnf.metadata.uid!;
    await teardownVnf(this.journals.journal(uid), this.host, journalStepContext(this.journals, uid));
    this.node.allocations = this.node.allocations.filter((a) => a.uid !== uid);
    this.vnfs.delete(vnf.metadata.name!);
  }

  /** The pod's cgroup in the hugetlb hierarchy, found the way the agent finds it. */
  async hugetlbCgroup(podUid: string): Promise<{ dir: string; version: 1 | 2 }> {
    const layout = await this.host.podCgroups.hierarchies();
    const { hugetlb } = await this.host.podCgroups.locate(podUid);
    return { dir: hugetlb!, version: layout.hugetlb!.version };
  }

  /** 2Mi hugepage bytes charged to the pod now, and how often its limit refused memory. */
  async hugetlbUsage(podUid: string): Promise<{ bytes: number; limit: number; limitHits: number }> {
    const { dir, version } = await this.hugetlbCgroup(podUid);
    const read = (file: string) => readFileSync(posix.join(dir, file), 'utf8');
    if (version === 2) {
      return { bytes: Number(read('hugetlb.2MB.current')), limit: Number(read('hugetlb.2MB.max')), limitHits: Number(/max (\d+)/.exec(read('hugetlb.2MB.events'))?.[1] ?? 0) };
    }
    return { bytes: Number(read('hugetlb.2MB.usage_in_bytes')), limit: Number(read('hugetlb.2MB.limit_in_bytes')), limitHits: Number(read('hugetlb.2MB.failcnt')) };
  }

  /** nr_hugepages per NUMA node now. */
  async hugepageTotals(): Promise<Map<number, number>> {
    const totals = new Map<number, number>();
    for (const numaNode of this.hugepagesBefore.keys()) totals.set(numaNode, (await this.host.reservation.read(numaNode, '2Mi')).total);
    return totals;
  }

  /** nr_hugepages per NUMA node before the pool. */
  get hugepageTotalsBefore(): Map<number, number> {
    return new Map(this.hugepagesBefore);
  }

  /**
   * Tears down every VNF the agent still has a journal for (after a failed test) and gives the
   * pool's hugepages back, as the agent does when the pool goes. Pods must be gone.
   */
  async stop(): Promise<void> {
    const errors: unknown[] = [];
    for (const uid of await this.journals.uids()) {
      await teardownVnf(this.journals.journal(uid), this.host, journalStepContext(this.journals, uid)).catch((err: unknown) => errors.push(err));
    }
    this.vnfs.clear();
    this.node.allocations = [];
    for (const [numaNode, before] of this.hugepagesBefore) {
      await this.host.reservation.reserve(numaNode, '2Mi', before).catch((err: unknown) => errors.push(err));
    }
    if (errors.length > 0) throw new AggregateError(errors, `cleaning up the node failed: ${errors.map((e) => (e as Error).message).join('; ')}`);
  }
}
