/**
 * One container of a rendered pod as a container runtime is handed it, the way kubelet hands it
 * over: every hostPath volume it mounts becomes a bind mount at its mountPath (a subPath names a
 * file or directory inside the volume; mountPropagation keeps its meaning), CharDevice volumes
 * become devices, the securityContext's capabilities are dropped and added, the environment is
 * passed as rendered (fieldRefs resolved against the pod), and command/args keep Kubernetes'
 * meaning (command replaces the image's entrypoint, args its CMD). Pure, so it is tested without
 * a runtime; both runtimes of the data-plane tests (Docker through testcontainers, and the
 * namespace sandbox) run what it returns.
 *
 * What kubelet would do differently: the pod's network namespace is one of the container's own
 * (loopback only) unless the pod asks for the host's, and the container's cgroup goes under the
 * pod cgroup that the caller names, as kubelet's cgroupfs driver lays it out. An app container
 * without the PCI device mask is refused: EAL would probe the machine's own NICs.
 */
import type { V1Container, V1EnvVar, V1Pod, V1Volume } from '@kubernetes/client-node';
import { posix } from 'node:path';

/** Where the pod mounts the agent's PCI device mask. */
const PCI_MASK_TARGET = '/sys/bus/pci/devices';

/** Kubernetes' mountPropagation values, by the name runc gives the same propagation. */
const PROPAGATION = { None: 'rprivate', HostToContainer: 'rslave', Bidirectional: 'rshared' } as const;

/** A bind mount that is not in the pod, and why the test needs it. */
export interface ExtraBindMount {
  source: string;
  target: string;
  readOnly: boolean;
  /** Why it is there: every extra mount is a departure from the rendered pod. */
  reason: string;
}

/** A host path bound into the container. */
export interface BindMount {
  source: string;
  target: string;
  readOnly: boolean;
  propagation: (typeof PROPAGATION)[keyof typeof PROPAGATION];
}

/** A host device node given to the container. */
export interface DeviceMapping {
  source: string;
  target: string;
}

/** Everything a runtime needs to run one container of a pod. */
export interface ContainerRunSpec {
  /** The runtime's name for the container. */
  name: string;
  image: string;
  /** Replaces the image's entrypoint when set (Kubernetes' command). */
  entrypoint?: string[];
  /** Replaces the image's CMD when set (Kubernetes' args; after a command, the rest of it). */
  cmd?: string[];
  env: Record<string, string>;
  labels: Record<string, string>;
  mounts: BindMount[];
  devices: DeviceMapping[];
  capabilities: { add: string[]; drop: string[] };
  noNewPrivileges: boolean;
  /** The pod's namespaces: the host's, or the container's own ("none": loopback only). */
  network: 'none' | 'host';
  pid: 'container' | 'host';
  /** The pod's cgroup below each hierarchy's root, the container's cgroup goes under it; undefined: the runtime's own place. */
  cgroupParent?: string;
}

/** How to run one container of a pod. */
export interface ContainerRunOptions {
  /** The runtime's name for the container. */
  containerName: string;
  /** The pod's UID: what `fieldRef: metadata.uid` resolves to. */
  podUid: string;
  /** The pod's cgroup, from the root of each hierarchy (kubelet's cgroupfs layout). */
  cgroupParent: string;
  labels?: Record<string, string>;
  extraMounts?: readonly ExtraBindMount[];
}

/** A container of `pod`, init containers included; throws naming the pod when there is none. */
export function podContainer(pod: V1Pod, name: string): V1Container {
  const container = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((c) => c.name === name);
  if (!container) throw new Error(`pod ${pod.metadata?.name} has no container "${name}"`);
  return container;
}

function fieldValue(pod: V1Pod, podUid: string, env: V1EnvVar): string {
  if (env.value !== undefined) return env.value;
  const path = env.valueFrom?.fieldRef?.fieldPath;
  switch (path) {
    case 'metadata.uid':
      return podUid;
    case 'metadata.name':
      return pod.metadata?.name ?? '';
    case 'metadata.namespace':
      return pod.metadata?.namespace ?? '';
    default:
      throw new Error(`env ${env.name}: only values and the fieldRefs metadata.uid, metadata.name and metadata.namespace are supported, not ${JSON.stringify(env.valueFrom)}`);
  }
}

function hostPathOf(volume: V1Volume | undefined, name: string): { path: string; type: string } {
  if (!volume) throw new Error(`volumeMount ${name} names no volume of the pod`);
  if (!volume.hostPath) throw new Error(`volume ${name}: only hostPath volumes can be run here, not ${Object.keys(volume).filter((k) => k !== 'name').join(', ')}`);
  return { path: volume.hostPath.path, type: volume.hostPath.type ?? '' };
}

/** What a runtime runs for container `name` of `pod`. */
export function containerRunSpec(pod: V1Pod, name: string, options: ContainerRunOptions): ContainerRunSpec {
  const container = podContainer(pod, name);
  // Without the mask EAL probes every PCI device it sees, the machine's own NICs included.
  const isAppContainer = (pod.spec?.containers ?? []).includes(container);
  if (isAppContainer && !(container.volumeMounts ?? []).some((m) => m.mountPath === PCI_MASK_TARGET)) {
    throw new Error(`container ${name}: refusing to run a VNF container without its PCI device mask at ${PCI_MASK_TARGET}`);
  }
  const security = container.securityContext;
  if (security?.privileged) throw new Error(`container ${name}: privileged containers are refused on these machines`);
  if (!container.image) throw new Error(`container ${name} has no image`);

  const volumes = new Map((pod.spec?.volumes ?? []).map((v) => [v.name, v]));
  const mounts: BindMount[] = [];
  const devices: DeviceMapping[] = [];
  for (const mount of container.volumeMounts ?? []) {
    const volume = hostPathOf(volumes.get(mount.name), mount.name);
    const source = mount.subPath ? posix.join(volume.path, mount.subPath) : volume.path;
    if (volume.type === 'CharDevice') devices.push({ source, target: mount.mountPath });
    else mounts.push({ source, target: mount.mountPath, readOnly: mount.readOnly ?? false, propagation: PROPAGATION[(mount.mountPropagation ?? 'None') as keyof typeof PROPAGATION] });
  }
  for (const extra of options.extraMounts ?? []) mounts.push({ source: extra.source, target: extra.target, readOnly: extra.readOnly, propagation: 'rprivate' });

  const [command, args] = [container.command, container.args];
  return {
    name: options.containerName,
    image: container.image,
    ...(command ? { entrypoint: command } : {}),
    // With a command and no args, the image's CMD is not used either (Kubernetes and Docker agree).
    ...(args ? { cmd: args } : command ? { cmd: [] } : {}),
    env: Object.fromEntries((container.env ?? []).map((env) => [env.name, fieldValue(pod, options.podUid, env)])),
    labels: { ...options.labels },
    mounts,
    devices,
    capabilities: { add: security?.capabilities?.add ?? [], drop: security?.capabilities?.drop ?? [] },
    noNewPrivileges: security?.allowPrivilegeEscalation === false,
    network: pod.spec?.hostNetwork ? 'host' : 'none',
    pid: pod.spec?.hostPID ? 'host' : 'container',
    cgroupParent: options.cgroupParent,
  };
}
