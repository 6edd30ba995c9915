import { posix } from 'node:path';
import type { Placement, VnfSpec } from '../../api/virtual-network-function.js';

/** Where the pod sees its hugetlbfs mount. */
export const HUGEPAGE_MOUNT = '/dev/hugepages';
/** Where the pod sees the directory of each memif link: one subdirectory per link name. */
export const MEMIF_MOUNT = '/run/memif';
/** memif socket file name inside a link directory. */
export const MEMIF_SOCKET = 'memif.sock';

/** Path of a link's memif socket inside the pod. */
export function memifSocketPath(link: string): string {
  return posix.join(MEMIF_MOUNT, link, MEMIF_SOCKET);
}

/**
 * The DPDK EAL options that match an allocation: the core list, only the allocated PCI devices,
 * the per-VNF hugetlbfs directory, hugepage memory preallocated on the VNF's NUMA node only,
 * a file prefix unique to the VNF, and one net_memif vdev per link. memif sockets are made
 * non-abstract: abstract sockets live in the network namespace, and the two ends of a link are
 * in different pods.
 */
export function ealArgs(spec: VnfSpec, placement: Placement, filePrefix: string): string[] {
  const socketMemMb = Array.from({ length: placement.numaNode + 1 }, (_, numa) =>
    numa === placement.numaNode ? Math.floor(placement.hugepages.bytes / 2 ** 20) : 0,
  );
  const args = ['-l', placement.cpus, '--huge-dir', HUGEPAGE_MOUNT, '--file-prefix', filePrefix, '--socket-mem', socketMemMb.join(',')];
  for (const device of placement.devices) args.push('-a', device.pciAddress);
  spec.links.forEach((link, index) => {
    args.push('--vdev', `net_memif${index},role=${link.role},id=${link.id},socket=${memifSocketPath(link.name)},socket-abstract=no`);
  });
  return args;
}
