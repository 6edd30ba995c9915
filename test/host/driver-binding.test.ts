import { writeFileSync } from 'node:fs';
import { DriverBinding, DriverBindingError } from '../../node-agent/host/driver-binding.js';
import { KernelHostUseProbe, type HostNetwork } from '../../node-agent/host/host-use.js';
import { FakePciKernel } from './helpers/fake-pci-kernel.js';
import { TempTree } from './helpers/host-fixtures.js';

/** The host's interfaces as the test declares them. */
class DeclaredNetwork implements HostNetwork {
  constructor(private readonly byInterface: Record<string, { addresses?: string[]; routes?: number }>) {}
  async addresses(name: string) {
    return this.byInterface[name]?.addresses ?? [];
  }
  async routeCount(name: string) {
    return this.byInterface[name]?.routes ?? 0;
  }
}

describe('DriverBinding on a fake sysfs tree (never on real devices)', () => {
  let tree: TempTree;
  let kernel: FakePciKernel;
  let binding: DriverBinding;

  beforeEach(() => {
    tree = new TempTree('nfv-pci');
    kernel = new FakePciKernel(tree.path('sys'));
    kernel.addDriver('vfio-pci');
    kernel.addDevice({ address: '0000:3b:00.0', vendor: '8086', device: '159b', pciClass: '0x020000', numaNode: 0, iommuGroup: 40, driver: 'ice', netInterface: { name: 'ens1f0', up: false } });
    kernel.addDevice({ address: '0000:3b:00.1', vendor: '8086', device: '159b', pciClass: '0x020000', numaNode: 0, iommuGroup: 41, driver: 'ice', netInterface: { name: 'ens1f1', up: true } });
    kernel.addDevice({ address: '0000:3b:00.2', vendor: '8086', device: '159b', pciClass: '0x020000', numaNode: 0, iommuGroup: 42, driver: 'ice', netInterface: { name: 'ens1f2', up: true } });
    kernel.addDevice({ address: '0000:5e:00.0', vendor: '144d', device: 'a808', pciClass: '0x010802', numaNode: 0, iommuGroup: 50, driver: 'nvme', disk: { name: 'nvme0n1', dev: '259:0' } });
    kernel.addDevice({ address: '0000:af:00.0', vendor: '8086', device: '1592', pciClass: '0x020000', numaNode: 1, iommuGroup: 60, driver: '' });
    const mountInfo = tree.path('mountinfo');
    writeFileSync(mountInfo, '30 1 259:0 / /var/lib/kubelet rw,relatime - xfs /dev/nvme0n1 rw\n');
    const hostUse = new KernelHostUseProbe({
      sysfsRoot: kernel.sysfs,
      procRoot: tree.path('proc'),
      mountInfoPath: mountInfo,
      network: new DeclaredNetwork({ ens1f1: { addresses: ['10.0.0.5/24'] }, ens1f2: {} }),
    });
    binding = new DriverBinding(kernel.sysfs, { hostUse, settleTimeoutMs: 2000 });
  });

  afterEach(async () => {
    kernel.destroy();
    await tree.cleanup();
  });

  it('binds through driver_override, unbind and drivers_probe, and restores the original driver', async () => {
    await binding.bind('0000:3b:00.0', 'vfio-pci');
    expect(kernel.driverOf('0000:3b:00.0')).toBe('vfio-pci');
    expect(kernel.overrideOf('0000:3b:00.0')).toBe('vfio-pci');
    expect(kernel.log).toEqual(expect.arrayContaining(['unbind 0000:3b:00.0 ice', 'bind 0000:3b:00.0 vfio-pci']));

    await binding.bind('0000:3b:00.0', 'vfio-pci'); // idempotent
    await binding.restore('0000:3b:00.0', 'ice');
    expect(kernel.driverOf('0000:3b:00.0')).toBe('ice');
    expect(kernel.overrideOf('0000:3b:00.0')).toBe('(null)');
    await binding.restore('0000:3b:00.0', 'ice'); // idempotent
    expect(kernel.driverOf('0000:3b:00.0')).toBe('ice');
  });

  it('binds a device that had no driver and restores it to none', async () => {
    await binding.bind('0000:af:00.0', 'vfio-pci');
    expect(kernel.driverOf('0000:af:00.0')).toBe('vfio-pci');
    await binding.restore('0000:af:00.0', '');
    expect(kernel.driverOf('0000:af:00.0')).toBe('');
    expect(kernel.overrideOf('0000:af:00.0')).toBe('(null)');
  });

  it('refuses an interface the host has up with addresses', async () => {
    const refused = binding.bind('0000:3b:00.1', 'vfio-pci');
    await expect(refused).rejects.toBeInstanceOf(DriverBindingError);
    await expect(refused).rejects.toMatchObject({ reason: 'DeviceInUseByHost', message: expect.stringContaining('ens1f1 is up with addresses 10.0.0.5/24') });
    expect(kernel.driverOf('0000:3b:00.1')).toBe('ice');
    expect(kernel.overrideOf('0000:3b:00.1')).toBe('(null)');
  });

  it('takes an interface that is up without addresses or routes', async () => {
    await binding.bind('0000:3b:00.2', 'vfio-pci');
    expect(kernel.driverOf('0000:3b:00.2')).toBe('vfio-pci');
  });

  it('refuses a device behind a mounted disk', async () => {
    await expect(binding.bind('0000:5e:00.0', 'vfio-pci')).rejects.toMatchObject({
      reason: 'DeviceInUseByHost',
      message: expect.stringContaining('disk nvme0n1 is mounted at /var/lib/kubelet'),
    });
    expect(kernel.driverOf('0000:5e:00.0')).toBe('nvme');
  });

  it('says which module to load when the driver is missing', async () => {
    await expect(binding.bind('0000:3b:00.0', 'uio_pci_generic')).rejects.toMatchObject({ reason: 'DriverNotLoaded', message: expect.stringContaining('modprobe uio_pci_generic') });
    expect(kernel.driverOf('0000:3b:00.0')).toBe('ice');
  });

  it('rejects malformed and unknown addresses before touching sysfs', async () => {
    await expect(binding.bind('../../../../etc', 'vfio-pci')).rejects.toBeInstanceOf(RangeError);
    await expect(binding.bind('0000:3b:00.7', 'vfio-pci')).rejects.toMatchObject({ reason: 'DeviceNotFound' });
    await binding.restore('0000:3b:00.7', 'ice'); // a hot-unplugged device has nothing to restore
  });
});
