/**
 * Crash safety: the agent's host side runs in a child process that is killed with SIGKILL after
 * every single journal record (between any two host changes), and at timed points inside steps;
 * a fresh agent then recovers from the journal. Nothing may leak (mounts, directories, driver
 * bindings, journal) and the VNF must converge to prepared or to torn down.
 *
 * The child runs the step runner bundled into one JavaScript file (esbuild, the compiler tsx uses)
 * rather than through tsx: the same sources, but it starts in a second instead of seven under the
 * pure cgroup v2 VM's emulated CPU (test/vm), where this file starts about 75 of them.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { READY_FILE } from '../../src/api/host-paths.js';
import { createNodeHost, type HostRoots, type NodeHost } from '../../node-agent/host/node-host.js';
import { mountAt } from '../../node-agent/host/mounts.js';
import { JournalStore } from '../../node-agent/journal.js';
import { prepareVnf } from '../../node-agent/prepare.js';
import { journalStepContext, recoverJournals } from '../../node-agent/recover.js';
import { planVnfHost, type VnfHostPlan } from '../../node-agent/validate.js';
import { FakePciKernel } from './helpers/fake-pci-kernel.js';
import { execFileAsync, FakeKubeletPod, HELPERS, makeVfioNodes, mountPointsUnder, requireRoot, TempTree } from './helpers/host-fixtures.js';
import type { RunnerRequest } from './helpers/step-runner.js';
import { placedVnf } from './helpers/vnf-fixture.js';

const LONG = 300_000;

const VNF_CPU = readFileSync('/sys/devices/system/cpu/online', 'utf8').trim() === '0' ? 0 : 1;

interface RunnerExit {
  signal: NodeJS.Signals | null;
  code: number | null;
  stdout: string;
  stderr: string;
}

const ESBUILD = posix.resolve(HELPERS, '../../../node_modules/.bin/esbuild');

/** Bundles helpers/step-runner.ts and what it imports into `outfile`. */
async function bundleStepRunner(outfile: string): Promise<void> {
  await execFileAsync(ESBUILD, [posix.join(HELPERS, 'step-runner.ts'), '--bundle', '--platform=node', '--format=esm', `--outfile=${outfile}`, '--log-level=warning']);
}

function runRunner(runner: string, request: RunnerRequest): Promise<RunnerExit> {
  return new Promise((resolve) => {
    execFile(process.execPath, [runner, JSON.stringify(request)], { timeout: 60_000 }, (err, stdout, stderr) => {
      const failed = err as (Error & { code?: number; signal?: NodeJS.Signals }) | null;
      resolve({ signal: failed?.signal ?? null, code: failed ? (typeof failed.code === 'number' ? failed.code : null) : 0, stdout, stderr });
    });
  });
}

describe('crash safety: SIGKILL at every step of preparation and teardown', () => {
  let tree: TempTree;
  let kernel: FakePciKernel;
  let pod: FakeKubeletPod;
  let roots: HostRoots;
  let host: NodeHost;
  let runner: string;
  let counter = 0;

  beforeAll(async () => {
    requireRoot();
    tree = new TempTree('nfv-crash');
    runner = tree.path('step-runner.mjs');
    await bundleStepRunner(runner);
    kernel = new FakePciKernel(tree.path('sys'));
    kernel.addDriver('vfio-pci');
    kernel.addDevice({ address: '0000:3b:00.0', vendor: '8086', device: '159b', pciClass: '0x020000', numaNode: 0, iommuGroup: 40, driver: 'ice' });
    kernel.addDevice({ address: '0000:3b:00.1', vendor: '8086', device: '159b', pciClass: '0x020000', numaNode: 0, iommuGroup: 41, driver: '', nativeDriver: 'ice' });
    const dev = tree.path('dev');
    await makeVfioNodes(dev, [40, 41]);
    roots = { sysfs: kernel.sysfs, proc: '/proc', cgroup: '/sys/fs/cgroup', dev };
    host = createNodeHost(roots, { hostMountInfo: '/dev/null', driverSettleTimeoutMs: 3000 });
    pod = await FakeKubeletPod.create('cgroupfs');
  });

  afterAll(async () => {
    await pod?.destroy();
    kernel?.destroy();
    await tree?.cleanup();
  });

  /** A fresh VNF in a fresh state root, so every scenario starts from a clean host. */
  function scenario(): { plan: VnfHostPlan; stateRoot: string; store: JournalStore; request: (r: Partial<RunnerRequest>) => RunnerRequest } {
    const stateRoot = tree.path(`state-${++counter}`);
    const vnf = placedVnf({
      stateRoot,
      cpus: String(VNF_CPU),
      devices: [
        { interface: 'uplink', pciAddress: '0000:3b:00.0', iommuGroup: 40, driver: 'vfio-pci' },
        { interface: 'downlink', pciAddress: '0000:3b:00.1', iommuGroup: 41, driver: 'vfio-pci' },
      ],
      links: [{ name: 'chain', peer: 'router', role: 'server', id: 0 }],
    });
    const plan = planVnfHost(vnf, { stateRoot, nodeName: 'worker-1' });
    const store = new JournalStore(stateRoot);
    return { plan, stateRoot, store, request: (r) => ({ action: 'prepare', stateRoot, roots, plan, podUid: pod.podUid, hostMountInfo: '/dev/null', ...r }) };
  }

  async function expectPrepared(plan: VnfHostPlan): Promise<void> {
    const mount = mountAt(await host.mounter.mounts(), plan.paths.hugepages);
    expect(mount?.superOptions).toEqual(expect.arrayContaining(['pagesize=2M', `size=${plan.hugepageBytes}`]));
    expect(mountPointsUnder(plan.paths.root)).toEqual([plan.paths.hugepages]);
    expect(readdirSync(plan.paths.pciDevices)).toEqual(['0000:3b:00.0', '0000:3b:00.1']);
    expect(readFileSync(posix.join(plan.paths.cpuMask, 'online'), 'utf8')).toBe(`${VNF_CPU}\n`);
    expect(existsSync(plan.memifDirs[0]!)).toBe(true);
    expect(kernel.driverOf('0000:3b:00.0')).toBe('vfio-pci');
    expect(kernel.driverOf('0000:3b:00.1')).toBe('vfio-pci');
    expect(readFileSync(posix.join(plan.paths.readySignal, READY_FILE), 'utf8')).toBe(pod.podUid);
    expect(readFileSync(posix.join(pod.podDir('cpuset'), 'cpuset.cpus'), 'utf8').trim()).toBe(String(VNF_CPU));
  }

  function expectNothingLeft(stateRoot: string, plan: VnfHostPlan): void {
    expect(mountPointsUnder(stateRoot)).toEqual([]);
    expect(existsSync(plan.paths.root)).toBe(false);
    expect(existsSync(plan.memifDirs[0]!)).toBe(false);
    expect(readdirSync(posix.join(stateRoot, 'journal'))).toEqual([]);
    expect(kernel.driverOf('0000:3b:00.0')).toBe('ice');
    expect(kernel.driverOf('0000:3b:00.1')).toBe('');
    expect(kernel.overrideOf('0000:3b:00.0')).toBe('(null)');
    expect(kernel.overrideOf('0000:3b:00.1')).toBe('(null)');
  }

  const recover = (s: ReturnType<typeof scenario>, intent: 'prepare' | 'teardown') =>
    recoverJournals(s.store, host, () => (intent === 'teardown' ? { intent: 'teardown' } : { intent: 'prepare', podUid: pod.podUid }));

  let prepareAppends = 0;
  let teardownAppends = 0;

  it('counts the journal records of a full preparation and teardown', async () => {
    const s = scenario();
    const prepared = await runRunner(runner, s.request({}));
    expect(prepared.stderr).toBe('');
    prepareAppends = JSON.parse(prepared.stdout).appends;
    await expectPrepared(s.plan);
    const tornDown = await runRunner(runner, s.request({ action: 'teardown' }));
    expect(tornDown.stderr).toBe('');
    teardownAppends = JSON.parse(tornDown.stdout).appends;
    expectNothingLeft(s.stateRoot, s.plan);
    console.log(`preparation writes ${prepareAppends} journal records, teardown ${teardownAppends}`);
    expect(prepareAppends).toBeGreaterThan(10);
  }, LONG);

  it('converges after SIGKILL after each record of preparation: resumed to prepared, or reversed', async () => {
    for (let kill = 1; kill < prepareAppends; kill++) {
      for (const intent of ['prepare', 'teardown'] as const) {
        const s = scenario();
        const crashed = await runRunner(runner, s.request({ killAfterAppend: kill }));
        expect({ kill, signal: crashed.signal }).toEqual({ kill, signal: 'SIGKILL' });
        const [outcome] = await recover(s, intent);
        expect({ kill, intent, outcome }).toEqual({ kill, intent, outcome: { uid: s.plan.uid, action: intent === 'prepare' ? 'prepared' : 'tornDown' } });
        if (intent === 'prepare') {
          await expectPrepared(s.plan);
          await recover(s, 'teardown');
        }
        expectNothingLeft(s.stateRoot, s.plan);
      }
    }
  }, LONG);

  it('finishes the teardown after SIGKILL after each record of teardown', async () => {
    for (let kill = 1; kill < teardownAppends; kill++) {
      const s = scenario();
      await prepareVnf(s.plan, s.store.journal(s.plan.uid), host, journalStepContext(s.store, s.plan.uid), { podUid: pod.podUid });
      const crashed = await runRunner(runner, s.request({ action: 'teardown', killAfterAppend: kill }));
      expect({ kill, signal: crashed.signal }).toEqual({ kill, signal: 'SIGKILL' });
      // Whatever the API server says now, a started teardown is finished.
      const [outcome] = await recover(s, 'prepare');
      expect({ kill, action: outcome?.action }).toEqual({ kill, action: 'tornDown' });
      expectNothingLeft(s.stateRoot, s.plan);
    }
  }, LONG);

  it('converges after SIGKILL at timed points inside steps', async () => {
    for (const ms of [0, 1, 2, 3, 5, 8, 12, 20, 30, 45]) {
      for (const action of ['prepare', 'teardown'] as const) {
        const s = scenario();
        if (action === 'teardown') await prepareVnf(s.plan, s.store.journal(s.plan.uid), host, journalStepContext(s.store, s.plan.uid), { podUid: pod.podUid });
        const run = await runRunner(runner, s.request({ action, killAfterMsFromFirstAppend: ms }));
        expect([null, 'SIGKILL']).toContain(run.signal);
        const [outcome] = await recover(s, action);
        if (outcome) expect(outcome.error).toBeUndefined();
        if (action === 'prepare' && outcome) {
          await expectPrepared(s.plan);
          await recover(s, 'teardown');
        }
        expectNothingLeft(s.stateRoot, s.plan);
      }
    }
  }, LONG);
});
