/**
 * A VNF's uio device through a REAL kubelet (test/cluster/real-node.ts: kubelet v1.37, containerd
 * 2.4, runc): the real controller places a VNF that asks for `uio_pci_generic` on `nfv-real-0`,
 * the real node agent (a host process, on a built sysfs/dev tree with one fake NIC) binds the NIC
 * to uio_pci_generic and serves `nfv.dev/uio-0000-3b-00.0` to kubelet as a device plugin, and
 * kubelet and containerd give the container exactly that `/dev/uio<N>`, with SYS_RAWIO.
 *
 * What the fake PCI kernel lacks, {@link UioNodes} plays: the uio class device in the NIC's sysfs
 * directory and the tree's node, while the NIC is bound. The node carries the numbers of /dev/kvm,
 * which no default device rule of containerd or runc allows, so a successful open() in the
 * container proves the rule came from the plugin's answer. The plugin hands kubelet the host's
 * path, which containerd stats, so {@link HostUioNode} makes `/dev/uio<N>` on the host too, with a
 * number no real uio device has here (it refuses to run where one exists).
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import { existsSync, readFileSync } from 'node:fs';
import { pino } from 'pino';
import { hugepageResource, uioDeviceResource } from '../../src/api/device-resources.js';
import type { VirtualNetworkFunction } from '../../src/api/virtual-network-function.js';
import { resources } from '../../src/controllers/resources.js';
import type { TreeNic } from '../cluster/real-agent-fixture.js';
import { charDeviceNumbers, HostUioNode, statHex, UioNodes, type DeviceNumbers } from '../cluster/real-node-fixture.js';
import { AdmissionTimeline, logLines, podScheduledAt, probeDeviceNodes, RealNodeVnfFixture } from '../cluster/real-node-vnf-fixture.js';

const SUITE = 'real-node-uio';
const VNF_PAGES = 2;
const POOL_PAGES = 2;
const NIC: TreeNic = { address: '0000:3b:00.0', numaNode: 0, iommuGroup: 40, driver: 'ice' };
const UIO_RESOURCE = uioDeviceResource(NIC.address);
const PAGES_RESOURCE = hugepageResource('2Mi');
/** The kernel numbers uio devices from 0: this one is far from any real one. */
const UIO_INDEX = 250;
const UIO_NODE = `/dev/uio${UIO_INDEX}`;
/** Device numbers no default rule allows (see the file comment). */
const UIO_NUMBERS: DeviceNumbers = charDeviceNumbers('/dev/kvm');
/** What render-pod gives a VNF that uses uio: SYS_RAWIO on top of the others, nothing else. */
const VNF_CAPABILITIES = { CAP_IPC_LOCK: 14, CAP_NET_ADMIN: 12, CAP_SYS_NICE: 23, CAP_SYS_RAWIO: 17 };

const VNF_SCRIPT = [probeDeviceNodes([UIO_NODE]), 'echo probed', 'exec sleep infinity'].join('\n');

const logger = pino({ name: SUITE, level: process.env['NFV_CLUSTER_LOG_LEVEL'] ?? 'warn' }, pino.destination(2));
const fixture = new RealNodeVnfFixture({ suite: SUITE, nic: NIC, poolPages: POOL_PAGES, logger });

let uioNodes: UioNodes | undefined;
let hostNode: HostUioNode | undefined;

beforeAll(async () => {
  await fixture.start(async (tree) => {
    uioNodes = new UioNodes(tree, NIC, UIO_INDEX, UIO_NUMBERS);
    fixture.undoAfterNodeStops('stop following the uio device', () => uioNodes?.stop());
    hostNode = await HostUioNode.make(uioNodes);
    fixture.undoAfterNodeStops(`remove the host's ${UIO_NODE}`, () => hostNode?.remove());
  });
}, 10 * 60_000);

afterAll(() => fixture.stop(), 5 * 60_000);

describe('a VNF with a uio device on the real kubelet', () => {
  const timeline = new AdmissionTimeline();
  let pod: V1Pod;
  let vnf: VirtualNetworkFunction;

  test('kubelet lists the agent\'s uio device plugin, Unhealthy while the NIC is on its kernel driver', async () => {
    const nfvNode = await fixture.waitForNfvNode();
    expect(nfvNode.status!.inventory!.nics).toEqual([expect.objectContaining({ pciAddress: NIC.address, driver: NIC.driver, pool: 'fast' })]);
    const status = await fixture.waitForNodeStatus('kubelet to list the agent\'s uio device', (s) => s.capacity?.[UIO_RESOURCE] === '1');
    expect(status.allocatable?.[UIO_RESOURCE]).toBe('0');
    await fixture.waitForNodeStatus('kubelet to list the pool\'s pages', (s) => s.allocatable?.[PAGES_RESOURCE] === String(POOL_PAGES));
    expect(existsSync(uioNodes!.classDir)).toBe(false);
  }, 120_000);

  test('the pod stays Pending (Insufficient uio) until the agent bound the NIC to uio_pci_generic, then runs', async () => {
    // uio_pci_generic is not loaded yet: the agent cannot bind the NIC, so the plugin stays Unhealthy.
    await fixture.client.create(resources.vnfs, fixture.vnf('fwd', { script: VNF_SCRIPT, driver: 'uio_pci_generic', pages: VNF_PAGES }));
    await fixture.waitForCondition('fwd', 'NodePrepared', 'False', 'DriverNotLoaded');
    const pending = await fixture.waitForUnschedulable('fwd', UIO_RESOURCE);
    timeline.mark('pod unschedulable');
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect((await fixture.vnfPod('fwd'))?.spec?.nodeName).toBeUndefined();
    expect((await fixture.readNode()).status?.allocatable?.[UIO_RESOURCE]).toBe('0');
    expect(pending.spec!.containers[0]!.resources!.limits).toEqual({ [UIO_RESOURCE]: '1', [PAGES_RESOURCE]: String(VNF_PAGES) });

    // modprobe uio_pci_generic.
    timeline.mark('uio_pci_generic loaded');
    fixture.tree.kernel.addDriver('uio_pci_generic');
    await fixture.waitForNodeStatus('the plugin to report the uio device Healthy to kubelet', (s) => s.allocatable?.[UIO_RESOURCE] === '1', { timeoutMs: 30_000, intervalMs: 100 });
    timeline.mark('uio allocatable');
    pod = await fixture.waitForRunningPod('fwd');
    timeline.mark('pod running');
    vnf = await fixture.waitForCondition('fwd', 'Ready', 'True', 'Running');

    const made = uioNodes!.events.find((e) => e.event === 'made')!.at;
    timeline.mark('uio device made', made);
    const { restartCount, lastState } = pod.status!.containerStatuses![0]!;
    console.log(`admission: ${timeline}; failed starts of the vnf container: ${restartCount}${lastState?.terminated ? ` (last: ${lastState.terminated.message})` : ''}`);
    // The first start succeeds: the agent keeps the mask files the pod mounts with subPath (kubelet
    // bind-mounts them by inode; an agent that replaced them at every reconcile made runc fail
    // starts on deleted files).
    expect(restartCount).toBe(0);
    expect(fixture.tree.kernel.driverOf(NIC.address)).toBe('uio_pci_generic');
    expect(vnf.status!.placement!.devices).toEqual([expect.objectContaining({ pciAddress: NIC.address, driver: 'uio_pci_generic' })]);
    expect(made).toBeGreaterThanOrEqual(timeline.at('uio_pci_generic loaded'));
    // Scheduled only once the device was there (the API server keeps whole seconds).
    expect(podScheduledAt(pod)).toBeGreaterThanOrEqual(Math.floor(made / 1000) * 1000);
    expect(pod.spec!.nodeName).toBe(fixture.node.name);
  }, 330_000);

  test('the container has the plugin\'s /dev/uioN and may open it', async () => {
    const lines = logLines(await fixture.podLog(pod.metadata!.name!, 'probed'));
    expect(lines.get(`node ${UIO_NODE}`)).toBe(`character special file ${statHex(UIO_NUMBERS)}`);
    expect(lines.get(`open ${UIO_NODE}`)).toBe('ok');

    // containerd put exactly what the plugin answered into the runtime spec: the node and its rule.
    const spec = (await fixture.inspectContainer(pod)).info?.runtimeSpec;
    expect(spec?.linux?.devices).toEqual(expect.arrayContaining([expect.objectContaining({ path: UIO_NODE, type: 'c', ...UIO_NUMBERS })]));
    expect(spec?.linux?.resources?.devices).toEqual(expect.arrayContaining([expect.objectContaining({ allow: true, type: 'c', ...UIO_NUMBERS, access: 'rw' })]));
  });

  test('the container holds SYS_RAWIO, which render-pod adds for uio', async () => {
    expect(pod.spec!.containers[0]!.securityContext?.capabilities?.add).toContain('SYS_RAWIO');
    const inspected = await fixture.inspectContainer(pod);
    const names = Object.keys(VNF_CAPABILITIES).sort();
    for (const set of ['effective', 'bounding', 'permitted'] as const) {
      expect([set, inspected.info!.runtimeSpec!.process!.capabilities![set]!.sort()]).toEqual([set, names]);
    }
    // What the process really holds (it runs as root in the container, so every permitted one is effective).
    const status = readFileSync(`/proc/${inspected.info!.pid}/status`, 'utf8');
    const capEff = BigInt(`0x${/^CapEff:\s+([0-9a-f]+)$/m.exec(status)![1]}`);
    expect(capEff).toBe(Object.values(VNF_CAPABILITIES).reduce((mask, bit) => mask | (1n << BigInt(bit)), 0n));
  });

  test('deleting the VNF restores the NIC\'s driver, turns the device Unhealthy and leaves nothing behind', async () => {
    await fixture.deleteVnf('fwd');
    await expect(fixture.core.readNamespacedPod({ name: pod.metadata!.name!, namespace: fixture.ns.name })).rejects.toMatchObject({ code: 404 });
    expect(fixture.tree.kernel.driverOf(NIC.address)).toBe(NIC.driver);
    expect(fixture.tree.kernel.overrideOf(NIC.address)).toBe('(null)');
    await fixture.waitForNodeStatus('the plugin to report the uio device Unhealthy', (s) => s.allocatable?.[UIO_RESOURCE] === '0', { timeoutMs: 30_000 });
    expect(uioNodes!.events.map((e) => e.event)).toEqual(['made', 'removed']);
    expect(existsSync(uioNodes!.classDir)).toBe(false);
    expect(existsSync(uioNodes!.path)).toBe(false);
    expect(await fixture.leftovers(vnf, pod.metadata!.uid!)).toEqual({ mounts: [], hostPaths: [], allocations: [], podCgroups: [] });
  }, 120_000);
});
