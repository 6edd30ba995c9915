import { describe, expect, test } from '@jest/globals';
import { podFixedResources, renderConfigMap, renderPod } from '../../../src/controllers/vnf/render-pod.js';
import { placementOf } from '../../../src/controllers/vnf/placement-status.js';
import { childName } from '../../../src/controllers/vnf/child-name.js';
import { allocation } from '../../fixtures/placement.js';
import { vnf } from '../../fixtures/vnf.js';

const NODE_CPUS = Array.from({ length: 8 }, (_, i) => i);

function rendered(spec: NonNullable<Parameters<typeof vnf>[1]>['spec'] = {}, devices: Parameters<typeof allocation>[4] = []) {
  const subject = vnf('l2fwd', { spec, uid: '3f2a3c1e-0000-4000-8000-0123456789ab' });
  const placement = placementOf(subject, 'n1', allocation(subject.metadata.uid!, 1, '2-3', 2, devices), '/var/lib/nfv-operator');
  return renderPod({ vnf: subject, placement, nodeCpus: NODE_CPUS });
}
const container = (pod: ReturnType<typeof rendered>) => pod.spec!.containers[0]!;
const env = (pod: ReturnType<typeof rendered>) => Object.fromEntries(container(pod).env!.map((e) => [e.name, e.value]));
const mountAt = (pod: ReturnType<typeof rendered>, path: string) => container(pod).volumeMounts!.find((m) => m.mountPath === path);

describe('renderPod', () => {
  test('is bound to the placed node by a field selector the scheduler checks', () => {
    const terms = rendered().spec!.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms;
    expect(terms).toEqual([{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n1'] }] }]);
  });

  test('hands the allocation to DPDK through the environment', () => {
    const pod = rendered({ interfaces: [{ name: 'uplink', device: { pool: 'fast' } }] }, [{ pciAddress: '0000:58:00.0', iommuGroup: 36, driver: 'vfio-pci' }]);
    expect(env(pod)).toMatchObject({
      NFV_EAL_CORELIST: '2-3',
      NFV_PCI_ALLOW: '0000:58:00.0',
      NFV_HUGEPAGE_DIR: '/dev/hugepages',
      NFV_HUGEPAGE_BYTES: String(2 * 2 ** 30),
      NFV_NUMA_NODE: '1',
      NFV_EAL_ARGS: '-l 2-3 --huge-dir /dev/hugepages --file-prefix vnf-3f2a3c1e --socket-mem 0,2048 -a 0000:58:00.0',
    });
  });

  test('mounts the prepared host paths and masks every foreign CPU', () => {
    const pod = rendered();
    const root = '/var/lib/nfv-operator/vnfs/3f2a3c1e-0000-4000-8000-0123456789ab';
    const volumes = Object.fromEntries(pod.spec!.volumes!.map((v) => [v.name, v.hostPath?.path]));
    expect(volumes).toMatchObject({ hugepages: `${root}/hugepages`, 'pci-devices': `${root}/pci-devices`, signal: `${root}/signal` });
    expect(mountAt(pod, '/sys/bus/pci/devices')).toMatchObject({ name: 'pci-devices', readOnly: true });
    expect(mountAt(pod, '/sys/devices/system/cpu/online')).toMatchObject({ name: 'cpu-mask', subPath: 'online' });
    const masked = container(pod)
      .volumeMounts!.filter((m) => m.name === 'empty')
      .map((m) => m.mountPath);
    expect(masked).toEqual([0, 1, 4, 5, 6, 7].map((cpu) => `/sys/devices/system/cpu/cpu${cpu}`));
  });

  test.each([
    { name: 'a vfio-pci NIC: its IOMMU group', devices: [{ pciAddress: '0000:58:00.0', iommuGroup: 36, driver: 'vfio-pci' as const }], expected: { 'nfv.dev/vfio-group-36': '1' } },
    {
      name: 'two functions of one IOMMU group: the group once',
      devices: [
        { pciAddress: '0000:58:00.0', iommuGroup: 36, driver: 'vfio-pci' as const },
        { pciAddress: '0000:58:00.1', iommuGroup: 36, driver: 'vfio-pci' as const },
      ],
      expected: { 'nfv.dev/vfio-group-36': '1' },
    },
    { name: 'a uio NIC: its PCI device', devices: [{ pciAddress: '0000:3b:00.1', iommuGroup: 12, driver: 'igb_uio' as const }], expected: { 'nfv.dev/uio-0000-3b-00.1': '1' } },
    { name: 'a kernel NIC: nothing', devices: [{ pciAddress: '0000:59:00.0', iommuGroup: 37, driver: 'kernel' as const }], expected: {} },
  ])('requests the device-plugin resource of each device, not a hostPath char device: $name', ({ devices, expected }) => {
    const pod = rendered({ interfaces: devices.map((_, i) => ({ name: `if${i}`, device: { pool: 'fast' } })) }, devices);
    const hugepages = { 'nfv.dev/hugepages-1Gi': '2' };
    expect(container(pod).resources).toEqual({ requests: { cpu: '2', ...hugepages, ...expected }, limits: { ...hugepages, ...expected } });
    expect(pod.spec!.volumes!.filter((v) => v.hostPath?.type === 'CharDevice' || v.hostPath?.path.startsWith('/dev/'))).toEqual([]);
  });

  test('gates the container on the agent signal for this very pod', () => {
    const gate = rendered().spec!.initContainers![0]!;
    expect(gate.command!.join(' ')).toContain('/run/nfv-signal/ready');
    expect(gate.env).toEqual([{ name: 'POD_UID', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } }]);
  });

  test('runs with an explicit capability list, no CPU limit (no CFS throttling of poll loops), its pages of the agent resource and no native hugepages', () => {
    const c = container(rendered());
    expect(c.securityContext).toEqual({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'], add: ['IPC_LOCK', 'NET_ADMIN', 'SYS_NICE'] } });
    expect(c.resources).toEqual({ requests: { cpu: '2', 'nfv.dev/hugepages-1Gi': '2' }, limits: { 'nfv.dev/hugepages-1Gi': '2' } });
  });

  test.each([
    { name: '2 pages of 1Gi', hugepages: { pool: 'gold', pageSize: '1Gi' as const, bytes: 2 * 2 ** 30 }, expected: { 'nfv.dev/hugepages-1Gi': '2' } },
    { name: '64Mi of 2Mi pages: 32 pages', hugepages: { pool: 'silver', pageSize: '2Mi' as const, bytes: 64 * 2 ** 20 }, expected: { 'nfv.dev/hugepages-2Mi': '32' } },
  ])('counts the hugepages in pages of nfv.dev/hugepages-<size>: $name', ({ hugepages, expected }) => {
    const subject = vnf('l2fwd', { uid: '3f2a3c1e-0000-4000-8000-0123456789ab' });
    const placement = placementOf(subject, 'n1', { ...allocation(subject.metadata.uid!, 0, '2-3'), hugepages }, '/var/lib/nfv-operator');
    expect(podFixedResources(placement)).toEqual(expected);
  });

  test('memif links mount a per-link socket directory and add a non-abstract net_memif vdev', () => {
    const pod = rendered({ links: [{ name: 'up', peer: 'bng', role: 'client', id: 3 }] });
    expect(pod.spec!.volumes!.find((v) => v.name === 'memif-up')!.hostPath!.path).toBe('/var/lib/nfv-operator/memif/default/bng.l2fwd');
    expect(mountAt(pod, '/run/memif/up')).toBeDefined();
    expect(env(pod).NFV_EAL_ARGS).toContain('--vdev net_memif0,role=client,id=3,socket=/run/memif/up/memif.sock,socket-abstract=no');
  });

  test('inline config becomes an owned ConfigMap mounted as <mountPath>/config', () => {
    const subject = vnf('l3fwd', { spec: { config: { inline: 'route add 10.0.0.0/8 port 0' } } });
    expect(renderConfigMap(subject)).toMatchObject({ metadata: { name: 'l3fwd-config' }, data: { config: 'route add 10.0.0.0/8 port 0' } });
    const pod = rendered({ config: { configMapRef: { name: 'routes', key: 'table' }, mountPath: '/etc/l3fwd' } });
    expect(pod.spec!.volumes!.find((v) => v.name === 'config')!.configMap).toEqual({ name: 'routes', items: [{ key: 'table', path: 'config' }] });
    expect(mountAt(pod, '/etc/l3fwd')).toMatchObject({ readOnly: true });
  });
});

describe('childName', () => {
  test.each([
    ['l2fwd', undefined, 'l2fwd'],
    ['l2fwd', 'config', 'l2fwd-config'],
  ])('%s + %s', (base, suffix, want) => expect(childName(base, suffix)).toBe(want));
  test('long names are cut with a hash, stay unique and within 63 characters', () => {
    const a = childName('a'.repeat(70), 'config');
    const b = childName(`${'a'.repeat(69)}b`, 'config');
    expect(a).toHaveLength(63);
    expect(a).toMatch(/^a+-[0-9a-f]{8}-config$/);
    expect(a).not.toBe(b);
  });
});
