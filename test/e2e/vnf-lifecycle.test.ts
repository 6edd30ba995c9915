import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type { HugepagePool } from '../../src/api/hugepage-pool.js';
import type { NfvNode } from '../../src/api/nfv-node.js';
import { VNF_FINALIZER } from '../../src/api/group.js';
import { resources } from '../../src/controllers/resources.js';
import { startNfvFixture, type NfvFixture } from '../cluster/nfv-fixture.js';
import { waitUntil } from '../cluster/wait-until.js';

let f: NfvFixture;
// One NUMA node with 3 isolated cores (6 CPUs) per node: small enough to run out of.
const shape = { numaNodes: 1, coresPerNuma: 4, threadsPerCore: 2 };

beforeAll(async () => {
  f = await startNfvFixture('lifecycle', { nodes: 1, shape });
});
afterAll(async () => {
  await f?.close();
});

describe('VNF lifecycle against a real API server, scheduler and KWOK node', () => {
  test('a VNF is placed, its pod is created on the chosen node, then it is Ready', async () => {
    await f.create(f.vnf('fwd-a', { interfaces: [{ name: 'uplink', device: { pool: 'fast' }, driver: 'vfio-pci' }] }));
    const placed = await f.waitForCondition('fwd-a', 'Placed', 'True', 'Allocated');
    expect(placed.metadata.finalizers).toContain(VNF_FINALIZER);
    const placement = placed.status!.placement!;
    expect(placement).toMatchObject({ node: 'lifecycle-node-0', numaNode: 0, cpus: '1,5', hugepages: { bytes: 2 ** 30, pageSize: '1Gi' } });
    expect(placement.devices).toEqual([{ interface: 'uplink', pciAddress: '0000:18:00.0', iommuGroup: 20, driver: 'vfio-pci' }]);

    const ready = await f.waitForCondition('fwd-a', 'Ready', 'True', 'Running');
    expect(ready.status!.phase).toBe('Running');
    expect(ready.status!.conditions!.find((c) => c.type === 'NodePrepared')).toMatchObject({ status: 'True', reason: 'Prepared' });
    const pod = await f.client.get<V1Pod>(resources.pods, ready.status!.podName!, { namespace: f.ns.name });
    expect(pod.spec!.nodeName).toBe('lifecycle-node-0'); // bound by the real scheduler
    expect(pod.metadata!.ownerReferences![0]).toMatchObject({ kind: 'VirtualNetworkFunction', name: 'fwd-a', controller: true });
    const env = Object.fromEntries(pod.spec!.containers[0]!.env!.map((e) => [e.name, e.value]));
    expect(env.NFV_EAL_CORELIST).toBe('1,5');
    expect(env.NFV_PCI_ALLOW).toBe('0000:18:00.0');
    // The scheduler admitted it against what kubelet (the simulated agent) reports from the agent's
    // device plugins: the group's resource and the pool's pages (4 on the one NUMA node).
    expect(pod.spec!.containers[0]!.resources).toEqual({
      requests: { cpu: '2', 'nfv.dev/hugepages-1Gi': '1', 'nfv.dev/vfio-group-20': '1' },
      limits: { 'nfv.dev/hugepages-1Gi': '1', 'nfv.dev/vfio-group-20': '1' },
    });
    const node = await f.client.get<V1Node>(resources.nodes, 'lifecycle-node-0');
    expect(node.status!.allocatable).toMatchObject({ 'nfv.dev/vfio-group-20': '1', 'nfv.dev/uio-0000-18-00.0': '1', 'nfv.dev/hugepages-1Gi': '4' });

    const ledger = await f.client.get<NfvNode>(resources.nfvNodes, 'lifecycle-node-0');
    expect(ledger.status!.allocations!.map((a) => a.cpus)).toEqual(['1,5']);
    expect(ledger.status!.inventory!.cpus).toHaveLength(8); // the agent's fields survive the controller's ledger writes
  });

  test('a VNF that does not fit is Unschedulable, and is placed as soon as capacity appears', async () => {
    await f.create(f.vnf('big', { cpus: { count: 8, fullCores: true } }));
    const waiting = await f.waitForCondition('big', 'Placed', 'False', 'Unschedulable');
    expect(waiting.status!.conditions!.find((c) => c.type === 'Placed')!.message).toMatch(
      /no node has 8 free isolated CPUs on whole cores and 1Gi of 1Gi hugepages from pool lifecycle-gold on one NUMA node; closest: lifecycle-node-0 NUMA 0 has 4 free CPUs/,
    );
    expect(waiting.status!.phase).toBe('Pending');
    await f.addNodes(['lifecycle-node-1'], { numaNodes: 1, coresPerNuma: 4, threadsPerCore: 2, housekeepingCores: 1 });
    // Three isolated cores on the new node are not enough for eight CPUs on whole cores either...
    await waitUntil('the message to name the new closest node', async () => {
      const vnf = await f.get('big');
      return vnf.status!.conditions!.find((c) => c.type === 'Placed')!.message.includes('closest: lifecycle-node-1 NUMA 0 has 6 free CPUs');
    });
    await f.addNodes(['lifecycle-node-2'], { numaNodes: 1, coresPerNuma: 8, threadsPerCore: 2 });
    // ...a bigger node is.
    const placed = await f.waitForCondition('big', 'Placed', 'True');
    expect(placed.status!.placement!.node).toBe('lifecycle-node-2');
    await f.waitForCondition('big', 'Ready', 'True');
  });

  test('deletion releases everything: a new VNF takes the same CPUs and device', async () => {
    const before = (await f.get('fwd-a')).status!.placement!;
    await f.deleteAndWait('fwd-a');
    await waitUntil('the ledger to release fwd-a', async () => {
      const node = await f.client.get<NfvNode>(resources.nfvNodes, before.node);
      return !(node.status?.allocations ?? []).some((a) => a.vnf.endsWith('/fwd-a'));
    });
    await f.create(f.vnf('fwd-b', { nodeSelector: { 'kubernetes.io/hostname': before.node }, interfaces: [{ name: 'uplink', device: { pool: 'fast' }, driver: 'vfio-pci' }] }));
    const after = (await f.waitForCondition('fwd-b', 'Ready', 'True')).status!.placement!;
    expect(after.cpus).toBe(before.cpus);
    expect(after.devices.map((d) => d.pciAddress)).toEqual(before.devices.map((d) => d.pciAddress));
  });

  test('the HugepagePool status counts claimed pages from the ledgers', async () => {
    const pool = await waitUntil('pool to count claims', async () => {
      const p = await f.client.get<HugepagePool>(resources.hugepagePools, f.pool);
      return p.status?.claimed === 2 ? p : undefined;
    });
    expect(pool.status).toMatchObject({ requested: 12, claimed: 2 });
    expect(pool.status!.conditions!.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True' });
  });
});
