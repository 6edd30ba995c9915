/**
 * The agent's kubelet device plugins on real unix sockets, against a stub of kubelet's
 * Registration side built from the same api.proto (a protocol test; the real kubelet test points
 * the same DevicePlugins at a real kubelet's device-plugin directory). Device nodes are real char
 * devices made with mknod in a test tree, as vfio-pci and uio make them; the pool pages come from
 * an NfvNode status as the agent publishes it.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { posix } from 'node:path';
import pino from 'pino';
import * as grpc from '@grpc/grpc-js';
import { DEVICE_PLUGIN_API_VERSION } from '../../node-agent/device-plugin/device-plugin-api.js';
import type { AllocatedDeviceIds } from '../../node-agent/device-plugin/pod-resources.js';
import { DevicePlugins, socketName } from '../../node-agent/device-plugin/device-plugins.js';
import { hugepageDevicesOf } from '../../node-agent/device-plugin/hugepage-devices.js';
import { pluginDevicesOf } from '../../node-agent/device-plugin/plugin-devices.js';
import { KernelDeviceNodes } from '../../node-agent/host/device-nodes.js';
import type { InventoryNic, NfvNodeStatus } from '../../src/api/nfv-node.js';
import { waitUntil } from '../cluster/wait-until.js';
import { execFileAsync, requireRoot, TempTree } from './helpers/host-fixtures.js';
import { KubeletRegistrationStub } from './helpers/kubelet-registration-stub.js';

const VFIO_NIC: InventoryNic = { pciAddress: '0000:3b:00.0', vendor: '8086', deviceId: '159b', numaNode: 0, iommuGroup: 40, driver: 'ice' };
const UIO_NIC: InventoryNic = { pciAddress: '0000:3b:00.1', vendor: '8086', deviceId: '159b', numaNode: 1, iommuGroup: -1, driver: 'ice' };
const VFIO_GROUP = 'nfv.dev/vfio-group-40';
const UIO = 'nfv.dev/uio-0000-3b-00.1';
const UIO_OF_VFIO_NIC = 'nfv.dev/uio-0000-3b-00.0';
const PAGES_1GI = 'nfv.dev/hugepages-1Gi';
/** Every resource the plugins serve in these tests. */
const ALL = [UIO_OF_VFIO_NIC, UIO, VFIO_GROUP, PAGES_1GI].sort();
/** An NfvNode status with pool gold's 1Gi pages per NUMA node. */
const poolPages = (numa0: number, numa1: number): Pick<NfvNodeStatus, 'hugepagePools'> => ({
  hugepagePools: [
    { pool: 'gold', pageSize: '1Gi', numaNode: 0, requested: numa0, allocated: numa0 },
    { pool: 'gold', pageSize: '1Gi', numaNode: 1, requested: numa1, allocated: numa1 },
  ],
});
const ids = (devices: readonly { ID: string }[] | undefined) => devices?.map((device) => device.ID);

describe('device plugins on real unix sockets', () => {
  let tree: TempTree;
  let pluginDir: string;
  let dev: string;
  let kubelet: KubeletRegistrationStub | undefined;
  let plugins: DevicePlugins | undefined;
  /** What kubelet's PodResources answers: the page IDs running pods hold. */
  let pagesInUse: AllocatedDeviceIds = new Map();

  const mknod = (path: string, major: number, minor: number) => execFileAsync('mknod', [posix.join(dev, path), 'c', String(major), String(minor)]);
  const healthOf = (resource: string) => kubelet!.latest(resource)?.[0]?.health;
  const converge = async () => {
    plugins!.refresh();
    await plugins!.settled();
  };

  beforeAll(async () => {
    requireRoot();
    tree = new TempTree('nfv-device-plugin');
    pluginDir = tree.path('device-plugins');
    dev = tree.path('dev');
    mkdirSync(pluginDir);
    mkdirSync(posix.join(dev, 'vfio'), { recursive: true });
    // The uio class device the kernel links under the PCI device; its node appears later.
    mkdirSync(tree.path('sys/bus/pci/devices', UIO_NIC.pciAddress, 'uio/uio3'), { recursive: true });
    kubelet = new KubeletRegistrationStub(pluginDir);
    await kubelet.start();
    plugins = new DevicePlugins({
      pluginDir,
      nodes: new KernelDeviceNodes(tree.path('sys'), dev),
      logger: pino({ level: 'silent' }),
      checkIntervalMs: 60_000,
      podResources: { allocatedIds: async () => pagesInUse },
    });
    plugins.start();
    plugins.setDevices(pluginDevicesOf([VFIO_NIC, UIO_NIC]));
    plugins.setHugepages(hugepageDevicesOf(poolPages(2, 1)));
    await plugins.settled();
  });

  afterAll(async () => {
    await plugins?.stop();
    await kubelet?.stop();
    await tree?.cleanup();
  });

  it('serves one plugin per resource and registers each with kubelet', () => {
    expect(plugins!.registered()).toEqual(ALL);
    const registered = kubelet!.plugins.get(VFIO_GROUP)!;
    expect(registered.request).toEqual({
      version: DEVICE_PLUGIN_API_VERSION,
      endpoint: socketName(VFIO_GROUP),
      resource_name: VFIO_GROUP,
      options: { pre_start_required: false, get_preferred_allocation_available: false },
    });
    expect(registered.options).toEqual({ pre_start_required: false, get_preferred_allocation_available: false });
    expect(readdirSync(pluginDir).sort()).toEqual(['kubelet.sock', ...ALL.map(socketName)].sort());
  });

  it('lists one Healthy device per pool page, with its NUMA node, and streams the new list when the pool grows or shrinks', async () => {
    await waitUntil('the pages to list', () => kubelet!.latest(PAGES_1GI));
    expect(kubelet!.latest(PAGES_1GI)).toEqual([
      { ID: 'numa0-0', health: 'Healthy', topology: { nodes: [{ ID: 0 }] } },
      { ID: 'numa0-1', health: 'Healthy', topology: { nodes: [{ ID: 0 }] } },
      { ID: 'numa1-0', health: 'Healthy', topology: { nodes: [{ ID: 1 }] } },
    ]);

    plugins!.setHugepages(hugepageDevicesOf(poolPages(4, 1)));
    await plugins!.settled();
    await waitUntil('the grown list', () => kubelet!.latest(PAGES_1GI)?.length === 5);
    expect(ids(kubelet!.latest(PAGES_1GI))).toEqual(['numa0-0', 'numa0-1', 'numa0-2', 'numa0-3', 'numa1-0']);
    plugins!.setHugepages(hugepageDevicesOf(poolPages(1, 1)));
    await plugins!.settled();
    await waitUntil('the shrunk list', () => kubelet!.latest(PAGES_1GI)?.length === 2);
    expect(ids(kubelet!.latest(PAGES_1GI))).toEqual(['numa0-0', 'numa1-0']);
    // On the stream kubelet opened at registration: no restart, no second registration.
    expect(kubelet!.plugins.get(PAGES_1GI)!.lists.map((list) => list.length)).toEqual([3, 5, 2]);
    expect(kubelet!.registrations.filter((resource) => resource === PAGES_1GI)).toHaveLength(1);
    // Nothing changed: nothing is sent again.
    plugins!.setHugepages(hugepageDevicesOf(poolPages(1, 1)));
    await converge();
    expect(kubelet!.plugins.get(PAGES_1GI)!.lists).toHaveLength(3);
  });

  it('keeps listing the page IDs kubelet gave running pods (its PodResources) when the pool shrinks', async () => {
    plugins!.setHugepages(hugepageDevicesOf(poolPages(4, 1)));
    await plugins!.settled();
    await waitUntil('the grown list', () => kubelet!.latest(PAGES_1GI)?.length === 5);
    pagesInUse = new Map([[PAGES_1GI, new Set(['numa0-2', 'numa0-3'])]]);
    plugins!.setHugepages(hugepageDevicesOf(poolPages(2, 1)));
    await plugins!.settled();
    await waitUntil('the shrunk list', () => kubelet!.latest(PAGES_1GI)?.length === 3);
    expect(ids(kubelet!.latest(PAGES_1GI))).toEqual(['numa0-2', 'numa0-3', 'numa1-0']);
    pagesInUse = new Map();
    plugins!.setHugepages(hugepageDevicesOf(poolPages(1, 1)));
    await plugins!.settled();
    await waitUntil('the list back at the lowest IDs', () => kubelet!.latest(PAGES_1GI)?.length === 2);
    expect(ids(kubelet!.latest(PAGES_1GI))).toEqual(['numa0-0', 'numa1-0']);
  });

  it('allocates listed pages with nothing to add to the container, and refuses pages it no longer lists', async () => {
    expect(await kubelet!.allocate(PAGES_1GI, ['numa0-0', 'numa1-0'])).toEqual({
      container_responses: [{ envs: {}, mounts: [], devices: [], annotations: {}, cdi_devices: [] }],
    });
    await expect(kubelet!.allocate(PAGES_1GI, ['numa0-3'])).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION, details: expect.stringContaining('kubelet asked for numa0-3') });
  });

  it('lists a device Unhealthy until its driver made its nodes, then streams Healthy', async () => {
    await waitUntil('the first device lists', () => healthOf(VFIO_GROUP) && healthOf(UIO));
    expect(kubelet!.latest(VFIO_GROUP)).toEqual([{ ID: '40', health: 'Unhealthy', topology: { nodes: [{ ID: 0 }] } }]);
    expect(kubelet!.latest(UIO)).toEqual([{ ID: UIO_NIC.pciAddress, health: 'Unhealthy', topology: { nodes: [{ ID: 1 }] } }]);

    // vfio-pci bound: /dev/vfio/vfio (10:196) and the group node; 242 plays the vfio group major.
    await mknod('vfio/vfio', 10, 196);
    await mknod('vfio/40', 242, 40);
    await mknod('uio3', 243, 3);
    await converge();
    await waitUntil('Healthy on both streams', () => healthOf(VFIO_GROUP) === 'Healthy' && healthOf(UIO) === 'Healthy');
    expect(kubelet!.plugins.get(VFIO_GROUP)!.lists.map((list) => list[0]!.health)).toEqual(['Unhealthy', 'Healthy']);
    // Nothing changed: nothing is sent again.
    await converge();
    expect(kubelet!.plugins.get(VFIO_GROUP)!.lists).toHaveLength(2);
  });

  it('allocates the device nodes with rw permission, at their host paths', async () => {
    expect(await kubelet!.allocate(VFIO_GROUP, ['40'])).toEqual({
      container_responses: [
        {
          envs: {},
          mounts: [],
          devices: [
            { container_path: '/dev/vfio/vfio', host_path: '/dev/vfio/vfio', permissions: 'rw' },
            { container_path: '/dev/vfio/40', host_path: '/dev/vfio/40', permissions: 'rw' },
          ],
          annotations: {},
          cdi_devices: [],
        },
      ],
    });
    const uio = await kubelet!.allocate(UIO, [UIO_NIC.pciAddress]);
    expect(uio.container_responses[0]!.devices).toEqual([{ container_path: '/dev/uio3', host_path: '/dev/uio3', permissions: 'rw' }]);
  });

  it('refuses an unknown device ID and a device whose node is gone, with FAILED_PRECONDITION', async () => {
    await expect(kubelet!.allocate(VFIO_GROUP, ['41'])).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION, details: expect.stringContaining('has only device 40') });
    rmSync(posix.join(dev, 'vfio/40'));
    await expect(kubelet!.allocate(VFIO_GROUP, ['40'])).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION, details: expect.stringContaining('/dev/vfio/40') });
    await converge();
    await waitUntil('Unhealthy again', () => healthOf(VFIO_GROUP) === 'Unhealthy');
    await mknod('vfio/40', 242, 40);
    await converge();
  });

  it('notices kubelet gone, and registers every plugin again when it is back', async () => {
    await kubelet!.stop();
    await converge();
    expect(plugins!.registered()).toEqual([]);
    kubelet = new KubeletRegistrationStub(pluginDir);
    await kubelet.start();
    await converge();
    expect([...kubelet.registrations].sort()).toEqual(ALL);
    await waitUntil('the new kubelet to see the group Healthy', () => healthOf(VFIO_GROUP) === 'Healthy');
    await waitUntil('the new kubelet to see the current pages', () => kubelet!.latest(PAGES_1GI)?.length === 2);
  });

  it('registers every plugin again after a kubelet restart it did not see happen (new kubelet.sock, plugin sockets deleted)', async () => {
    await kubelet!.stop();
    for (const entry of readdirSync(pluginDir)) rmSync(posix.join(pluginDir, entry));
    kubelet = new KubeletRegistrationStub(pluginDir);
    await kubelet.start();
    await converge();
    expect([...kubelet.registrations].sort()).toEqual(ALL);
    expect(readdirSync(pluginDir).sort()).toEqual(['kubelet.sock', ...ALL.map(socketName)].sort());
  });

  it('retries a plugin kubelet refused, with its socket removed meanwhile', async () => {
    await kubelet!.stop();
    let refusing = true;
    kubelet = new KubeletRegistrationStub(pluginDir, (request) => (refusing && request.resource_name === UIO ? 'plugin is not supported' : undefined));
    await kubelet.start();
    await converge();
    expect(kubelet.refused).toEqual([UIO]);
    expect(plugins!.registered()).toEqual(ALL.filter((resource) => resource !== UIO));
    expect(existsSync(posix.join(pluginDir, socketName(UIO)))).toBe(false);
    refusing = false;
    await converge();
    expect(plugins!.registered()).toEqual(ALL);
  });

  it('stops the plugin of a device that left the inventory or a page size no pool has any more, and removes every socket on stop', async () => {
    plugins!.setDevices(pluginDevicesOf([VFIO_NIC]));
    plugins!.setHugepages(hugepageDevicesOf({ hugepagePools: [] }));
    await plugins!.settled();
    expect(plugins!.registered()).toEqual([UIO_OF_VFIO_NIC, VFIO_GROUP].sort());
    expect(existsSync(posix.join(pluginDir, socketName(UIO)))).toBe(false);
    expect(existsSync(posix.join(pluginDir, socketName(PAGES_1GI)))).toBe(false);
    await plugins!.stop();
    expect(readdirSync(pluginDir)).toEqual(['kubelet.sock']);
  });
});
