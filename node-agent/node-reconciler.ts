import type { V1Node } from '@kubernetes/client-node';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { posix } from 'node:path';
import type { PageSize } from '../src/api/common.js';
import { AGENT_FIELD_MANAGER, API_VERSION } from '../src/api/group.js';
import type { HugepagePool } from '../src/api/hugepage-pool.js';
import { NFV_NODE_KIND, type Inventory, type NfvNode, type NfvNodeStatus } from '../src/api/nfv-node.js';
import type { Clock } from '../src/runtime/clock.js';
import { findCondition, setCondition, type Condition } from '../src/runtime/conditions.js';
import type { ReconcileContext } from '../src/runtime/controller.js';
import { WaitingError, type ReconcileResult } from '../src/runtime/errors.js';
import { jsonEqual } from '../src/runtime/json-equal.js';
import type { KubeClient } from '../src/runtime/kube-client.js';
import type { ResourceRef } from '../src/runtime/kube-object.js';
import { discoverInventory, type NicPoolRule } from './discover/inventory.js';
import type { NodeHost } from './host/node-host.js';
import { heldBytesKey, planHugepageTargets, poolReservations, type HugepageOutcome } from './hugepage-pools.js';
import type { JournalStore } from './journal.js';

/** REST coordinates of NfvNodes. */
export const NFV_NODE_RESOURCE: ResourceRef = { group: 'nfv.dev', version: 'v1alpha1', plural: 'nfvnodes', kind: NFV_NODE_KIND, namespaced: false };

/** What the node reconcile needs. */
export interface NodeReconcilerDeps {
  nodeName: string;
  stateRoot: string;
  host: NodeHost;
  journals: JournalStore;
  agentVersion: string;
  nicPools: readonly NicPoolRule[];
  clock: Clock;
  client: Pick<KubeClient, 'apply'>;
  getNode(): V1Node | undefined;
  getNfvNode(): NfvNode | undefined;
  listPools(): HugepagePool[];
  /** Receives every inventory discovered (the VNF reconcile validates CPUs against it). */
  onInventory(inventory: Inventory): void;
  /** Fallback re-check period, in ms; a re-check publishes only what changed. */
  recheckMs: number;
}

/**
 * What the kernel held, per page size and NUMA node (heldBytesKey), before the agent first
 * managed it: pages reserved at boot or by someone else. Pools are reserved on top of it and a
 * deleted pool gives back down to it, never below: the agent owns only the pages it added.
 */
const BASELINES_FILE = 'hugepage-baselines.json';

async function readBaselines(stateRoot: string): Promise<Map<string, number>> {
  try {
    const stored = JSON.parse(await readFile(posix.join(stateRoot, BASELINES_FILE), 'utf8')) as Record<string, unknown>;
    return new Map(Object.entries(stored).filter((entry): entry is [string, number] => Number.isSafeInteger(entry[1]) && (entry[1] as number) >= 0));
  } catch {
    return new Map();
  }
}

const serializeBaselines = (baselines: ReadonlyMap<string, number>) => JSON.stringify(Object.fromEntries([...baselines].sort()));

/** Replaces the file atomically, and only when the baselines changed: most reconciles change none. */
async function writeBaselines(stateRoot: string, baselines: ReadonlyMap<string, number>, stored: ReadonlyMap<string, number>): Promise<void> {
  const text = serializeBaselines(baselines);
  if (text === serializeBaselines(stored)) return;
  await mkdir(stateRoot, { recursive: true });
  const file = posix.join(stateRoot, BASELINES_FILE);
  await writeFile(`${file}.tmp`, text);
  await rename(`${file}.tmp`, file);
}

/**
 * The node's own reconcile: reserve the hugepages the pools ask for (never below what prepared
 * VNFs hold), discover the inventory, and publish both, with agentVersion and Ready, on the
 * NfvNode status by server-side apply. The NfvNode is created owned by its Node. Writes happen
 * only when something changed; status.allocations is never sent (it is the controller's).
 */
export function nodeReconciler(deps: NodeReconcilerDeps) {
  return async (_key: string, ctx: ReconcileContext): Promise<ReconcileResult> => {
    const node = deps.getNode();
    if (!node?.metadata?.uid) throw new WaitingError('NodeNotFound', `Node ${deps.nodeName} is not in the cache yet`, 5000);
    const labels = node.metadata.labels ?? {};
    const roots = { sysfs: deps.host.roots.sysfs, proc: deps.host.roots.proc };
    const discover = () => discoverInventory(roots, { hostUse: deps.host.hostUse, nicPools: deps.nicPools });
    const numaNodes = (await discover()).numaNodes.map((n) => n.id);

    const held = new Map<string, number>();
    for (const state of (await deps.journals.states()).values()) {
      if (!state.plan) continue;
      const key = heldBytesKey(state.plan.pageSize, state.plan.numaNode);
      held.set(key, (held.get(key) ?? 0) + state.plan.hugepageBytes);
    }
    const pools = deps.listPools();
    const stored = await readBaselines(deps.stateRoot);
    const baselines = new Map(stored);
    const managed = [...new Set([...baselines.keys()].map((key) => key.split('/')[0] as PageSize))];
    const targets = planHugepageTargets(pools, labels, numaNodes, held, managed);
    const outcomes: HugepageOutcome[] = [];
    for (const target of targets) {
      const key = heldBytesKey(target.pageSize, target.numaNode);
      try {
        if (!baselines.has(key)) baselines.set(key, (await deps.host.reservation.read(target.numaNode, target.pageSize)).total);
        const base = baselines.get(key)!;
        const result = await deps.host.reservation.reserve(target.numaNode, target.pageSize, base + target.requested, base + target.floor);
        const allocated = Math.max(0, result.allocated - base);
        outcomes.push({ ...target, allocated });
        if (result.allocated < result.requested) {
          ctx.logger.warn({ ...target, baseline: base, allocated, attempts: result.attempts }, 'kernel gave fewer hugepages than requested');
        }
        // Back at the baseline with no pool asking: no longer ours to manage.
        if (target.requested === 0 && allocated === 0) baselines.delete(key);
      } catch (err) {
        ctx.logger.error({ err, ...target }, 'cannot reserve hugepages');
        outcomes.push({ ...target, allocated: 0 });
      }
    }
    await writeBaselines(deps.stateRoot, baselines, stored);

    const inventory = await discover();
    deps.onInventory(inventory);
    const current = deps.getNfvNode();
    const ownerUid = node.metadata.uid;
    if (!current?.metadata?.ownerReferences?.some((ref) => ref.uid === ownerUid)) {
      await deps.client.apply(
        NFV_NODE_RESOURCE,
        {
          apiVersion: API_VERSION,
          kind: NFV_NODE_KIND,
          metadata: { name: deps.nodeName, ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: deps.nodeName, uid: ownerUid }] },
        },
        { fieldManager: AGENT_FIELD_MANAGER, force: true, signal: ctx.signal },
      );
    }

    const hugepages = inventory.numaNodes.flatMap((n) => n.hugepages).length;
    const ready = findCondition(current?.status?.conditions as Condition[] | undefined, 'Ready');
    const message = `${inventory.cpus.length} CPUs (${inventory.cpus.filter((c) => c.isolated).length} isolated), ${inventory.numaNodes.length} NUMA node(s), ${hugepages} hugepage pool(s), ${inventory.nics.length} NIC(s)`;
    const [readyCondition] = setCondition(ready ? [ready] : [], { type: 'Ready', status: 'True', reason: 'InventoryCurrent', message }, new Date(deps.clock.now()));
    const status: NfvNodeStatus = {
      inventory,
      hugepagePools: poolReservations(pools, labels, numaNodes, outcomes),
      agentVersion: deps.agentVersion,
      conditions: [readyCondition!],
    };
    const before = current?.status;
    const unchanged =
      before !== undefined &&
      jsonEqual(before.inventory, status.inventory) &&
      jsonEqual(before.hugepagePools ?? [], status.hugepagePools) &&
      before.agentVersion === status.agentVersion &&
      ready !== undefined &&
      ready.status === 'True' &&
      ready.reason === readyCondition!.reason &&
      ready.message === readyCondition!.message;
    if (!unchanged) {
      // No resourceVersion: the apply is not conditional. No allocations: the controller's ledger.
      await deps.client.apply(
        NFV_NODE_RESOURCE,
        { apiVersion: API_VERSION, kind: NFV_NODE_KIND, metadata: { name: deps.nodeName }, status },
        { fieldManager: AGENT_FIELD_MANAGER, force: true, subresource: 'status', signal: ctx.signal },
      );
      ctx.logger.info({ hugepagePools: status.hugepagePools?.length, nics: inventory.nics.length }, 'published inventory');
    }
    return { requeueAfterMs: deps.recheckMs };
  };
}

