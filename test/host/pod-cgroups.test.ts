import { mkdirSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { detectCgroupLayout, findPodCgroup } from '../../node-agent/host/cgroup-layout.js';
import { PodCgroupMissingError, PodCgroups } from '../../node-agent/host/pod-cgroups.js';
import {
  buildHugemap,
  ExtraHugepages,
  FakeKubeletPod,
  lockHugepages,
  requireRoot,
  restoreUnifiedSubtreeControl,
  runInContainer,
  TempTree,
  unifiedSubtreeControl,
} from './helpers/host-fixtures.js';

const TWO_MI = 2 << 20;
const onlineCpus = () => readFileSync('/sys/devices/system/cpu/online', 'utf8').trim();

describe('pod cgroup discovery', () => {
  let tree: TempTree;
  beforeAll(() => (tree = new TempTree('nfv-cgroup-tree')));
  afterAll(() => tree.cleanup());

  it.each([
    ['cgroupfs', 'kubepods/burstable/pod0b7e2c1a-9d6f-4e55-8a31-2f0c7d9e1b42'],
    ['cgroupfs guaranteed', 'kubepods/pod0b7e2c1a-9d6f-4e55-8a31-2f0c7d9e1b42'],
    ['systemd', 'kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0b7e2c1a_9d6f_4e55_8a31_2f0c7d9e1b42.slice'],
    ['systemd guaranteed', 'kubepods.slice/kubepods-pod0b7e2c1a_9d6f_4e55_8a31_2f0c7d9e1b42.slice'],
  ])('finds the %s layout', async (_name, relative) => {
    const root = tree.path(_name.replace(' ', '-'));
    mkdirSync(posix.join(root, 'kubepods/burstable/pod11111111-2222-3333-4444-555555555555/ctr'), { recursive: true });
    mkdirSync(posix.join(root, relative, 'ctr'), { recursive: true });
    expect(await findPodCgroup(root, '0b7e2c1a-9d6f-4e55-8a31-2f0c7d9e1b42')).toBe(posix.join(root, relative));
    expect(await findPodCgroup(root, '99999999-2222-3333-4444-555555555555')).toBeUndefined();
  });

  it('detects a pure cgroup v2 tree', async () => {
    const root = tree.path('v2');
    mkdirSync(root, { recursive: true });
    await import('node:fs/promises').then((fs) => fs.writeFile(posix.join(root, 'cgroup.controllers'), 'cpuset cpu io memory hugetlb pids\n'));
    expect(await detectCgroupLayout(root)).toEqual({
      unified: root,
      cpuset: { version: 2, path: root },
      hugetlb: { version: 2, path: root },
      devices: { version: 2, path: root },
    });
  });
});

describe('PodCgroups on the real kernel', () => {
  let tree: TempTree;
  let pod: FakeKubeletPod | undefined;
  let subtreeBefore: string | undefined;
  let hugemap: string;
  const pages = new ExtraHugepages();
  let unlock: () => void = () => undefined;

  beforeAll(async () => {
    requireRoot();
    unlock = await lockHugepages();
    tree = new TempTree('nfv-cgroups');
    hugemap = await buildHugemap(tree.dir);
    pages.ensureFree(4);
    const layout = await detectCgroupLayout('/sys/fs/cgroup');
    subtreeBefore = unifiedSubtreeControl(layout);
  });

  afterEach(async () => {
    await pod?.destroy();
    pod = undefined;
  });

  afterAll(async () => {
    if (pod) await pod.destroy();
    restoreUnifiedSubtreeControl(await detectCgroupLayout('/sys/fs/cgroup'), subtreeBefore);
    pages.cleanup();
    unlock();
    await tree?.cleanup();
  });

  it('reports which hierarchy carries each controller on this host', async () => {
    const layout = await detectCgroupLayout('/sys/fs/cgroup');
    console.log(`cgroup layout of this host: ${JSON.stringify(layout)}`);
    expect(layout.cpuset).toBeDefined();
    expect(layout.hugetlb).toBeDefined();
  });

  it('waits (PodCgroupMissingError) until kubelet has made the pod cgroup', async () => {
    await expect(new PodCgroups('/sys/fs/cgroup').locate('0b7e2c1a-9d6f-4e55-8a31-2f0c7d9e1b42')).rejects.toBeInstanceOf(PodCgroupMissingError);
  });

  it.each(['cgroupfs', 'systemd'] as const)('fences CPUs and hugepages of a %s pod', async (style) => {
    pod = await FakeKubeletPod.create(style);
    const cpus = onlineCpus() === '0' ? [0] : [1];
    const applied = await new PodCgroups('/sys/fs/cgroup').apply(pod.podUid, {
      cpus,
      mems: [0],
      pageSize: '2Mi',
      hugepageBytes: TWO_MI,
    });
    expect(applied.cgroups.cpuset).toBe(pod.podDir('cpuset'));

    // cpuset: the container process can only run on the VNF's CPUs, and cannot move off them.
    const affinity = await runInContainer(pod, ['grep', 'Cpus_allowed_list', '/proc/self/status']);
    expect(affinity.stdout).toMatch(new RegExp(`:\\s*${cpus[0]}$`));
    if (onlineCpus() !== '0') {
      const escape = await runInContainer(pod, ['taskset', '-c', '0', 'true']);
      expect(escape.code).not.toBe(0);
      expect(escape.stderr).toMatch(/Invalid argument|failed to set pid/);
    }

    // hugetlb: one page is allowed, a second one is refused at mmap time (rsvd) or at fault.
    expect((await runInContainer(pod, [hugemap, String(TWO_MI)])).stdout).toBe('ok');
    const beyond = await runInContainer(pod, [hugemap, String(2 * TWO_MI)]);
    if (applied.hugetlbReservationLimit) {
      expect(beyond.stdout).toBe('mmap ENOMEM');
    } else {
      console.warn('this kernel has no hugetlb rsvd limit: over-allocation is stopped by SIGBUS at fault instead of ENOMEM at mmap');
      expect(beyond.code).not.toBe(0);
    }
  });
});
