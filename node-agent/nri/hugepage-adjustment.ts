/**
 * What the NRI plugin does to a container, decided from plain data: which hugetlb limits a
 * container gets, and the ContainerAdjustment that sets them.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { PageSize } from '../../src/api/common.js';
import type { VirtualNetworkFunction } from '../../src/api/virtual-network-function.js';
import { VNF_CONTAINER_NAME, vnfPodName } from '../../src/controllers/vnf/render-pod.js';
import type { CgroupLayout } from '../host/cgroup-layout.js';
import { HUGETLB_CGROUP_SIZE } from '../host/cgroup-v1.js';
import type { ContainerAdjustment, HugepageLimit } from './nri-api.js';

/** A hugetlb limit a container must get: `bytes` of `pageSize` pages. */
export interface ContainerHugepageLimit {
  pageSize: PageSize;
  bytes: number;
}

/** The container being created, as the runtime describes it (NRI PodSandbox and Container). */
export interface NriContainerTarget {
  namespace: string;
  podName: string;
  podUid: string;
  podLabels: Readonly<Record<string, string>>;
  containerName: string;
}

/**
 * The adjustment that sets exactly `limits` (the runtime keeps kubelet's values for every other
 * page size); undefined when there is nothing to set, so the container is left alone.
 */
export function hugepageAdjustment(limits: readonly ContainerHugepageLimit[]): ContainerAdjustment | undefined {
  if (limits.length === 0) return undefined;
  const hugepageLimits: HugepageLimit[] = limits.map(({ pageSize, bytes }) => ({ page_size: HUGETLB_CGROUP_SIZE[pageSize], limit: bytes }));
  return { linux: { resources: { hugepage_limits: hugepageLimits } } };
}

/**
 * The limits of `wanted` that a running container has lower (e.g. kubelet's 0, when the container
 * was created while the plugin was not registered). A size the container has no limit for is
 * not lower: the runtime set none (containerd's `disable_hugetlb_controller`), and the pod's
 * cgroup bounds it.
 */
export function limitsBelow(wanted: readonly ContainerHugepageLimit[], current: readonly HugepageLimit[]): ContainerHugepageLimit[] {
  return wanted.filter(({ pageSize, bytes }) => {
    const limit = current.find((l) => l.page_size === HUGETLB_CGROUP_SIZE[pageSize]);
    return limit !== undefined && limit.limit < bytes;
  });
}

/**
 * Whether the container runtime writes containers' hugetlb limits on this host, by containerd's
 * own test (internal/cri/opts/spec_linux.go isHugetlbControllerPresent): the unified hierarchy's
 * controller on a pure v2 host, a v1 hugetlb hierarchy otherwise. On a hybrid host whose hugetlb
 * controller is only in v2, kubelet's 0 never reaches a container, and runc's v1 manager refuses
 * to start one whose spec has a limit ("cannot set hugetlb limit: container could not join or
 * create cgroup"): there a limit from the plugin would only break the VNF.
 */
export function runtimeSetsContainerHugetlb(layout: CgroupLayout, cgroupRoot: string): boolean {
  return layout.unified === cgroupRoot ? layout.hugetlb?.version === 2 : layout.hugetlb?.version === 1;
}

/** What the agent knows that decides whether a container is a VNF's DPDK container. */
export interface VnfPodFacts {
  nodeName: string;
  /** See {@link runtimeSetsContainerHugetlb}. */
  runtimeSetsHugetlb: boolean;
  /** The VNFs of the target's namespace in the agent's cache (placed on this node). */
  vnfs: readonly VirtualNetworkFunction[];
  /** The pod of the target's namespace and name in the agent's cache of VNF pods on this node. */
  pod?: V1Pod;
}

/** The limits for a container, with why, for the log. */
export interface HugepageDecision {
  limits: ContainerHugepageLimit[];
  reason: string;
  /** The VNF whose pod this is, when one matched. */
  vnf?: string;
  /** The container names a VNF's pod but is not the one the agent knows: worth a warning. */
  impostor?: boolean;
}

/**
 * The DPDK container of a VNF placed on this node gets its placement's hugepages as its limit;
 * every other container gets nothing from the agent. Labels prove nothing (anyone who can create
 * a pod can copy them): the pod must have the name the controller gives the VNF's pod, in the
 * VNF's namespace, be placed here, and be the very pod (UID) the agent knows as the VNF's own,
 * owned by it.
 */
export function vnfHugepageLimits(target: NriContainerTarget, facts: VnfPodFacts): HugepageDecision {
  if (target.containerName !== VNF_CONTAINER_NAME) return { limits: [], reason: `container ${target.containerName} is not a VNF's DPDK container` };
  const vnf = facts.vnfs.find((v) => v.metadata.namespace === target.namespace && vnfPodName(v.metadata.name!) === target.podName);
  if (!vnf) return { limits: [], reason: `no VNF placed on ${facts.nodeName} has pod ${target.namespace}/${target.podName}` };
  const name = `${target.namespace}/${vnf.metadata.name}`;
  const placement = vnf.status?.placement;
  if (placement?.node !== facts.nodeName) return { limits: [], vnf: name, reason: `VNF ${name} is not placed on ${facts.nodeName}` };
  const { pod } = facts;
  const owned = pod?.metadata?.ownerReferences?.some((owner) => owner.uid === vnf.metadata.uid) ?? false;
  if (pod?.metadata?.uid !== target.podUid || pod.spec?.nodeName !== facts.nodeName || !owned) {
    return { limits: [], vnf: name, impostor: true, reason: `pod ${target.podUid} is not the pod of VNF ${name} the agent knows on ${facts.nodeName}` };
  }
  if (!facts.runtimeSetsHugetlb) {
    return { limits: [], vnf: name, reason: `the container runtime sets no container hugetlb limits on ${facts.nodeName} (no hugetlb controller in its cgroup hierarchy), kubelet's included` };
  }
  return { limits: [{ pageSize: placement.hugepages.pageSize, bytes: placement.hugepages.bytes }], vnf: name, reason: `the DPDK container of VNF ${name}` };
}
