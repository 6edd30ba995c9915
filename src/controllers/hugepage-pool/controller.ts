import type { V1Node } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { PAGE_SIZES } from '../../api/common.js';
import { hugepageResource } from '../../api/device-resources.js';
import type { HugepagePool } from '../../api/hugepage-pool.js';
import type { NfvNode } from '../../api/nfv-node.js';
import type { Clock } from '../../runtime/clock.js';
import { Controller } from '../../runtime/controller.js';
import type { Informer } from '../../runtime/informer.js';
import { jsonEqual } from '../../runtime/json-equal.js';
import { objectKey } from '../../runtime/kube-object.js';
import type { StatusWriter } from '../../runtime/status-writer.js';
import { resources } from '../resources.js';
import { aggregatePool } from './aggregate.js';

/** Configuration of the HugepagePool controller. */
export interface HugepagePoolControllerOptions {
  pools: Informer<HugepagePool>;
  nodes: Informer<V1Node>;
  nfvNodes: Informer<NfvNode>;
  statusWriter: StatusWriter;
  logger: Logger;
  clock: Clock;
}

/**
 * Aggregates the agents' per-node reservations, the ledgers and the `nfv.dev/hugepages-<size>`
 * kubelet advertises in each Node's allocatable into each pool's status.
 */
export function hugepagePoolController(options: HugepagePoolControllerOptions): Controller {
  const { pools, nodes, nfvNodes, statusWriter, clock } = options;
  const allPools = () => pools.list().map(objectKey);
  return new Controller({
    name: 'hugepagepool',
    logger: options.logger,
    clock,
    reconcile: async (key, ctx) => {
      const pool = pools.get(key);
      if (!pool) return;
      const views = nfvNodes.list().map((nfvNode) => ({
        name: nfvNode.metadata.name!,
        labels: nodes.getByName(nfvNode.metadata.name!)?.metadata?.labels ?? {},
        nfvNode: nfvNode.status,
        allocatable: nodes.getByName(nfvNode.metadata.name!)?.status?.allocatable,
      }));
      const status = aggregatePool(pool, views, new Date(clock.now()));
      if (!jsonEqual(pool.status, status)) await statusWriter.write(resources.hugepagePools, pool, status, { signal: ctx.signal });
    },
  })
    .for(pools)
    .watches(nfvNodes, allPools, {
      // Inventory changes (drivers, kernel counters) are skipped: the pools read neither.
      filter: (e) => e.type !== 'update' || !jsonEqual(poolInputs(e.oldObject), poolInputs(e.object)),
    })
    .watches(nodes, allPools, {
      // Labels select nodes; kubelet raises or lowers allocatable nfv.dev/hugepages-<size> after
      // the agent's device plugin lists new pages (KubeletAdvertised). Heartbeats and other status
      // changes are skipped.
      filter: (e) =>
        e.type !== 'update' ||
        !jsonEqual([e.oldObject.metadata?.labels, hugepageAllocatable(e.oldObject)], [e.object.metadata?.labels, hugepageAllocatable(e.object)]),
    });
}

/** The `nfv.dev/hugepages-<size>` entries of a Node's allocatable. */
function hugepageAllocatable(node: V1Node): Record<string, string> {
  const resources = new Set(PAGE_SIZES.map(hugepageResource));
  return Object.fromEntries(Object.entries(node.status?.allocatable ?? {}).filter(([resource]) => resources.has(resource)));
}

/** What an NfvNode contributes to pool statuses: reservations and ledger. */
function poolInputs(nfvNode: NfvNode): unknown[] {
  return [nfvNode.status?.hugepagePools, nfvNode.status?.allocations];
}
