/**
 * A VNF's devices and hugepages through a REAL kubelet (test/cluster/real-node.ts: kubelet v1.37,
 * containerd 2.4, runc): the real controller places a VNF on `nfv-real-0`, the real node agent
 * (a host process, on a built sysfs/dev tree with one fake NIC in IOMMU group 40) binds the NIC to
 * vfio-pci and serves `nfv.dev/vfio-group-40` to kubelet as a device plugin, and kubelet and
 * containerd give the container exactly those device nodes.
 *
 * The group nodes carry the numbers of /dev/kvm (group) and /dev/loop-control (container), which
 * no default device rule of containerd or runc allows: a successful open() in the container
 * proves the rule came from the device plugin's answer. The tree's `dev/vfio` is bind-mounted at
 * the host's /dev/vfio (this host has no vfio module), because the plugin hands kubelet the host's
 * paths, as it must in production.
 *
 * The HugepagePool is created after kubelet started, and kubelet is never restarted: the pod
 * requests its pages as `nfv.dev/hugepages-2Mi`, which the agent's device plugin lists from the
 * pool's reservation at runtime (kubelet reads its native `hugepages-2Mi` capacity only once, at
 * its start). The agent's reservation is on the tree's counters only, so this file never sets the
 * machine's nr_hugepages to a value it read earlier and needs not wait for the machine-wide
 * hugepage lock that benchmarks hold for minutes (Part B, the DaemonSet, proves real reservation);
 * the real 2Mi pages the container touches are added to the machine (and exactly those taken back).
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { pino } from 'pino';
import type { VirtualNetworkFunction } from '../../src/api/virtual-network-function.js';
import { resources } from '../../src/controllers/resources.js';
import { detectCgroupLayout, findPodCgroup } from '../../node-agent/host/cgroup-layout.js';
import { mountAt, parseMountInfo } from '../../node-agent/host/mounts.js';
import type { TreeNic } from '../cluster/real-agent-fixture.js';
import { applyNodeHugepagePool, charDeviceNumbers, HostVfioDir, mknod, statHex, VfioGroupNodes, type DeviceNumbers } from '../cluster/real-node-fixture.js';
import { AdmissionTimeline, DEBIAN_IMAGE, logLines, OPEN_PROBE, podScheduledAt, probeDeviceNodes, RealNodeVnfFixture } from '../cluster/real-node-vnf-fixture.js';
import { ExtraHugepages, mountPointsUnder } from '../host/helpers/host-fixtures.js';
import { waitUntil } from '../cluster/wait-until.js';
import { unixTarget } from '../../node-agent/device-plugin/device-plugin-api.js';
import { allocatedIdsOf, PodResourcesListerClient, type ListPodResourcesResponse } from '../../node-agent/device-plugin/pod-resources.js';
import * as grpc from '@grpc/grpc-js';

const SUITE = 'real-node-vnf';
const MiB = 2 ** 20;
const VNF_PAGES = 4;
const POOL_PAGES = 4;
const NIC: TreeNic = { address: '0000:3b:00.0', numaNode: 0, iommuGroup: 40, driver: 'ice' };
const GROUP_RESOURCE = `nfv.dev/vfio-group-${NIC.iommuGroup}`;
const PAGES_RESOURCE = 'nfv.dev/hugepages-2Mi';
const GROUP_NODE = `/dev/vfio/${NIC.iommuGroup}`;
/** Device numbers no default rule allows (see the file comment). */
const GROUP_NUMBERS: DeviceNumbers = charDeviceNumbers('/dev/kvm');
const CONTAINER_NUMBERS: DeviceNumbers = charDeviceNumbers('/dev/loop-control');

/** What the VNF's container runs: its devices, then its hugepages within and beyond its allocation. */
const VNF_SCRIPT = [
  probeDeviceNodes(['/dev/vfio/vfio', GROUP_NODE]),
  `if out=$(fallocate -l ${VNF_PAGES * 2}M "$NFV_HUGEPAGE_DIR/within" 2>&1); then echo "within: ok"; else echo "within: $out"; fi`,
  `if out=$(fallocate -l 2M "$NFV_HUGEPAGE_DIR/beyond" 2>&1); then echo "beyond: ok"; else echo "beyond: $out"; fi`,
  'echo probed',
  'exec sleep infinity',
].join('\n');

const logger = pino({ name: SUITE, level: process.env['NFV_CLUSTER_LOG_LEVEL'] ?? 'warn' }, pino.destination(2));
const fixture = new RealNodeVnfFixture({ suite: SUITE, nic: NIC, poolPages: POOL_PAGES, logger });
const { client, core } = fixture;

let groupNodes: VfioGroupNodes | undefined;
let kubeletPid: number | undefined;

beforeAll(async () => {
  await fixture.start(async (tree) => {
    const hugepages = new ExtraHugepages();
    fixture.undoAfterNodeStops('give back the hugepages added', () => hugepages.cleanup());
    groupNodes = new VfioGroupNodes(tree, NIC, GROUP_NUMBERS);
    fixture.undoAfterNodeStops('stop following the group node', () => groupNodes?.stop());
    const hostVfio = await HostVfioDir.mount(tree);
    fixture.undoAfterNodeStops('unmount /dev/vfio', () => hostVfio.unmount());
    hugepages.ensureFree(VNF_PAGES);
  });
  kubeletPid = fixture.node.kubeletPid;
}, 10 * 60_000);

afterAll(() => fixture.stop(), 5 * 60_000);

describe('a VNF on the real kubelet', () => {
  const timeline = new AdmissionTimeline();
  let pod: V1Pod;
  let vnf: VirtualNetworkFunction;

  test('kubelet lists the agent\'s device plugin, Unhealthy while the NIC is on its kernel driver', async () => {
    const nfvNode = await fixture.waitForNfvNode();
    expect(nfvNode.status!.inventory!.nics).toEqual([expect.objectContaining({ pciAddress: NIC.address, iommuGroup: NIC.iommuGroup, driver: NIC.driver, pool: 'fast' })]);
    const status = await fixture.waitForNodeStatus('kubelet to list the agent\'s VFIO group', (s) => s.capacity?.[GROUP_RESOURCE] === '1');
    expect(status.allocatable?.[GROUP_RESOURCE]).toBe('0');
    // The pool was reserved after kubelet started, and kubelet lists its pages all the same.
    const pages = await fixture.waitForNodeStatus('kubelet to list the pool\'s pages', (s) => s.allocatable?.[PAGES_RESOURCE] === String(POOL_PAGES));
    expect(pages.capacity?.[PAGES_RESOURCE]).toBe(String(POOL_PAGES));
    expect(fixture.node.kubeletPid).toBe(kubeletPid);
  }, 120_000);

  test('the pod stays Pending (Insufficient vfio-group) until the agent bound the NIC, then runs', async () => {
    // vfio-pci is not loaded yet: the agent cannot bind the NIC, so the plugin stays Unhealthy.
    await client.create(resources.vnfs, fixture.vnf('fwd', { script: VNF_SCRIPT, driver: 'vfio-pci', pages: VNF_PAGES }));
    await fixture.waitForCondition('fwd', 'NodePrepared', 'False', 'DriverNotLoaded');
    const pending = await fixture.waitForUnschedulable('fwd', GROUP_RESOURCE);
    timeline.mark('pod unschedulable');
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect((await fixture.vnfPod('fwd'))?.spec?.nodeName).toBeUndefined();
    expect((await fixture.readNode()).status?.allocatable?.[GROUP_RESOURCE]).toBe('0');
    expect(pending.spec!.containers[0]!.resources!.limits).toEqual({ [GROUP_RESOURCE]: '1', [PAGES_RESOURCE]: String(VNF_PAGES) });

    // modprobe vfio-pci: the driver and the VFIO container node appear.
    timeline.mark('vfio-pci loaded');
    await mknod(fixture.tree.path('dev/vfio/vfio'), CONTAINER_NUMBERS);
    fixture.tree.kernel.addDriver('vfio-pci');
    await fixture.waitForNodeStatus('the plugin to report the group Healthy to kubelet', (s) => s.allocatable?.[GROUP_RESOURCE] === '1', { timeoutMs: 30_000, intervalMs: 100 });
    timeline.mark('group allocatable');
    pod = await fixture.waitForRunningPod('fwd');
    timeline.mark('pod running');
    vnf = await fixture.waitForCondition('fwd', 'Ready', 'True', 'Running');

    const made = groupNodes!.events.find((e) => e.event === 'made')!.at;
    timeline.mark('group node made', made);
    expect(fixture.tree.kernel.driverOf(NIC.address)).toBe('vfio-pci');
    console.log(`admission: ${timeline}`);
    expect(made).toBeGreaterThanOrEqual(timeline.at('vfio-pci loaded'));
    // The API server keeps whole seconds.
    expect(podScheduledAt(pod)).toBeGreaterThanOrEqual(Math.floor(made / 1000) * 1000);
    expect(pod.spec!.nodeName).toBe(fixture.node.name);
  }, 180_000);

  test('the container has the plugin\'s device nodes and may open them; a hostPath of the same node gets EPERM', async () => {
    const lines = logLines(await fixture.podLog(pod.metadata!.name!, 'probed'));
    expect(lines.get('node /dev/vfio/vfio')).toBe(`character special file ${statHex(CONTAINER_NUMBERS)}`);
    expect(lines.get(`node ${GROUP_NODE}`)).toBe(`character special file ${statHex(GROUP_NUMBERS)}`);
    expect(lines.get('open /dev/vfio/vfio')).toBe('ok');
    expect(lines.get(`open ${GROUP_NODE}`)).toBe('ok');

    // containerd put exactly what the plugin answered into the runtime spec: nodes and rules.
    const spec = (await fixture.inspectContainer(pod)).info?.runtimeSpec;
    expect(spec?.linux?.devices).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: '/dev/vfio/vfio', type: 'c', ...CONTAINER_NUMBERS }),
        expect.objectContaining({ path: GROUP_NODE, type: 'c', ...GROUP_NUMBERS }),
      ]),
    );
    expect(spec?.linux?.resources?.devices).toEqual(expect.arrayContaining([expect.objectContaining({ allow: true, type: 'c', ...GROUP_NUMBERS, access: 'rw' })]));

    await core.createNamespacedPod({
      namespace: fixture.ns.name,
      body: {
        metadata: { name: 'hostpath-control' },
        spec: {
          nodeName: fixture.node.name,
          tolerations: [fixture.node.toleration],
          restartPolicy: 'Never',
          terminationGracePeriodSeconds: 1,
          volumes: [{ name: 'group', hostPath: { path: GROUP_NODE, type: 'CharDevice' } }],
          containers: [{ name: 'probe', image: DEBIAN_IMAGE, imagePullPolicy: 'Never', command: ['sh', '-c', `${OPEN_PROBE}\nprobe ${GROUP_NODE}\necho probed`], volumeMounts: [{ name: 'group', mountPath: GROUP_NODE }] }],
        },
      },
    });
    const control = logLines(await fixture.podLog('hostpath-control', 'probed'));
    expect(control.get(`open ${GROUP_NODE}`)).toBe('Operation not permitted');
    await core.deleteNamespacedPod({ name: 'hostpath-control', namespace: fixture.ns.name, gracePeriodSeconds: 0 });
  }, 120_000);

  test('the container\'s hugepages: pool pages to the scheduler, limited in the pod cgroup, and no more than its allocation', async () => {
    expect(pod.spec!.containers[0]!.resources!.requests).toMatchObject({ [PAGES_RESOURCE]: String(VNF_PAGES) });
    expect(pod.spec!.containers[0]!.resources!.requests).not.toHaveProperty('hugepages-2Mi');
    expect((await fixture.readNode()).status?.allocatable?.[PAGES_RESOURCE]).toBe(String(POOL_PAGES));
    expect(fixture.node.kubeletPid).toBe(kubeletPid);
    const hugetlb = (await detectCgroupLayout('/sys/fs/cgroup')).hugetlb!;
    const podCgroup = await findPodCgroup(hugetlb.path, pod.metadata!.uid!);
    expect(podCgroup).toBeDefined();
    const limitFile = hugetlb.version === 2 ? 'hugetlb.2MB.max' : 'hugetlb.2MB.limit_in_bytes';
    expect(readFileSync(posix.join(podCgroup!, limitFile), 'utf8').trim()).toBe(String(VNF_PAGES * 2 * MiB));

    // The agent's hugetlbfs mount with size= the allocation is what the container sees.
    const hugepageDir = vnf.status!.placement!.hostPaths.hugepages;
    expect(mountPointsUnder(fixture.tree.stateRoot)).toEqual([hugepageDir]);
    expect(mountAt(parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8')), hugepageDir)).toMatchObject({
      fsType: 'hugetlbfs',
      superOptions: expect.arrayContaining(['pagesize=2M', `size=${VNF_PAGES * 2 * MiB}`]),
    });
    const lines = logLines(await fixture.podLog(pod.metadata!.name!, 'probed'));
    expect(lines.get('within')).toBe('ok');
    expect(lines.get('beyond')).toMatch(/No space left on device/);
  });

  test('deleting the VNF removes the pod, restores the driver, unmounts and releases everything', async () => {
    await fixture.deleteVnf('fwd');
    await expect(core.readNamespacedPod({ name: pod.metadata!.name!, namespace: fixture.ns.name })).rejects.toMatchObject({ code: 404 });
    expect(fixture.tree.kernel.driverOf(NIC.address)).toBe(NIC.driver);
    expect(fixture.tree.kernel.overrideOf(NIC.address)).toBe('(null)');
    await fixture.waitForNodeStatus('the plugin to report the group Unhealthy', (s) => s.allocatable?.[GROUP_RESOURCE] === '0', { timeoutMs: 30_000 });
    expect(groupNodes!.events.map((e) => e.event)).toEqual(['made', 'removed']);
    expect(await fixture.leftovers(vnf, pod.metadata!.uid!)).toEqual({ mounts: [], hostPaths: [], allocations: [], podCgroups: [] });
  }, 120_000);

  test('a pool that shrinks under a running VNF keeps listing the very page IDs kubelet gave its pod', async () => {
    const grown = 2 * VNF_PAGES;
    await applyNodeHugepagePool(client, fixture.poolName, fixture.node.name, grown);
    await fixture.waitForNodeStatus('kubelet to list the grown pool', (s) => s.allocatable?.[PAGES_RESOURCE] === String(grown));
    await client.create(resources.vnfs, fixture.vnf('holder', { script: 'exec sleep infinity', pages: VNF_PAGES }));
    const holder = await fixture.waitForRunningPod('holder');
    // kubelet picks the pod's IDs from the 8 listed in map order: any 4 of them.
    const held = (await podResources.list()).get(`${fixture.ns.name}/${holder.metadata!.name}`);
    expect(held?.size).toBe(VNF_PAGES);

    await applyNodeHugepagePool(client, fixture.poolName, fixture.node.name, VNF_PAGES);
    const listed = await waitUntil('kubelet to have the shrunk list', async () => {
      const ids = await podResources.allocatable();
      return ids.size === VNF_PAGES ? ids : undefined;
    });
    // Exactly the pod's IDs: the ones a plain "drop the highest" would have removed included.
    expect([...listed].sort()).toEqual([...held!].sort());
    await fixture.waitForNodeStatus('the Node to advertise the shrunk pool', (s) => s.allocatable?.[PAGES_RESOURCE] === String(VNF_PAGES));
    await fixture.deleteVnf('holder');
  }, 180_000);
});

/** kubelet's PodResources API on the real node, for the page IDs it handed out and lists. */
const podResources = {
  async call<T>(method: 'List' | 'GetAllocatableResources'): Promise<T> {
    const client = new PodResourcesListerClient(unixTarget(fixture.node.podResourcesSocket), grpc.credentials.createInsecure()) as unknown as Record<string, (request: object, callback: (err: Error | null, response: T) => void) => void>;
    try {
      return await new Promise<T>((resolve, reject) => client[method]!.call(client, {}, (err, response) => (err ? reject(err) : resolve(response))));
    } finally {
      (client as unknown as grpc.Client).close();
    }
  },
  /** The page IDs each pod (`namespace/name`) holds. */
  async list(): Promise<Map<string, ReadonlySet<string>>> {
    const response = await this.call<ListPodResourcesResponse>('List');
    return new Map(response.pod_resources.map((pod) => [`${pod.namespace}/${pod.name}`, allocatedIdsOf({ pod_resources: [pod] }, (r) => r === PAGES_RESOURCE).get(PAGES_RESOURCE) ?? new Set()]));
  },
  /** The page IDs kubelet has from the agent's plugin (Healthy ones). */
  async allocatable(): Promise<Set<string>> {
    const response = await this.call<{ devices: { resource_name: string; device_ids: string[] }[] }>('GetAllocatableResources');
    return new Set(response.devices.filter((d) => d.resource_name === PAGES_RESOURCE).flatMap((d) => d.device_ids));
  },
};
