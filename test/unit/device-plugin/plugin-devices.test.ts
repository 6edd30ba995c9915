import { describe, expect, test } from '@jest/globals';
import type { PageSize } from '../../../src/api/common.js';
import { deviceResources, hugepageResource, uioDeviceResource, vfioGroupResource } from '../../../src/api/device-resources.js';
import type { InventoryNic } from '../../../src/api/nfv-node.js';
import {
  AllocationError,
  containerAllocation,
  deviceHealth,
  listedDevice,
  pluginDevicesOf,
  type DeviceNodeView,
  type PluginDevice,
} from '../../../node-agent/device-plugin/plugin-devices.js';

const nic = (pciAddress: string, iommuGroup: number, numaNode = 0): InventoryNic => ({ pciAddress, vendor: '8086', deviceId: '159b', numaNode, iommuGroup, driver: 'ice' });
const view = (partial: Partial<DeviceNodeView> = {}): DeviceNodeView => ({ vfioContainer: true, vfioGroups: new Set(), uioNodes: new Map(), ...partial });
const GROUP_7: PluginDevice = { kind: 'vfio', resource: 'nfv.dev/vfio-group-7', group: 7, numaNode: 1 };
const UIO_3B: PluginDevice = { kind: 'uio', resource: 'nfv.dev/uio-0000-3b-00.0', pciAddress: '0000:3b:00.0', numaNode: -1 };

describe('resource names', () => {
  test.each([
    { name: 'vfio-pci: the IOMMU group', devices: [{ pciAddress: '0000:3b:00.0', iommuGroup: 7, driver: 'vfio-pci' as const }], expected: ['nfv.dev/vfio-group-7'] },
    {
      name: 'two functions in one group: once',
      devices: [
        { pciAddress: '0000:3b:00.0', iommuGroup: 7, driver: 'vfio-pci' as const },
        { pciAddress: '0000:3b:00.1', iommuGroup: 7, driver: 'vfio-pci' as const },
      ],
      expected: ['nfv.dev/vfio-group-7'],
    },
    { name: 'uio_pci_generic: the PCI device', devices: [{ pciAddress: '0000:af:00.1', iommuGroup: 9, driver: 'uio_pci_generic' as const }], expected: ['nfv.dev/uio-0000-af-00.1'] },
    { name: 'igb_uio without an IOMMU', devices: [{ pciAddress: '0000:af:00.1', iommuGroup: -1, driver: 'igb_uio' as const }], expected: ['nfv.dev/uio-0000-af-00.1'] },
    { name: 'vfio-pci without an IOMMU: none (the agent refuses it)', devices: [{ pciAddress: '0000:af:00.1', iommuGroup: -1, driver: 'vfio-pci' as const }], expected: [] },
    { name: 'kernel: none', devices: [{ pciAddress: '0000:af:00.1', iommuGroup: 9, driver: 'kernel' as const }], expected: [] },
    {
      name: 'mixed, sorted',
      devices: [
        { pciAddress: '0000:af:00.1', iommuGroup: 9, driver: 'vfio-pci' as const },
        { pciAddress: '0000:18:00.0', iommuGroup: 2, driver: 'igb_uio' as const },
      ],
      expected: ['nfv.dev/uio-0000-18-00.0', 'nfv.dev/vfio-group-9'],
    },
  ])('$name', ({ devices, expected }) => {
    expect(deviceResources(devices)).toEqual(expected);
  });

  test('hugepages: one resource per page size, not the native hugepages-<size>', () => {
    expect([hugepageResource('2Mi'), hugepageResource('1Gi')]).toEqual(['nfv.dev/hugepages-2Mi', 'nfv.dev/hugepages-1Gi']);
  });

  test('are valid extended resource names (a DNS-1123 domain, a qualified name of at most 63 characters)', () => {
    for (const name of [vfioGroupResource(4095), uioDeviceResource('ffff:ff:1f.7'), hugepageResource('2Mi'), hugepageResource('1Gi')]) expect(name).toMatch(/^nfv\.dev\/[A-Za-z0-9][-A-Za-z0-9_.]{0,61}[A-Za-z0-9]$/);
  });

  test.each([
    { name: 'vfio-pci without an IOMMU', call: () => vfioGroupResource(-1), message: /needs an IOMMU/ },
    { name: 'a malformed PCI address', call: () => uioDeviceResource('3b:00.0'), message: /not a PCI address/ },
    { name: 'a page size the kernels do not offer', call: () => hugepageResource('4Ki' as PageSize), message: /"4Ki" is not a hugepage size: use 2Mi or 1Gi/ },
  ])('refuses $name', ({ call, message }) => {
    expect(call).toThrow(message);
  });
});

describe('pluginDevicesOf', () => {
  test('one group resource per IOMMU group and one uio resource per NIC, with their NUMA node; none for a NIC the host uses', () => {
    const management = { ...nic('0000:02:00.0', 3, 0), hostUse: 'interface eno1 is up with addresses' };
    expect(pluginDevicesOf([nic('0000:3b:00.0', 7, 1), nic('0000:3b:00.1', 7, 1), nic('0000:5e:00.0', -1, 0), management])).toEqual([
      { kind: 'uio', resource: 'nfv.dev/uio-0000-3b-00.0', pciAddress: '0000:3b:00.0', numaNode: 1 },
      { kind: 'uio', resource: 'nfv.dev/uio-0000-3b-00.1', pciAddress: '0000:3b:00.1', numaNode: 1 },
      { kind: 'uio', resource: 'nfv.dev/uio-0000-5e-00.0', pciAddress: '0000:5e:00.0', numaNode: 0 },
      { kind: 'vfio', resource: 'nfv.dev/vfio-group-7', group: 7, numaNode: 1 },
    ]);
  });
});

describe('health from the host view', () => {
  test.each([
    { name: 'vfio: group node and /dev/vfio/vfio', device: GROUP_7, host: view({ vfioGroups: new Set([7]) }), expected: 'Healthy' },
    { name: 'vfio: another group bound only', device: GROUP_7, host: view({ vfioGroups: new Set([8]) }), expected: 'Unhealthy' },
    { name: 'vfio: vfio-pci not loaded', device: GROUP_7, host: view({ vfioContainer: false, vfioGroups: new Set([7]) }), expected: 'Unhealthy' },
    { name: 'uio: its uio node', device: UIO_3B, host: view({ uioNodes: new Map([['0000:3b:00.0', '/dev/uio3']]) }), expected: 'Healthy' },
    { name: 'uio: not bound', device: UIO_3B, host: view(), expected: 'Unhealthy' },
  ])('$name: $expected', ({ device, host, expected }) => {
    expect(deviceHealth(device, host)).toBe(expected);
  });

  test('lists the NUMA node for the topology manager when the platform gives one', () => {
    expect(listedDevice(GROUP_7, view())).toEqual({ ID: '7', health: 'Unhealthy', topology: { nodes: [{ ID: 1 }] } });
    expect(listedDevice(UIO_3B, view())).toEqual({ ID: '0000:3b:00.0', health: 'Unhealthy' });
  });
});

describe('containerAllocation', () => {
  const rw = (path: string) => ({ container_path: path, host_path: path, permissions: 'rw' });
  const bound = view({ vfioGroups: new Set([7]), uioNodes: new Map([['0000:3b:00.0', '/dev/uio3']]) });

  test.each([
    { name: 'a VFIO group: the container device and the group', device: GROUP_7, ids: ['7'], devices: [rw('/dev/vfio/vfio'), rw('/dev/vfio/7')] },
    { name: 'a uio device: its node', device: UIO_3B, ids: ['0000:3b:00.0'], devices: [rw('/dev/uio3')] },
    { name: 'nothing asked: nothing given', device: GROUP_7, ids: [], devices: [] },
  ])('$name', ({ device, ids, devices }) => {
    expect(containerAllocation(device, ids, bound)).toEqual({ envs: {}, mounts: [], devices, annotations: {}, cdi_devices: [] });
  });

  test.each([
    { name: 'an ID it does not have', device: GROUP_7, ids: ['8'], host: bound, message: /has only device 7; kubelet asked for 8/ },
    { name: 'a group whose node is gone', device: GROUP_7, ids: ['7'], host: view(), message: /\/dev\/vfio\/7 does not exist/ },
    { name: 'a uio device not bound', device: UIO_3B, ids: ['0000:3b:00.0'], host: view(), message: /the uio device of 0000:3b:00.0 does not exist/ },
  ])('refuses $name', ({ device, ids, host, message }) => {
    expect(() => containerAllocation(device, ids, host)).toThrow(AllocationError);
    expect(() => containerAllocation(device, ids, host)).toThrow(message);
  });
});
