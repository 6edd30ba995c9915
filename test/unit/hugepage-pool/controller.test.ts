import { afterEach, describe, expect, test } from '@jest/globals';
import type { V1Node } from '@kubernetes/client-node';
import type { HugepagePool, HugepagePoolStatus } from '../../../src/api/hugepage-pool.js';
import type { NfvNode } from '../../../src/api/nfv-node.js';
import { hugepagePoolController } from '../../../src/controllers/hugepage-pool/controller.js';
import { findCondition } from '../../../src/runtime/conditions.js';
import type { Controller } from '../../../src/runtime/controller.js';
import { FakeClock, flushPromises } from '../../../src/runtime/fake-clock.js';
import { Informer } from '../../../src/runtime/informer.js';
import type { KubeObject } from '../../../src/runtime/kube-object.js';
import { StatusWriter } from '../../../src/runtime/status-writer.js';
import { goldPool } from '../../fixtures/vnf.js';
import { ScriptedSource, silentLogger } from '../runtime/test-support.js';

/** Node n1 as kubelet reports it: the agent's 1Gi pages, its native (boot-time) hugepages and a heartbeat time. */
const node = (resourceVersion: string, pages1Gi: string, heartbeat = '2026-11-29T10:00:00Z', native1Gi = '0'): V1Node => ({
  metadata: { name: 'n1', resourceVersion, labels: {} },
  status: {
    allocatable: { cpu: '32', 'nfv.dev/hugepages-1Gi': pages1Gi, 'hugepages-1Gi': native1Gi, 'hugepages-2Mi': '0' },
    conditions: [{ type: 'Ready', status: 'True', lastHeartbeatTime: new Date(heartbeat) }],
  },
});

/** NfvNode n1: pool gold reserved 4 1Gi pages on each NUMA node. */
const nfvNode: NfvNode = {
  apiVersion: 'nfv.dev/v1alpha1',
  kind: 'NfvNode',
  metadata: { name: 'n1', resourceVersion: '1' },
  spec: undefined,
  status: {
    inventory: { threadsPerCore: 2, cpus: [], nics: [], numaNodes: [0, 1].map((id) => ({ id, cpus: '', hugepages: [{ pageSize: '1Gi' as const, total: 4, free: 4 }] })) },
    hugepagePools: [0, 1].map((numaNode) => ({ pool: 'gold', pageSize: '1Gi' as const, numaNode, requested: 4, allocated: 4 })),
  },
};

function informerOf<T extends KubeObject>(clock: FakeClock, items: T[]): { informer: Informer<T>; source: ScriptedSource<T> } {
  const source = new ScriptedSource<T>();
  source.listResults.push({ items, resourceVersion: '1' });
  return { informer: new Informer<T>({ source, logger: silentLogger(), clock, minWatchDurationMs: 0 }), source };
}

describe('hugepagePoolController', () => {
  let controller: Controller | undefined;
  afterEach(async () => {
    await controller?.stop({ abortInFlight: true });
  });

  test('re-aggregates when a Node advertises other nfv.dev/hugepages or the reservations change, not on heartbeats, native hugepages or inventory', async () => {
    const clock = new FakeClock(Date.UTC(2026, 10, 29, 10, 0, 0));
    const pools = informerOf<HugepagePool>(clock, [{ ...goldPool(), metadata: { name: 'gold', resourceVersion: '1' } }]);
    const nodes = informerOf<V1Node & KubeObject>(clock, [node('1', '0')]);
    const nfvNodes = informerOf<NfvNode>(clock, [nfvNode]);
    const written: HugepagePoolStatus[] = [];
    const statusWriter = new StatusWriter(
      {
        apply: async (_ref, object) => {
          written.push((object as unknown as { status: HugepagePoolStatus }).status);
          return object;
        },
      },
      { fieldManager: 'nfv-operator' },
    );
    controller = hugepagePoolController({ pools: pools.informer, nodes: nodes.informer, nfvNodes: nfvNodes.informer, statusWriter, logger: silentLogger(), clock });
    for (const { informer } of [pools, nodes, nfvNodes]) informer.start();
    await controller.start();
    await flushPromises();
    expect(written).toHaveLength(1);
    expect(findCondition(written[0]!.conditions, 'KubeletAdvertised')).toMatchObject({ status: 'False', reason: 'WaitingForNodeStatus' });

    // The cached pool never gets the written status, so every reconcile would write again: a
    // heartbeat, kubelet's native hugepages and the kernel counters of the inventory change nothing.
    nodes.source.lastWatch().push({ type: 'MODIFIED', object: node('2', '0', '2026-11-29T10:00:40Z', '8Gi') });
    const moreKernelPages = structuredClone(nfvNode);
    moreKernelPages.metadata.resourceVersion = '2';
    moreKernelPages.status!.inventory!.numaNodes[0]!.hugepages[0]!.total = 6;
    nfvNodes.source.lastWatch().push({ type: 'MODIFIED', object: moreKernelPages });
    await flushPromises();
    expect(written).toHaveLength(1);

    nodes.source.lastWatch().push({ type: 'MODIFIED', object: node('3', '8', '2026-11-29T10:00:50Z') });
    await flushPromises();
    expect(written).toHaveLength(2);
    expect(findCondition(written[1]!.conditions, 'KubeletAdvertised')).toMatchObject({ status: 'True', reason: 'PagesAdvertised' });
    expect(findCondition(written[1]!.conditions, 'Ready')).toMatchObject({ status: 'True', reason: 'Reserved' });

    // The pool grows on n1: the agent publishes the reservation before kubelet has the new list.
    const grown = structuredClone(nfvNode);
    grown.metadata.resourceVersion = '3';
    grown.status!.hugepagePools = [0, 1].map((numaNode) => ({ pool: 'gold', pageSize: '1Gi' as const, numaNode, requested: 6, allocated: 6 }));
    nfvNodes.source.lastWatch().push({ type: 'MODIFIED', object: grown });
    await flushPromises();
    expect(written).toHaveLength(3);
    expect(findCondition(written[2]!.conditions, 'KubeletAdvertised')).toMatchObject({ status: 'False', reason: 'WaitingForNodeStatus' });
    expect(findCondition(written[2]!.conditions, 'Ready')).toMatchObject({ status: 'True', reason: 'Reserved' });
  });
});
