import type { V1ConfigMap, V1Pod, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { parseCpuList } from '../../api/cpu-list.js';
import { PAGE_SIZE_BYTES } from '../../api/common.js';
import { deviceResources, hugepageResource, UIO_DRIVERS } from '../../api/device-resources.js';
import { memifLinkDir, READY_FILE } from '../../api/host-paths.js';
import { VNF_NAME_LABEL } from '../../api/group.js';
import type { Placement, VirtualNetworkFunction } from '../../api/virtual-network-function.js';
import { childName } from './child-name.js';
import { ealArgs, HUGEPAGE_MOUNT, MEMIF_MOUNT } from './eal-args.js';

/** Name of the pod of a VNF. */
export const vnfPodName = (vnfName: string) => childName(vnfName);
/** Name of the DPDK container in a VNF's pod; the node agent's NRI plugin sets its hugetlb limit. */
export const VNF_CONTAINER_NAME = 'vnf';
/** Name of the ConfigMap that holds a VNF's inline config. */
export const vnfConfigMapName = (vnfName: string) => childName(vnfName, 'config');

const SIGNAL_MOUNT = '/run/nfv-signal';
const CPU_SYSFS = '/sys/devices/system/cpu';

/** What the pod is rendered from. */
export interface PodRenderInput {
  vnf: VirtualNetworkFunction;
  placement: Placement;
  /** Every CPU id of the node: those not allocated are masked in the pod's sysfs. */
  nodeCpus: readonly number[];
  /** Image of the init gate; it needs a POSIX sh. Default: the VNF image. */
  gateImage?: string;
}

/**
 * The VNF's pod: bound to the placed node, its DPDK container sees only its hugetlbfs mount, its
 * PCI devices, its CPUs and its device nodes (requested from the node agent's device plugins),
 * and an init gate holds it until the node agent has written this pod's UID into the ready signal
 * (so a stale signal of an earlier pod never opens the gate).
 */
export function renderPod({ vnf, placement, nodeCpus, gateImage }: PodRenderInput): V1Pod {
  const { name, namespace, uid } = vnf.metadata as { name: string; namespace: string; uid: string };
  const { spec } = vnf;
  const paths = placement.hostPaths;
  const allowed = new Set(parseCpuList(placement.cpus));
  const volumes: V1Volume[] = [
    hostDir('hugepages', paths.hugepages),
    hostDir('pci-devices', paths.pciDevices),
    hostDir('cpu-mask', paths.cpuMask),
    hostDir('empty', paths.emptyDir),
    hostDir('signal', paths.readySignal),
  ];
  const mounts: V1VolumeMount[] = [
    { name: 'hugepages', mountPath: HUGEPAGE_MOUNT },
    { name: 'pci-devices', mountPath: '/sys/bus/pci/devices', readOnly: true },
    ...['online', 'present', 'possible'].map((file) => ({ name: 'cpu-mask', mountPath: `${CPU_SYSFS}/${file}`, subPath: file, readOnly: true })),
    ...nodeCpus.filter((cpu) => !allowed.has(cpu)).map((cpu) => ({ name: 'empty', mountPath: `${CPU_SYSFS}/cpu${cpu}`, readOnly: true })),
  ];
  for (const link of spec.links) {
    const [server, client] = link.role === 'server' ? [name, link.peer] : [link.peer, name];
    volumes.push(hostDir(`memif-${link.name}`, memifLinkDir(paths.memif!, namespace, server, client)));
    mounts.push({ name: `memif-${link.name}`, mountPath: `${MEMIF_MOUNT}/${link.name}` });
  }
  if (spec.config) {
    const configMap = spec.config.configMapRef ?? { name: vnfConfigMapName(name), key: 'config' };
    volumes.push({ name: 'config', configMap: { name: configMap.name, items: [{ key: configMap.key, path: 'config' }] } });
    mounts.push({ name: 'config', mountPath: spec.config.mountPath, readOnly: true });
  }
  const usesUio = placement.devices.some((d) => UIO_DRIVERS.has(d.driver));
  // Whole, fixed amounts: requests equal limits, as Kubernetes requires for extended resources.
  const fixed = podFixedResources(placement);
  const env = [
    { name: 'NFV_EAL_ARGS', value: ealArgs(spec, placement, `vnf-${uid.slice(0, 8)}`).join(' ') },
    { name: 'NFV_EAL_CORELIST', value: placement.cpus },
    { name: 'NFV_PCI_ALLOW', value: placement.devices.map((d) => d.pciAddress).join(',') },
    { name: 'NFV_HUGEPAGE_DIR', value: HUGEPAGE_MOUNT },
    { name: 'NFV_HUGEPAGE_BYTES', value: String(placement.hugepages.bytes) },
    { name: 'NFV_NUMA_NODE', value: String(placement.numaNode) },
  ];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: vnfPodName(name),
      namespace,
      labels: { [VNF_NAME_LABEL]: name, 'app.kubernetes.io/managed-by': 'nfv-operator' },
    },
    spec: {
      // The controller placed the VNF; the scheduler only confirms the node and its capacity.
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [placement.node] }] }],
          },
        },
      },
      ...(spec.tolerations ? { tolerations: spec.tolerations } : {}),
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 10,
      enableServiceLinks: false,
      volumes,
      initContainers: [
        {
          name: 'wait-for-node-agent',
          image: gateImage ?? spec.image,
          command: ['sh', '-c', `until [ "$(cat ${SIGNAL_MOUNT}/${READY_FILE} 2>/dev/null)" = "$POD_UID" ]; do sleep 0.5; done`],
          env: [{ name: 'POD_UID', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } }],
          volumeMounts: [{ name: 'signal', mountPath: SIGNAL_MOUNT, readOnly: true }],
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
        },
      ],
      containers: [
        {
          name: VNF_CONTAINER_NAME,
          image: spec.image,
          ...(spec.command ? { command: spec.command } : {}),
          ...(spec.args ? { args: spec.args } : {}),
          env,
          volumeMounts: mounts,
          // CPU requests account the cores to the scheduler; no limit, because a CFS quota would
          // throttle poll-mode threads that are meant to spin at 100% on their own cores.
          resources: { requests: { cpu: String(allowed.size), ...fixed }, limits: fixed },
          securityContext: {
            allowPrivilegeEscalation: false,
            capabilities: {
              drop: ['ALL'],
              // IPC_LOCK: pin hugepage memory for DMA. NET_ADMIN: memif and link setup.
              // SYS_RAWIO: PCI config space through UIO.
              add: ['IPC_LOCK', 'NET_ADMIN', 'SYS_NICE', ...(usesUio ? ['SYS_RAWIO'] : [])],
            },
          },
        },
      ],
    },
  };
}

/** The ConfigMap that carries an inline spec.config; undefined when there is none. */
export function renderConfigMap(vnf: VirtualNetworkFunction): V1ConfigMap | undefined {
  const inline = vnf.spec.config?.inline;
  if (inline === undefined) return undefined;
  const { name, namespace } = vnf.metadata as { name: string; namespace: string };
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: vnfConfigMapName(name), namespace, labels: { [VNF_NAME_LABEL]: name } },
    data: { config: inline },
  };
}

/**
 * The hugepages and devices of the placement as pod resources, all served by the node agent's
 * kubelet device plugins:
 * - `nfv.dev/hugepages-<size>` (see {@link hugepageResource}), in pages: the scheduler and kubelet
 *   count the pool pages the agent lists, which follow the pools at runtime. Not kubelet's native
 *   `hugepages-<size>`, whose capacity kubelet reads only when it starts (pages a pool reserves
 *   later would stay unschedulable until a kubelet restart). Without a native declaration kubelet
 *   sets the pod's and the container's hugetlb limits to 0 where it manages hugetlb; the agent
 *   writes the pod's limit while it prepares the pod and its NRI plugin the container's;
 * - one device-plugin resource per VFIO group or UIO device (see {@link deviceResources}): kubelet
 *   admits the pod only once the agent's plugin reports it healthy (the driver is bound), and the
 *   runtime then creates exactly those device nodes in the container and allows them.
 */
export function podFixedResources(placement: Placement): Record<string, string> {
  const { pageSize, bytes } = placement.hugepages;
  return {
    [hugepageResource(pageSize)]: String(Math.ceil(bytes / PAGE_SIZE_BYTES[pageSize])),
    ...Object.fromEntries(deviceResources(placement.devices).map((name) => [name, '1'])),
  };
}

function hostDir(name: string, path: string): V1Volume {
  return { name, hostPath: { path, type: 'Directory' } };
}
