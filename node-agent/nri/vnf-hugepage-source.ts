import type { V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { VirtualNetworkFunction } from '../../src/api/virtual-network-function.js';
import { detectCgroupLayout } from '../host/cgroup-layout.js';
import { runtimeSetsContainerHugetlb, vnfHugepageLimits, type ContainerHugepageLimit, type NriContainerTarget } from './hugepage-adjustment.js';
import type { HugepageLimitSource } from './nri-plugin.js';

/** What the source reads: the agent's watches of the VNFs placed on its node and their pods. */
export interface VnfCaches {
  nodeName: string;
  /** VNFs of `namespace` placed on this node. */
  vnfsIn(namespace: string): VirtualNetworkFunction[];
  /** The VNF pod `namespace/name` on this node, if the agent has seen it. */
  pod(namespace: string, name: string): V1Pod | undefined;
  /** The host's cgroup mounts (the agent's `NFV_CGROUP_ROOT`): whether the runtime sets hugetlb limits. */
  cgroupRoot: string;
  logger: Logger;
}

/** The source, and whether the container runtime applies container hugetlb limits on this host at all. */
export interface VnfHugepageSource extends HugepageLimitSource {
  runtimeSetsContainerHugetlb(): Promise<boolean>;
}

/**
 * The limits of the DPDK containers of the VNFs placed on this node (see {@link vnfHugepageLimits}).
 * A container that names a VNF's pod but is not the pod the agent knows is logged: either the
 * agent's caches lag, or someone imitates a VNF's pod.
 */
export function vnfHugepageSource(caches: VnfCaches): VnfHugepageSource {
  let runtimeSetsHugetlb: Promise<boolean> | undefined;
  const detect = async (): Promise<boolean> => {
    const sets = runtimeSetsContainerHugetlb(await detectCgroupLayout(caches.cgroupRoot), caches.cgroupRoot);
    if (!sets) caches.logger.info('NRI: the container runtime sets no hugetlb limits on this host\'s containers; VNF containers are left as they are');
    return sets;
  };
  // Detected once; a failed detection is tried again next time.
  const runtimeSets = (): Promise<boolean> =>
    (runtimeSetsHugetlb ??= detect().catch((err: unknown) => {
      runtimeSetsHugetlb = undefined;
      throw err;
    }));
  return {
    runtimeSetsContainerHugetlb: runtimeSets,
    async hugepageLimits(target: NriContainerTarget): Promise<ContainerHugepageLimit[]> {
      const facts = { nodeName: caches.nodeName, runtimeSetsHugetlb: await runtimeSets(), vnfs: caches.vnfsIn(target.namespace), pod: caches.pod(target.namespace, target.podName) };
      const decision = vnfHugepageLimits(target, facts);
      if (decision.impostor) {
        caches.logger.warn({ vnf: decision.vnf, pod: `${target.namespace}/${target.podName}`, podUid: target.podUid }, `NRI: no hugetlb limit for this container: ${decision.reason}`);
      }
      return decision.limits;
    },
  };
}
