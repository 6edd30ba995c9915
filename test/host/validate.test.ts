import { vnfHostPaths } from '../../src/api/host-paths.js';
import type { VirtualNetworkFunction } from '../../src/api/virtual-network-function.js';
import { InvalidPlacementError, planVnfHost } from '../../node-agent/validate.js';

const UID = '6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b';
const STATE = '/var/lib/nfv-operator';

function vnf(mutate: (v: VirtualNetworkFunction) => void = () => undefined): VirtualNetworkFunction {
  const object: VirtualNetworkFunction = {
    apiVersion: 'nfv.dev/v1alpha1',
    kind: 'VirtualNetworkFunction',
    metadata: { name: 'fw', namespace: 'edge', uid: UID },
    spec: {
      image: 'fw:1',
      cpus: { count: 2, fullCores: false },
      hugepages: { pageSize: '2Mi', amount: '4Mi', pool: 'default' },
      interfaces: [],
      links: [{ name: 'up', peer: 'router', role: 'client', id: 0 }],
    },
    status: {
      placement: {
        node: 'worker-1',
        numaNode: 0,
        cpus: '2-3',
        hugepages: { pool: 'default', pageSize: '2Mi', bytes: 4 << 20 },
        devices: [{ interface: 'uplink', pciAddress: '0000:3b:00.0', iommuGroup: 40, driver: 'vfio-pci' }],
        hostPaths: vnfHostPaths(STATE, UID),
      },
    },
  };
  mutate(object);
  return object;
}

const facts = { stateRoot: STATE, nodeName: 'worker-1', cpus: new Set([0, 1, 2, 3]), numaNodes: new Set([0]) };

describe('planVnfHost', () => {
  it('turns a valid placement into a host plan', () => {
    expect(planVnfHost(vnf(), facts)).toEqual({
      uid: UID,
      namespace: 'edge',
      name: 'fw',
      numaNode: 0,
      cpus: [2, 3],
      pageSize: '2Mi',
      hugepageBytes: 4 << 20,
      pool: 'default',
      devices: [{ pciAddress: '0000:3b:00.0', iommuGroup: 40, driver: 'vfio-pci' }],
      paths: vnfHostPaths(STATE, UID),
      memifDirs: [`${STATE}/memif/edge/router.fw`],
    });
  });

  const p = (v: VirtualNetworkFunction) => v.status!.placement!;
  it.each<[string, (v: VirtualNetworkFunction) => void, string]>([
    ['a UID that is not one', (v) => (v.metadata.uid = '../../etc'), 'metadata.uid'],
    ['another node', (v) => (p(v).node = 'worker-2'), 'status.placement.node'],
    ['an unknown NUMA node', (v) => (p(v).numaNode = 3), 'status.placement.numaNode'],
    ['a malformed CPU list', (v) => (p(v).cpus = '2-3;rm -rf /'), 'status.placement.cpus'],
    ['a CPU the node lacks', (v) => (p(v).cpus = '2-9'), 'status.placement.cpus'],
    ['an unknown page size', (v) => ((p(v).hugepages as { pageSize: string }).pageSize = '4Ki'), 'status.placement.hugepages.pageSize'],
    ['bytes that are not whole pages', (v) => (p(v).hugepages.bytes = 3 << 20), 'status.placement.hugepages.bytes'],
    ['zero bytes', (v) => (p(v).hugepages.bytes = 0), 'status.placement.hugepages.bytes'],
    ['a short PCI address', (v) => (p(v).devices[0]!.pciAddress = '3b:00.0'), 'status.placement.devices[0].pciAddress'],
    ['a PCI address with a path', (v) => (p(v).devices[0]!.pciAddress = '0000:3b:00.0/../../'), 'status.placement.devices[0].pciAddress'],
    ['an unknown driver', (v) => ((p(v).devices[0] as { driver: string }).driver = 'evil'), 'status.placement.devices[0].driver'],
    ['vfio-pci without an IOMMU', (v) => (p(v).devices[0]!.iommuGroup = -1), 'status.placement.devices[0].iommuGroup'],
    ['a hugepage path outside the state root', (v) => (p(v).hostPaths.hugepages = '/dev/hugepages'), 'status.placement.hostPaths.hugepages'],
    ['a ready path with ..', (v) => (p(v).hostPaths.readySignal = `${STATE}/vnfs/${UID}/../../../etc`), 'status.placement.hostPaths.readySignal'],
    ['a link peer with a slash', (v) => (v.spec.links[0]!.peer = '../x'), 'spec.links[0].peer'],
  ])('refuses %s, naming the field', (_name, mutate, field) => {
    let error: unknown;
    try {
      planVnfHost(vnf(mutate), facts);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidPlacementError);
    expect((error as InvalidPlacementError).field).toBe(field);
    expect((error as InvalidPlacementError).reason).toBe('InvalidPlacement');
  });
});
