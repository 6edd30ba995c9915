/** How the data-plane tests hand a rendered pod's container to Docker (test/host/dataplane/pod-to-docker.ts). */
import { vnfHostPaths } from '../../src/api/host-paths.js';
import { vnfSpecSchema, type Placement, type VirtualNetworkFunction } from '../../src/api/virtual-network-function.js';
import { renderPod } from '../../src/controllers/vnf/render-pod.js';
import { dockerRunArgs } from './dataplane/pod-to-docker.js';

const UID = '0123abcd-0000-4000-8000-000000000001';
const POD_UID = '99999999-0000-4000-8000-000000000002';
const STATE = '/var/lib/nfv-operator';

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

describe('dockerRunArgs', () => {
  test('the VNF container: hostPath volumes as bind mounts (subPath files too), vfio CharDevices as devices, capabilities, env, args', () => {
    const subject = vnf({
      interfaces: [{ name: 'uplink', device: { pciAddress: '0000:3b:00.0' } }],
      links: [{ name: 'chain', peer: 'rt', role: 'server' }],
      args: ['--vdev', 'net_null0', '--'],
    });
    const root = `${STATE}/vnfs/${UID}`;
    expect(dockerRunArgs(renderPod({ vnf: subject, placement, nodeCpus: [0, 1] }), 'vnf', options)).toEqual([
      ...['--name', 'c1', '--network', 'none', '--cgroup-parent', options.cgroupParent, '--label', 'a=b'],
      ...['--cap-drop', 'ALL', '--cap-add', 'IPC_LOCK', '--cap-add', 'NET_ADMIN', '--cap-add', 'SYS_NICE', '--security-opt', 'no-new-privileges'],
      ...['--mount', `type=bind,source=${root}/hugepages,target=/dev/hugepages`],
      ...['--mount', `type=bind,source=${root}/pci-devices,target=/sys/bus/pci/devices,readonly`],
      ...['--mount', `type=bind,source=${root}/cpu/online,target=/sys/devices/system/cpu/online,readonly`],
      ...['--mount', `type=bind,source=${root}/cpu/present,target=/sys/devices/system/cpu/present,readonly`],
      ...['--mount', `type=bind,source=${root}/cpu/possible,target=/sys/devices/system/cpu/possible,readonly`],
      ...['--mount', `type=bind,source=${root}/empty,target=/sys/devices/system/cpu/cpu0,readonly`],
      ...['--device', '/dev/vfio/vfio:/dev/vfio/vfio', '--device', '/dev/vfio/40:/dev/vfio/40'],
      ...['--mount', `type=bind,source=${STATE}/memif/edge/fw.rt,target=/run/memif/chain`],
      ...['--env', `NFV_EAL_ARGS=-l 1 --huge-dir /dev/hugepages --file-prefix vnf-0123abcd --socket-mem 64 -a 0000:3b:00.0 --vdev net_memif0,role=server,id=0,socket=/run/memif/chain/memif.sock,socket-abstract=no`],
      ...['--env', 'NFV_EAL_CORELIST=1', '--env', 'NFV_PCI_ALLOW=0000:3b:00.0', '--env', 'NFV_HUGEPAGE_DIR=/dev/hugepages'],
      ...['--env', `NFV_HUGEPAGE_BYTES=${64 << 20}`, '--env', 'NFV_NUMA_NODE=0'],
      ...['nfv-operator/l2fwd:22.11', '--vdev', 'net_null0', '--'],
    ]);
  });

  test('the init gate: its command as entrypoint and arguments, POD_UID from the pod, the signal read-only', () => {
    const args = dockerRunArgs(renderPod({ vnf: vnf({}), placement: { ...placement, devices: [] }, nodeCpus: [0, 1] }), 'wait-for-node-agent', options);
    expect(args).toContain(`POD_UID=${POD_UID}`);
    expect(args).toContain(`type=bind,source=${STATE}/vnfs/${UID}/signal,target=/run/nfv-signal,readonly`);
    expect(args.slice(args.indexOf('--entrypoint'))).toEqual(['--entrypoint', 'sh', 'nfv-operator/l2fwd:22.11', '-c', expect.stringContaining('/run/nfv-signal/ready')]);
  });

  test('extra mounts come after the pod’s; what the runtime here cannot do, and an app without its PCI mask, are refused by name', () => {
    const pod = renderPod({ vnf: vnf({ config: { inline: 'x' } }), placement, nodeCpus: [1] });
    expect(() => dockerRunArgs(pod, 'vnf', options)).toThrow('volume config: only hostPath volumes can be run here, not configMap');
    expect(() => dockerRunArgs(pod, 'nope', options)).toThrow('has no container "nope"');
    const unmasked = renderPod({ vnf: vnf({}), placement: { ...placement, devices: [] }, nodeCpus: [1] });
    const app = unmasked.spec!.containers[0]!;
    app.volumeMounts = app.volumeMounts!.filter((m) => m.mountPath !== '/sys/bus/pci/devices');
    expect(() => dockerRunArgs(unmasked, 'vnf', options)).toThrow('container vnf: refusing to run a VNF container without its PCI device mask at /sys/bus/pci/devices');
    const plain = renderPod({ vnf: vnf({}), placement: { ...placement, devices: [] }, nodeCpus: [1] });
    const args = dockerRunArgs(plain, 'vnf', { ...options, extraMounts: [{ source: '/tmp/sys', target: '/tmp/sys', readOnly: true, reason: 'test' }] });
    const extra = args.indexOf('type=bind,source=/tmp/sys,target=/tmp/sys,readonly');
    expect(args.lastIndexOf('--mount')).toBe(extra - 1);
  });
});
