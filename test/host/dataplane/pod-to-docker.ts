/**
 * One container of a rendered pod as `docker run` arguments, the way kubelet hands a container
 * to its runtime: every hostPath volume it mounts becomes a bind mount at its mountPath (a subPath
 * names a file or directory inside the volume), CharDevice volumes become devices, the
 * securityContext's capabilities become --cap-drop/--cap-add, the environment is passed as
 * rendered (fieldRefs resolved against the pod), and command/args keep Kubernetes' meaning
 * (command replaces the image's entrypoint, args its CMD). Pure, so it is tested without Docker.
 *
 * What kubelet would do differently: the pod's network namespace is a sandbox of its own here
 * (`--network none`: loopback only), and the container's cgroup goes under the pod cgroup that the
 * caller names (`--cgroup-parent`), as kubelet's cgroupfs driver lays it out. An app container
 * without the PCI device mask is refused: EAL would probe the machine's own NICs.
 */
import type { V1Container, V1EnvVar, V1Pod, V1Volume } from '@kubernetes/client-node';
import { posix } from 'node:path';

/** Where the pod mounts the agent's PCI device mask. */
const PCI_MASK_TARGET = '/sys/bus/pci/devices';

/** A bind mount that is not in the pod, and why the test needs it. */
export interface ExtraBindMount {
  source: string;
  target: string;
  readOnly: boolean;
  /** Why it is there: every extra mount is a departure from the rendered pod. */
  reason: string;
}

/** How to run one container of a pod. */
export interface DockerRunOptions {
  /** The docker container's name. */
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

/** `--mount` of a bind mount; its CSV syntax has no escape for commas. */
function bindMount(source: string, target: string, readOnly: boolean | undefined): string {
  if (source.includes(',') || target.includes(',')) throw new Error(`a bind mount path cannot hold a comma: ${source} -> ${target}`);
  return `type=bind,source=${source},target=${target}${readOnly ? ',readonly' : ''}`;
}

function hostPathOf(volume: V1Volume | undefined, name: string): { path: string; type: string } {
  if (!volume) throw new Error(`volumeMount ${name} names no volume of the pod`);
  if (!volume.hostPath) throw new Error(`volume ${name}: only hostPath volumes can be run here, not ${Object.keys(volume).filter((k) => k !== 'name').join(', ')}`);
  return { path: volume.hostPath.path, type: volume.hostPath.type ?? '' };
}

/** The arguments after `docker run` that run container `name` of `pod`. */
export function dockerRunArgs(pod: V1Pod, name: string, options: DockerRunOptions): string[] {
  const container = podContainer(pod, name);
  // Without the mask EAL probes every PCI device it sees, the machine's own NICs included.
  const isAppContainer = (pod.spec?.containers ?? []).includes(container);
  if (isAppContainer && !(container.volumeMounts ?? []).some((m) => m.mountPath === PCI_MASK_TARGET)) {
    throw new Error(`container ${name}: refusing to run a VNF container without its PCI device mask at ${PCI_MASK_TARGET}`);
  }
  const volumes = new Map((pod.spec?.volumes ?? []).map((v) => [v.name, v]));
  const args = ['--name', options.containerName, '--network', 'none', '--cgroup-parent', options.cgroupParent];
  for (const [key, value] of Object.entries(options.labels ?? {})) args.push('--label', `${key}=${value}`);

  const security = container.securityContext;
  for (const capability of security?.capabilities?.drop ?? []) args.push('--cap-drop', capability);
  for (const capability of security?.capabilities?.add ?? []) args.push('--cap-add', capability);
  if (security?.privileged) throw new Error(`container ${name}: privileged containers are refused on these machines`);
  if (security?.allowPrivilegeEscalation === false) args.push('--security-opt', 'no-new-privileges');

  for (const mount of container.volumeMounts ?? []) {
    const volume = hostPathOf(volumes.get(mount.name), mount.name);
    const source = mount.subPath ? posix.join(volume.path, mount.subPath) : volume.path;
    if (volume.type === 'CharDevice') {
      args.push('--device', `${source}:${mount.mountPath}`);
      continue;
    }
    args.push('--mount', bindMount(source, mount.mountPath, mount.readOnly));
  }
  for (const extra of options.extraMounts ?? []) {
    args.push('--mount', bindMount(extra.source, extra.target, extra.readOnly));
  }
  for (const env of container.env ?? []) args.push('--env', `${env.name}=${fieldValue(pod, options.podUid, env)}`);

  // Kubernetes: command replaces ENTRYPOINT, args replace CMD. Docker takes one entrypoint word.
  const [entrypoint, ...commandRest] = container.command ?? [];
  if (entrypoint !== undefined) args.push('--entrypoint', entrypoint);
  if (!container.image) throw new Error(`container ${name} has no image`);
  args.push(container.image, ...commandRest, ...(container.args ?? []));
  return args;
}
