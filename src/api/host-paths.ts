import { posix } from 'node:path';
import type { HostPaths } from './virtual-network-function.js';

/** Default directory of everything the node agent prepares on a host. */
export const DEFAULT_STATE_ROOT = '/var/lib/nfv-operator';

const UID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Host paths of one VNF, derived from its UID only: the controller renders them into the pod
 * before the agent has prepared anything, and a restarted agent finds them again. UIDs are
 * validated so a path can never leave the state root.
 */
export function vnfHostPaths(stateRoot: string, uid: string): HostPaths {
  if (!UID.test(uid)) throw new RangeError(`"${uid}" is not a Kubernetes UID`);
  const root = posix.join(stateRoot, 'vnfs', uid);
  return {
    root,
    hugepages: posix.join(root, 'hugepages'),
    pciDevices: posix.join(root, 'pci-devices'),
    cpuMask: posix.join(root, 'cpu'),
    emptyDir: posix.join(root, 'empty'),
    readySignal: posix.join(root, 'signal'),
    memif: posix.join(stateRoot, 'memif'),
  };
}

/** File in {@link HostPaths.readySignal} that holds the pod UID once the node is prepared. */
export const READY_FILE = 'ready';

/**
 * Directory of one memif link's socket, shared by its two ends only: named after the namespace and
 * the server and client VNFs, so both ends compute the same path from their own spec.
 * `memifRoot` is {@link HostPaths.memif}.
 */
export function memifLinkDir(memifRoot: string, namespace: string, server: string, client: string): string {
  return posix.join(memifRoot, namespace, `${server}.${client}`);
}
