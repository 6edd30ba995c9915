import { describe, expect, test } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import type { Placement, VirtualNetworkFunction } from '../../../src/api/virtual-network-function.js';
import { vnfPodName } from '../../../src/controllers/vnf/render-pod.js';
import type { CgroupLayout } from '../../../node-agent/host/cgroup-layout.js';
import {
  hugepageAdjustment,
  limitsBelow,
  runtimeSetsContainerHugetlb,
  vnfHugepageLimits,
  type NriContainerTarget,
  type VnfPodFacts,
} from '../../../node-agent/nri/hugepage-adjustment.js';
import { vnf } from '../../fixtures/vnf.js';

const NODE = 'worker-1';
const MI = 2 ** 20;

function placement(node: string, pageSize: '2Mi' | '1Gi' = '2Mi', bytes = 4 * MI): Placement {
  const root = '/var/lib/nfv-operator/vnfs/x';
  return {
    node,
    numaNode: 0,
    cpus: '2-3',
    hugepages: { pool: 'gold', pageSize, bytes },
    devices: [],
    hostPaths: { root, hugepages: `${root}/hugepages`, pciDevices: `${root}/pci`, cpuMask: `${root}/cpu`, emptyDir: `${root}/empty`, readySignal: `${root}/signal` },
  };
}

const placed = (name: string, at: Placement): VirtualNetworkFunction => vnf(name, { status: { podName: vnfPodName(name), placement: at, conditions: [] } });
const l3fwd = placed('l3fwd', placement(NODE));
const gold1g = placed('gold-1g', placement(NODE, '1Gi', 2 * 1024 * MI));
const elsewhere = placed('elsewhere', placement('worker-2'));

/** The VNF's pod as the agent's cache holds it: on the node, owned by the VNF. */
function podOf(owner: VirtualNetworkFunction, changes: { uid?: string; nodeName?: string; ownerUid?: string | null } = {}): V1Pod {
  return {
    metadata: {
      name: vnfPodName(owner.metadata.name!),
      namespace: 'default',
      uid: changes.uid ?? `pod-of-${owner.metadata.name}`,
      ownerReferences: changes.ownerUid === null ? [] : [{ apiVersion: 'nfv.dev/v1alpha1', kind: 'VirtualNetworkFunction', name: owner.metadata.name!, uid: changes.ownerUid ?? owner.metadata.uid!, controller: true }],
    },
    spec: { nodeName: changes.nodeName ?? NODE, containers: [] },
  };
}

function target(owner: VirtualNetworkFunction, changes: Partial<NriContainerTarget> = {}): NriContainerTarget {
  return {
    namespace: 'default',
    podName: vnfPodName(owner.metadata.name!),
    podUid: `pod-of-${owner.metadata.name}`,
    podLabels: { 'nfv.dev/vnf': owner.metadata.name! },
    containerName: 'vnf',
    ...changes,
  };
}

const facts = (pod: V1Pod | undefined, vnfs = [l3fwd, gold1g, elsewhere], runtimeSetsHugetlb = true): VnfPodFacts => ({ nodeName: NODE, runtimeSetsHugetlb, vnfs, ...(pod ? { pod } : {}) });

describe('vnfHugepageLimits: which containers get a hugetlb limit', () => {
  test.each([
    { name: "the DPDK container of a VNF placed here: its placement's 2Mi pages", target: target(l3fwd), facts: facts(podOf(l3fwd)), limits: [{ pageSize: '2Mi', bytes: 4 * MI }] },
    { name: 'with 1Gi pages: its 1Gi pages', target: target(gold1g), facts: facts(podOf(gold1g)), limits: [{ pageSize: '1Gi', bytes: 2 * 1024 * MI }] },
    { name: 'the init gate of the same pod: nothing', target: target(l3fwd, { containerName: 'wait-for-node-agent' }), facts: facts(podOf(l3fwd)), limits: [] },
    { name: 'a pod whose name is no VNF pod name, labels copied: nothing', target: target(l3fwd, { podName: 'my-pod' }), facts: facts(podOf(l3fwd)), limits: [] },
    { name: 'the VNF pod name in another namespace: nothing', target: target(l3fwd, { namespace: 'other' }), facts: facts(podOf(l3fwd)), limits: [] },
    { name: 'a VNF placed on another node: nothing', target: target(elsewhere), facts: facts(podOf(elsewhere)), limits: [] },
    { name: 'a VNF not placed yet: nothing', target: target(l3fwd), facts: facts(podOf(l3fwd), [vnf('l3fwd', { uid: l3fwd.metadata.uid! })]), limits: [] },
    { name: 'no VNF known (cache empty): nothing', target: target(l3fwd), facts: facts(podOf(l3fwd), []), limits: [] },
    { name: 'the pod is not in the agent\'s cache: nothing', target: target(l3fwd), facts: facts(undefined), limits: [] },
    { name: 'another pod of the same name (a different UID): nothing', target: target(l3fwd, { podUid: 'impostor' }), facts: facts(podOf(l3fwd)), limits: [] },
    { name: 'the known pod bound to another node: nothing', target: target(l3fwd), facts: facts(podOf(l3fwd, { nodeName: 'worker-2' })), limits: [] },
    { name: 'the pod not owned by the VNF: nothing', target: target(l3fwd), facts: facts(podOf(l3fwd, { ownerUid: null })), limits: [] },
    { name: 'the pod owned by another VNF: nothing', target: target(l3fwd), facts: facts(podOf(l3fwd, { ownerUid: gold1g.metadata.uid! })), limits: [] },
    { name: 'the DPDK container where the runtime sets no hugetlb limits: nothing', target: target(l3fwd), facts: facts(podOf(l3fwd), undefined, false), limits: [] },
  ])('$name', ({ target: t, facts: f, limits }) => {
    expect(vnfHugepageLimits(t, f).limits).toEqual(limits);
  });

  test('a pod that imitates a VNF\'s pod is named, for the agent\'s warning; other refusals are not', () => {
    expect(vnfHugepageLimits(target(l3fwd, { podUid: 'impostor' }), facts(podOf(l3fwd)))).toEqual({
      limits: [],
      vnf: 'default/l3fwd',
      impostor: true,
      reason: `pod impostor is not the pod of VNF default/l3fwd the agent knows on ${NODE}`,
    });
    expect(vnfHugepageLimits(target(l3fwd, { containerName: 'sidecar' }), facts(podOf(l3fwd))).vnf).toBeUndefined();
    expect(vnfHugepageLimits(target(l3fwd), facts(podOf(l3fwd), undefined, false)).impostor).toBeUndefined();
  });
});

describe('runtimeSetsContainerHugetlb: containerd\'s isHugetlbControllerPresent', () => {
  const ROOT = '/sys/fs/cgroup';
  const v1 = (controller: string) => ({ version: 1 as const, path: `${ROOT}/${controller}` });
  const unifiedAt = (path: string) => ({ version: 2 as const, path });
  test.each<{ name: string; layout: CgroupLayout; sets: boolean }>([
    { name: 'pure v2 with hugetlb', layout: { unified: ROOT, hugetlb: unifiedAt(ROOT), cpuset: unifiedAt(ROOT) }, sets: true },
    { name: 'pure v2 without hugetlb', layout: { unified: ROOT, cpuset: unifiedAt(ROOT) }, sets: false },
    { name: 'v1 with a hugetlb hierarchy', layout: { hugetlb: v1('hugetlb'), cpuset: v1('cpuset') }, sets: true },
    { name: 'hybrid with hugetlb in v1', layout: { unified: `${ROOT}/unified`, hugetlb: v1('hugetlb') }, sets: true },
    { name: 'hybrid with hugetlb only in v2 (this development machine): runc would fail the container', layout: { unified: `${ROOT}/unified`, hugetlb: unifiedAt(`${ROOT}/unified`) }, sets: false },
    { name: 'v1 without hugetlb', layout: { cpuset: v1('cpuset') }, sets: false },
  ])('$name', ({ layout, sets }) => {
    expect(runtimeSetsContainerHugetlb(layout, ROOT)).toBe(sets);
  });
});

describe('hugepageAdjustment', () => {
  test.each([
    { name: 'no limits: no adjustment, the container is left alone', limits: [], adjustment: undefined },
    {
      name: '2Mi: page size as the hugetlb files name it, limit in bytes',
      limits: [{ pageSize: '2Mi' as const, bytes: 4 * MI }],
      adjustment: { linux: { resources: { hugepage_limits: [{ page_size: '2MB', limit: 4 * MI }] } } },
    },
    {
      name: 'those sizes only: kubelet keeps the others',
      limits: [{ pageSize: '1Gi' as const, bytes: 1024 * MI }],
      adjustment: { linux: { resources: { hugepage_limits: [{ page_size: '1GB', limit: 1024 * MI }] } } },
    },
  ])('$name', ({ limits, adjustment }) => {
    expect(hugepageAdjustment(limits)).toEqual(adjustment);
  });
});

describe('limitsBelow: running containers created without the agent', () => {
  const wanted = [{ pageSize: '2Mi' as const, bytes: 4 * MI }];
  test.each([
    { name: "kubelet's 0: below", current: [{ page_size: '2MB', limit: 0 }, { page_size: '1GB', limit: 0 }], below: wanted },
    { name: 'the allocation: fine', current: [{ page_size: '2MB', limit: 4 * MI }], below: [] },
    { name: 'more than the allocation: fine', current: [{ page_size: '2MB', limit: 8 * MI }], below: [] },
    { name: 'no limit for the size (runtime sets none, the pod cgroup bounds it): fine', current: [{ page_size: '1GB', limit: 0 }], below: [] },
  ])('$name', ({ current, below }) => {
    expect(limitsBelow(wanted, current)).toEqual(below);
  });

  test('a container that wants nothing is never below', () => {
    expect(limitsBelow([], [{ page_size: '2MB', limit: 0 }])).toEqual([]);
  });
});
