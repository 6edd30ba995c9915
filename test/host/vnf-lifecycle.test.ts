import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { posix } from 'node:path';
import { READY_FILE } from '../../src/api/host-paths.js';
import { HostStepError } from '../../node-agent/host-steps.js';
import { createNodeHost, type NodeHost } from '../../node-agent/host/node-host.js';
import { mountAt } from '../../node-agent/host/mounts.js';
import { JournalStore } from '../../node-agent/journal.js';
import { prepareVnf } from '../../node-agent/prepare.js';
import { journalStepContext } from '../../node-agent/recover.js';
import { teardownVnf } from '../../node-agent/teardown.js';
import { planVnfHost, type VnfHostPlan } from '../../node-agent/validate.js';
import { FakePciKernel } from './helpers/fake-pci-kernel.js';
import {
  buildHugemap,
  execFileAsync,
  ExtraHugepages,
  FakeKubeletPod,
  HELPERS,
  lockHugepages,
  makeVfioNodes,
  mountPointsUnder,
  requireRoot,
  runInContainer,
  TempTree,
} from './helpers/host-fixtures.js';
import { placedVnf } from './helpers/vnf-fixture.js';

const TWO_MI = 2 << 20;
const onlineCpus = readFileSync('/sys/devices/system/cpu/online', 'utf8').trim();
const VNF_CPU = onlineCpus === '0' ? 0 : 1;

/** Asserts that nothing of the VNF is left on the host. */
export function expectNothingLeft(stateRoot: string, plan: VnfHostPlan): void {
  expect(mountPointsUnder(stateRoot)).toEqual([]);
  expect(existsSync(plan.paths.root)).toBe(false);
  for (const dir of plan.memifDirs) expect(existsSync(dir)).toBe(false);
  expect(existsSync(posix.join(stateRoot, 'journal', `${plan.uid}.jsonl`))).toBe(false);
}

describe('VNF preparation and teardown on the real kernel', () => {
  let tree: TempTree;
  let kernel: FakePciKernel;
  let host: NodeHost;
  const pods: FakeKubeletPod[] = [];

  beforeAll(async () => {
    requireRoot();
    tree = new TempTree('nfv-lifecycle');
    kernel = new FakePciKernel(tree.path('sys'));
    kernel.addDriver('vfio-pci');
    kernel.addDevice({ address: '0000:3b:00.0', vendor: '8086', device: '159b', pciClass: '0x020000', numaNode: 0, iommuGroup: 40, driver: 'ice' });
    kernel.addDevice({ address: '0000:3b:00.1', vendor: '8086', device: '159b', pciClass: '0x020000', numaNode: 0, iommuGroup: 41, driver: 'ice' });
    const dev = tree.path('dev');
    await makeVfioNodes(dev, [40]);
    host = createNodeHost({ sysfs: kernel.sysfs, dev }, { hostMountInfo: '/dev/null' });
  });

  afterAll(async () => {
    for (const pod of pods) await pod.destroy();
    kernel?.destroy();
    await tree?.cleanup();
  });

  it('prepares host paths, driver and cgroups, signals the pod, follows a replaced pod, and tears everything down', async () => {
    const stateRoot = tree.path('state');
    const vnf = placedVnf({
      stateRoot,
      cpus: String(VNF_CPU),
      devices: [
        { interface: 'uplink', pciAddress: '0000:3b:00.0', iommuGroup: 40, driver: 'vfio-pci' },
        { interface: 'mgmt', pciAddress: '0000:3b:00.1', iommuGroup: 41, driver: 'kernel' },
      ],
      links: [{ name: 'chain', peer: 'router', role: 'server', id: 0 }],
    });
    const plan = planVnfHost(vnf, { stateRoot, nodeName: 'worker-1' });
    const store = new JournalStore(stateRoot);
    const journal = store.journal(plan.uid);
    const context = journalStepContext(store, plan.uid);

    expect(await prepareVnf(plan, journal, host, context)).toEqual({ stage: 'host' });
    const mount = mountAt(await host.mounter.mounts(), plan.paths.hugepages)!;
    expect(mount.superOptions).toEqual(expect.arrayContaining(['pagesize=2M', `size=${4 << 20}`]));
    expect(readdirSync(plan.paths.pciDevices)).toEqual(['0000:3b:00.0', '0000:3b:00.1']);
    expect(readlinkSync(posix.join(plan.paths.pciDevices, '0000:3b:00.0'))).toBe('../../../devices/pci0000:00/0000:3b:00.0');
    for (const file of ['online', 'present', 'possible']) expect(readFileSync(posix.join(plan.paths.cpuMask, file), 'utf8')).toBe(`${VNF_CPU}\n`);
    expect(readdirSync(plan.paths.emptyDir)).toEqual([]);
    expect(existsSync(`${stateRoot}/memif/edge/fw.router`)).toBe(true);
    expect(kernel.driverOf('0000:3b:00.0')).toBe('vfio-pci');
    expect(kernel.driverOf('0000:3b:00.1')).toBe('ice');
    expect(existsSync(posix.join(plan.paths.readySignal, READY_FILE))).toBe(false);

    const pod = await FakeKubeletPod.create('systemd');
    pods.push(pod);
    expect(await prepareVnf(plan, journal, host, context, { podUid: pod.podUid })).toEqual({ stage: 'ready', podUid: pod.podUid });
    expect(readFileSync(posix.join(plan.paths.readySignal, READY_FILE), 'utf8')).toBe(pod.podUid);
    expect(readFileSync(posix.join(pod.podDir('cpuset'), 'cpuset.cpus'), 'utf8').trim()).toBe(String(VNF_CPU));
    expect(readFileSync(posix.join(pod.podDir('hugetlb'), `hugetlb.2MB.${pod.layout.hugetlb!.version === 2 ? 'max' : 'limit_in_bytes'}`), 'utf8').trim()).toBe(String(4 << 20));

    // Preparing again changes nothing and journals nothing, and keeps the very files the pod
    // mounts with subPath (kubelet bind-mounts them by inode at each container start).
    const lines = readFileSync(journal.path, 'utf8');
    const maskInodes = () => ['online', 'present', 'possible'].map((file) => statSync(posix.join(plan.paths.cpuMask, file)).ino);
    const inodes = maskInodes();
    await prepareVnf(plan, journal, host, context, { podUid: pod.podUid });
    expect(readFileSync(journal.path, 'utf8')).toBe(lines);
    expect(maskInodes()).toEqual(inodes);

    // The pod is replaced: the ready signal names the new pod only.
    const replacement = await FakeKubeletPod.create('cgroupfs');
    pods.push(replacement);
    await prepareVnf(plan, journal, host, context, { podUid: replacement.podUid });
    expect(readFileSync(posix.join(plan.paths.readySignal, READY_FILE), 'utf8')).toBe(replacement.podUid);

    await execFileAsync('fallocate', ['-l', String(TWO_MI), posix.join(plan.paths.hugepages, 'rtemap_0')]).catch(() => undefined);
    await teardownVnf(journal, host, context);
    expectNothingLeft(stateRoot, plan);
    expect(kernel.driverOf('0000:3b:00.0')).toBe('ice');
    expect(kernel.overrideOf('0000:3b:00.0')).toBe('(null)');
    await teardownVnf(journal, host, context); // idempotent
  });

  it('keeps a memif directory while the VNF at the other end is still prepared', async () => {
    const stateRoot = tree.path('state-memif');
    const store = new JournalStore(stateRoot);
    const server = planVnfHost(placedVnf({ stateRoot, name: 'fw', links: [{ name: 'l', peer: 'rt', role: 'server', id: 0 }] }), { stateRoot, nodeName: 'worker-1' });
    const client = planVnfHost(placedVnf({ stateRoot, name: 'rt', links: [{ name: 'l', peer: 'fw', role: 'client', id: 0 }] }), { stateRoot, nodeName: 'worker-1' });
    expect(server.memifDirs).toEqual(client.memifDirs);
    for (const plan of [server, client]) await prepareVnf(plan, store.journal(plan.uid), host, journalStepContext(store, plan.uid));
    await teardownVnf(store.journal(server.uid), host, journalStepContext(store, server.uid));
    expect(existsSync(server.memifDirs[0]!)).toBe(true);
    await teardownVnf(store.journal(client.uid), host, journalStepContext(store, client.uid));
    expectNothingLeft(stateRoot, client);
    expectNothingLeft(stateRoot, server);
  });

  it('reports DeviceInUseByHost and still tears down what it did', async () => {
    const stateRoot = tree.path('state-refused');
    kernel.addDevice({ address: '0000:5e:00.0', vendor: '144d', device: 'a808', pciClass: '0x010802', numaNode: 0, iommuGroup: 50, driver: 'nvme', disk: { name: 'nvme0n1', dev: '259:0' } });
    const mountInfo = tree.path('mountinfo');
    await import('node:fs/promises').then((fs) => fs.writeFile(mountInfo, '30 1 259:0 / /var/lib/containerd rw - xfs /dev/nvme0n1 rw\n'));
    const strictHost = createNodeHost({ sysfs: kernel.sysfs, dev: tree.path('dev') }, { hostMountInfo: mountInfo });
    const plan = planVnfHost(placedVnf({ stateRoot, devices: [{ interface: 'x', pciAddress: '0000:5e:00.0', iommuGroup: 50, driver: 'vfio-pci' }] }), { stateRoot, nodeName: 'worker-1' });
    const store = new JournalStore(stateRoot);
    const failure = prepareVnf(plan, store.journal(plan.uid), strictHost, journalStepContext(store, plan.uid));
    await expect(failure).rejects.toBeInstanceOf(HostStepError);
    await expect(failure).rejects.toMatchObject({ reason: 'DeviceInUseByHost', message: expect.stringContaining('nvme0n1 is mounted at /var/lib/containerd') });
    expect(kernel.driverOf('0000:5e:00.0')).toBe('nvme');
    await teardownVnf(store.journal(plan.uid), strictHost, journalStepContext(store, plan.uid));
    expectNothingLeft(stateRoot, plan);
    expect(kernel.driverOf('0000:5e:00.0')).toBe('nvme');
  });
});

describe('isolation seen from inside the pod (real kernel, private mount namespace)', () => {
  let tree: TempTree;
  let pod: FakeKubeletPod | undefined;
  let hugemap: string;
  const pages = new ExtraHugepages();
  let unlock: () => void = () => undefined;

  beforeAll(async () => {
    requireRoot();
    unlock = await lockHugepages();
    tree = new TempTree('nfv-isolation');
    hugemap = await buildHugemap(tree.dir);
    pages.ensureFree(4);
  });

  afterAll(async () => {
    try {
      await pod?.destroy();
      await tree?.cleanup();
      pages.cleanup();
    } finally {
      unlock();
    }
  });

  it('a process of the pod sees only its CPUs and PCI device, cannot run elsewhere, and cannot take more hugepages', async () => {
    if (onlineCpus === '0') throw new Error('this machine has a single CPU: CPU isolation cannot be shown here');
    // A real device is only *read* through the mask (driver "kernel": no binding, ever).
    const allowedDevice = readdirSync('/sys/bus/pci/devices').sort().at(-1)!;
    const stateRoot = tree.path('state');
    const host = createNodeHost({ dev: tree.path('dev') });
    const plan = planVnfHost(
      placedVnf({ stateRoot, cpus: String(VNF_CPU), devices: [{ interface: 'uplink', pciAddress: allowedDevice, iommuGroup: -1, driver: 'kernel' }] }),
      { stateRoot, nodeName: 'worker-1' },
    );
    pod = await FakeKubeletPod.create('cgroupfs');
    const store = new JournalStore(stateRoot);
    const context = journalStepContext(store, plan.uid);
    await prepareVnf(plan, store.journal(plan.uid), host, context, { podUid: pod.podUid });

    // The pod's mounts, as render-pod.ts asks kubelet for them.
    const allCpus = readdirSync('/sys/devices/system/cpu').filter((e) => /^cpu\d+$/.test(e));
    const mounts = [
      { source: plan.paths.pciDevices, target: '/sys/bus/pci/devices' },
      ...['online', 'present', 'possible'].map((file) => ({ source: posix.join(plan.paths.cpuMask, file), target: `/sys/devices/system/cpu/${file}` })),
      ...allCpus.filter((cpu) => cpu !== `cpu${VNF_CPU}`).map((cpu) => ({ source: plan.paths.emptyDir, target: `/sys/devices/system/cpu/${cpu}` })),
    ];
    const spec = {
      mounts,
      commands: [
        ['taskset', '-c', String(1 - VNF_CPU), 'true'],
        [hugemap, String(4 << 20)],
        [hugemap, String(6 << 20)],
        ['fallocate', '-l', String(4 << 20), posix.join(plan.paths.hugepages, 'fits')],
        ['rm', posix.join(plan.paths.hugepages, 'fits')],
        ['fallocate', '-l', String(6 << 20), posix.join(plan.paths.hugepages, 'too-big')],
      ],
    };
    const inside = await runInContainer(pod, ['unshare', '-m', '--propagation', 'private', '--', process.execPath, posix.join(HELPERS, 'pod-sandbox.mjs'), JSON.stringify(spec)]);
    expect(inside.stderr).toBe('');
    const seen = JSON.parse(inside.stdout);
    console.log(`seen from inside the pod: ${JSON.stringify(seen)}`);
    expect(seen.pciDevices).toEqual([allowedDevice]);
    expect(seen.pciVendors[allowedDevice]).toMatch(/^0x[0-9a-f]{4}$/);
    expect(seen.online).toBe(String(VNF_CPU));
    expect(seen.present).toBe(String(VNF_CPU));
    expect(seen.possible).toBe(String(VNF_CPU));
    expect(seen.cpuDirs[`cpu${1 - VNF_CPU}`]).toBe(0);
    expect(seen.cpuDirs[`cpu${VNF_CPU}`]).toBeGreaterThan(0);
    expect(seen.nproc).toBe('1');
    expect(seen.nprocAll).toBe('1');
    expect(seen.affinity).toBe(String(VNF_CPU));
    const [escape, fits, tooMuch, fitsFile, , tooBigFile] = seen.commands;
    expect(escape.status).not.toBe(0);
    expect(fits.stdout).toBe('ok');
    expect(tooMuch.stdout).toBe('mmap ENOMEM');
    expect(tooBigFile.stderr).toMatch(/No space left on device/);
    expect(fitsFile.status).toBe(0);
    // Nothing the sandbox mounted is visible outside it.
    expect(readdirSync('/sys/bus/pci/devices').length).toBeGreaterThan(1);

    await pod.destroy();
    pod = undefined;
    await import('../../node-agent/teardown.js').then(({ teardownVnf }) => teardownVnf(store.journal(plan.uid), host, context));
    expectNothingLeft(stateRoot, plan);
  });
});
