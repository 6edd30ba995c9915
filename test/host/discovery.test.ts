import { cpus as osCpus } from 'node:os';
import { readFileSync } from 'node:fs';
import { inventorySchema } from '../../src/api/nfv-node.js';
import { parseCpuList } from '../../src/api/cpu-list.js';
import { discoverInventory } from '../../node-agent/discover/inventory.js';
import { parseIsolatedFromCmdline } from '../../node-agent/discover/cpu-topology.js';
import { KernelHostUseProbe, type HostNetwork } from '../../node-agent/host/host-use.js';
import { FakePciKernel } from './helpers/fake-pci-kernel.js';
import { buildFakeMachine } from './helpers/fake-sysfs.js';
import { TempTree } from './helpers/host-fixtures.js';

const quietNetwork: HostNetwork = { addresses: async (name) => (name === 'eno1' ? ['192.0.2.10/24'] : []), routeCount: async () => 0 };

describe('discovery on a built sysfs tree', () => {
  let tree: TempTree;
  let kernel: FakePciKernel;

  beforeAll(() => {
    tree = new TempTree('nfv-discovery');
    buildFakeMachine(tree.path('sys'), tree.path('proc'), {
      numaNodes: 2,
      coresPerNode: 4,
      threadsPerCore: 2,
      isolated: [1, 2, 3, 9, 10, 11],
      cmdline: 'BOOT_IMAGE=/vmlinuz isolcpus=managed_irq,domain,5-7 nohz_full=13-15 quiet',
      hugepages: { '2048': { total: 512, free: 500 }, '1048576': { total: 2, free: 2 } },
    });
    kernel = new FakePciKernel(tree.path('sys'));
    kernel.addDevice({ address: '0000:18:00.0', vendor: '8086', device: '159b', pciClass: '0x020000', numaNode: 0, iommuGroup: 20, driver: 'ice', sriovTotalVfs: 128, netInterface: { name: 'ens1f0', up: false } });
    kernel.addDevice({ address: '0000:19:00.0', vendor: '8086', device: '1521', pciClass: '0x020000', numaNode: 0, iommuGroup: 21, driver: 'igb', netInterface: { name: 'eno1', up: true } });
    kernel.addDevice({ address: '0000:86:00.0', vendor: '15b3', device: '101d', pciClass: '0x020000', numaNode: 1, iommuGroup: 70, driver: 'vfio-pci' });
    kernel.addDevice({ address: '0000:5e:00.0', vendor: '144d', device: 'a808', pciClass: '0x010802', numaNode: 0, iommuGroup: 50, driver: 'nvme' });
  });

  afterAll(async () => {
    kernel.destroy();
    await tree.cleanup();
  });

  it('finds CPUs, siblings, NUMA nodes, isolation, hugepages and network devices', async () => {
    const roots = { sysfs: tree.path('sys'), proc: tree.path('proc') };
    const inventory = await discoverInventory(roots, {
      hostUse: new KernelHostUseProbe({ sysfsRoot: roots.sysfs, procRoot: roots.proc, network: quietNetwork, mountInfoPath: tree.path('none') }),
      nicPools: [{ pool: 'fast', vendor: '8086', deviceId: '159b' }, { pool: 'mlx', pciAddresses: ['0000:86:00.0'] }],
    });
    expect(inventorySchema.parse(inventory)).toEqual(inventory);
    expect(inventory.threadsPerCore).toBe(2);
    expect(inventory.cpus).toHaveLength(16);
    expect(inventory.cpus[9]).toEqual({ id: 9, numaNode: 0, socket: 0, core: 1, isolated: true });
    expect(inventory.cpus[12]).toEqual({ id: 12, numaNode: 1, socket: 1, core: 0, isolated: false });
    expect(inventory.cpus.filter((cpu) => cpu.isolated).map((cpu) => cpu.id)).toEqual([1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15]);
    expect(inventory.numaNodes).toEqual([
      { id: 0, cpus: '0-3,8-11', hugepages: [{ pageSize: '1Gi', total: 2, free: 2 }, { pageSize: '2Mi', total: 512, free: 500 }] },
      { id: 1, cpus: '4-7,12-15', hugepages: [{ pageSize: '1Gi', total: 2, free: 2 }, { pageSize: '2Mi', total: 512, free: 500 }] },
    ]);
    expect(inventory.nics).toEqual([
      { pciAddress: '0000:18:00.0', vendor: '8086', deviceId: '159b', numaNode: 0, iommuGroup: 20, driver: 'ice', interface: 'ens1f0', pool: 'fast', sriovTotalVfs: 128 },
      { pciAddress: '0000:19:00.0', vendor: '8086', deviceId: '1521', numaNode: 0, iommuGroup: 21, driver: 'igb', interface: 'eno1', hostUse: 'interface eno1 is up with addresses 192.0.2.10/24' },
      { pciAddress: '0000:86:00.0', vendor: '15b3', deviceId: '101d', numaNode: 1, iommuGroup: 70, driver: 'vfio-pci', pool: 'mlx' },
    ]);
  });

  it.each([
    ['isolcpus=2-5', [2, 3, 4, 5]],
    ['isolcpus=nohz,domain,managed_irq,1,3-4 nohz_full=8', [1, 3, 4, 8]],
    ['quiet', []],
    ['isolcpus=bogus', []],
    ['init=/sbin/init -- isolcpus=1', []],
  ])('reads isolated CPUs from "%s"', (cmdline, expected) => {
    expect(parseIsolatedFromCmdline(cmdline)).toEqual(expected);
  });
});

describe('discovery on this machine (read-only smoke test)', () => {
  it('finds every online CPU and flags the host network device', async () => {
    const inventory = await discoverInventory({ sysfs: '/sys', proc: '/proc' }, { hostUse: new KernelHostUseProbe() });
    expect(inventorySchema.parse(inventory)).toEqual(inventory);
    expect(inventory.cpus.map((cpu) => cpu.id)).toEqual(parseCpuList(readFileSync('/sys/devices/system/cpu/online', 'utf8')));
    expect(inventory.cpus.length).toBe(osCpus().length);
    expect(inventory.numaNodes.length).toBeGreaterThanOrEqual(1);
    console.log(`inventory of this machine: ${JSON.stringify(inventory)}`);
    // Every NIC that carries the default route must be marked as the host's.
    const routed = readFileSync('/proc/net/route', 'utf8').split('\n').slice(1).map((line) => line.split(/\s+/)[0]).filter(Boolean);
    for (const nic of inventory.nics) if (nic.interface && routed.includes(nic.interface)) expect(nic.hostUse).toMatch(/is up with/);
  });
});
