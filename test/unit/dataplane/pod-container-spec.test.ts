/** How the data-plane tests hand a rendered pod's container to a runtime (test/host/dataplane/pod-container-spec.ts). */
import type { V1Pod } from '@kubernetes/client-node';
import { vnfHostPaths } from '../../../src/api/host-paths.js';
import { vnfSpecSchema, type Placement, type VirtualNetworkFunction } from '../../../src/api/virtual-network-function.js';
import { renderPod } from '../../../src/controllers/vnf/render-pod.js';
import { containerRunSpec } from '../../host/dataplane/pod-container-spec.js';

const UID = '0123abcd-0000-4000-8000-000000000001';
const POD_UID = '99999999-0000-4000-8000-000000000002';
const STATE = '/var/lib/nfv-operator';
const ROOT = `${STATE}/vnfs/${UID}`;

function vnf(spec: Record<string, unknown>): VirtualNetworkFunction {
  return {
    apiVersion: 'nfv.dev/v1alpha1',
    kind: 'VirtualNetworkFunction',
    metadata: { name: 'fw', namespace: 'edge', uid: UID },
    spec: vnfSpecSchema.parse({ image: 'nfv-operator/l2fwd:22.11', cpus: { count: 1 }, hugepages: { pageSize: '2Mi', amount: '64Mi', pool: 'p' }, ...spec }),
  };
}

const placement: Placement = {
  node: 'n1',
  numaNode: 0,
  cpus: '1',
  hugepages: { pool: 'p', pageSize: '2Mi', bytes: 64 << 20 },
  devices: [{ interface: 'uplink', pciAddress: '0000:3b:00.0', iommuGroup: 40, driver: 'vfio-pci' }],
  hostPaths: vnfHostPaths(STATE, UID),
};
const options = { containerName: 'c1', podUid: POD_UID, cgroupParent: `/t/kubepods/burstable/pod${POD_UID}`, labels: { a: 'b' } };
const plainPod = () => renderPod({ vnf: vnf({}), placement: { ...placement, devices: [] }, nodeCpus: [0, 1] });
const bind = (source: string, target: string, readOnly = false) => ({ source, target, readOnly, propagation: 'rprivate' });

describe('containerRunSpec', () => {
  test('the VNF container: hostPath volumes as bind mounts (subPath files too), capabilities, env, args', () => {
    const subject = vnf({
      interfaces: [{ name: 'uplink', device: { pciAddress: '0000:3b:00.0' } }],
      links: [{ name: 'chain', peer: 'rt', role: 'server' }],
      args: ['--vdev', 'net_null0', '--'],
    });
    expect(containerRunSpec(renderPod({ vnf: subject, placement, nodeCpus: [0, 1] }), 'vnf', options)).toEqual({
      name: 'c1',
      image: 'nfv-operator/l2fwd:22.11',
      cmd: ['--vdev', 'net_null0', '--'],
      env: {
        NFV_EAL_ARGS: '-l 1 --huge-dir /dev/hugepages --file-prefix vnf-0123abcd --socket-mem 64 -a 0000:3b:00.0 --vdev net_memif0,role=server,id=0,socket=/run/memif/chain/memif.sock,socket-abstract=no',
        NFV_EAL_CORELIST: '1',
        NFV_PCI_ALLOW: '0000:3b:00.0',
        NFV_HUGEPAGE_DIR: '/dev/hugepages',
        NFV_HUGEPAGE_BYTES: String(64 << 20),
        NFV_NUMA_NODE: '0',
      },
      labels: { a: 'b' },
      mounts: [
        bind(`${ROOT}/hugepages`, '/dev/hugepages'),
        bind(`${ROOT}/pci-devices`, '/sys/bus/pci/devices', true),
        bind(`${ROOT}/cpu/online`, '/sys/devices/system/cpu/online', true),
        bind(`${ROOT}/cpu/present`, '/sys/devices/system/cpu/present', true),
        bind(`${ROOT}/cpu/possible`, '/sys/devices/system/cpu/possible', true),
        bind(`${ROOT}/empty`, '/sys/devices/system/cpu/cpu0', true),
        bind(`${STATE}/memif/edge/fw.rt`, '/run/memif/chain'),
      ],
      devices: [],
      capabilities: { add: ['IPC_LOCK', 'NET_ADMIN', 'SYS_NICE'], drop: ['ALL'] },
      noNewPrivileges: true,
      network: 'none',
      pid: 'container',
      cgroupParent: options.cgroupParent,
    });
  });

  test('the init gate: its command replaces the entrypoint and the image CMD, POD_UID from the pod, the signal read-only', () => {
    const spec = containerRunSpec(plainPod(), 'wait-for-node-agent', options);
    expect(spec.env).toEqual({ POD_UID });
    expect(spec.mounts).toEqual([bind(`${ROOT}/signal`, '/run/nfv-signal', true)]);
    expect(spec.entrypoint).toEqual(['sh', '-c', expect.stringContaining('/run/nfv-signal/ready')]);
    expect(spec.cmd).toEqual([]);
    expect(spec.capabilities).toEqual({ add: [], drop: ['ALL'] });
  });

  test('a CharDevice hostPath volume becomes a device, not a bind mount', () => {
    const pod: V1Pod = plainPod();
    pod.spec!.volumes!.push({ name: 'vfio-40', hostPath: { path: '/dev/vfio/40', type: 'CharDevice' } });
    pod.spec!.containers[0]!.volumeMounts!.push({ name: 'vfio-40', mountPath: '/dev/vfio/40' });
    const spec = containerRunSpec(pod, 'vnf', options);
    expect(spec.devices).toEqual([{ source: '/dev/vfio/40', target: '/dev/vfio/40' }]);
    expect(spec.mounts.map((m) => m.target)).not.toContain('/dev/vfio/40');
  });

  test('a VNF without args keeps the image CMD; mountPropagation and the host namespaces carry over', () => {
    const pod: V1Pod = plainPod();
    pod.spec!.hostNetwork = true;
    pod.spec!.hostPID = true;
    pod.spec!.containers[0]!.volumeMounts![0]!.mountPropagation = 'HostToContainer';
    const spec = containerRunSpec(pod, 'vnf', options);
    expect(spec).not.toHaveProperty('cmd');
    expect(spec).not.toHaveProperty('entrypoint');
    expect(spec.mounts[0]).toEqual({ ...bind(`${ROOT}/hugepages`, '/dev/hugepages'), propagation: 'rslave' });
    expect([spec.network, spec.pid]).toEqual(['host', 'host']);
  });

  test('extra mounts come after the pod’s; what the runtimes here cannot do, and an app without its PCI mask, are refused by name', () => {
    const pod = renderPod({ vnf: vnf({ config: { inline: 'x' } }), placement, nodeCpus: [1] });
    expect(() => containerRunSpec(pod, 'vnf', options)).toThrow('volume config: only hostPath volumes can be run here, not configMap');
    expect(() => containerRunSpec(pod, 'nope', options)).toThrow('has no container "nope"');
    const unmasked = plainPod();
    const app = unmasked.spec!.containers[0]!;
    app.volumeMounts = app.volumeMounts!.filter((m) => m.mountPath !== '/sys/bus/pci/devices');
    expect(() => containerRunSpec(unmasked, 'vnf', options)).toThrow('container vnf: refusing to run a VNF container without its PCI device mask at /sys/bus/pci/devices');
    const privileged = plainPod();
    privileged.spec!.containers[0]!.securityContext!.privileged = true;
    expect(() => containerRunSpec(privileged, 'vnf', options)).toThrow('container vnf: privileged containers are refused on these machines');
    const spec = containerRunSpec(plainPod(), 'vnf', { ...options, extraMounts: [{ source: '/tmp/sys', target: '/tmp/sys', readOnly: true, reason: 'test' }] });
    expect(spec.mounts.at(-1)).toEqual(bind('/tmp/sys', '/tmp/sys', true));
  });
});
