/**
 * The node agent's real-kernel tests on a pure cgroup v2 host: this machine is hybrid (v1
 * controllers plus an empty unified hierarchy), so the host suite's v2 paths run for real only
 * here, in a guest booted with cgroup_no_v1=all (test/vm/vm-guest.ts). jest runs the host test
 * files inside the guest, once, and each file's result is one test here.
 *
 * Never a silent pass: a machine where the VM cannot run fails the first test saying why.
 */
import { jestInGuestScript, parseJestReport, type FileReport } from './jest-in-guest.js';
import { chooseAccelerator, ensureVmImage, runInVm, type VmJobResult } from './vm-guest.js';

/**
 * Host test files whose code paths depend on the cgroup version or on the kernel's hierarchy, the
 * pod cgroups crash recovery writes among them (crash-safety.test.ts), and the one that needs a
 * host whose PID 1 is its init (host-mount-namespace.test.ts: the chart's default
 * /host/proc/1/ns/mnt, which the machine this project is developed on cannot open). Every test of
 * every file must run here: a skip fails.
 */
const AGENT_TEST_FILES = [
  'test/host/pod-cgroups.test.ts',
  'test/host/vnf-lifecycle.test.ts',
  'test/host/hugetlbfs-mount.test.ts',
  'test/host/agent-reconcilers.test.ts',
  'test/host/discovery.test.ts',
  'test/host/hugepage-reservation.test.ts',
  'test/host/crash-safety.test.ts',
  'test/host/host-mount-namespace.test.ts',
];

describe('the node agent on a pure cgroup v2 host (a VM)', () => {
  const { accelerator, fallbackReason } = chooseAccelerator();
  let guest: VmJobResult | undefined;
  let reports = new Map<string, FileReport>();
  let setupError: Error | undefined;

  beforeAll(async () => {
    if (fallbackReason) console.warn(`WARNING: the pure cgroup v2 guest runs under TCG (emulated CPU), because ${fallbackReason}`);
    try {
      const image = await ensureVmImage();
      guest = await runInVm({ script: jestInGuestScript(AGENT_TEST_FILES), accelerator, vcpus: 2, memoryMiB: 2048, timeoutMs: 25 * 60_000 }, image);
      reports = parseJestReport(guest.stdout);
    } catch (err) {
      setupError = err as Error;
    }
  }, 30 * 60_000);

  it(`boots a pure cgroup v2 guest (${accelerator}${fallbackReason ? ', KVM unusable here' : ''}) and runs jest in it`, () => {
    if (setupError) throw setupError;
    expect(guest!.stderr).toMatch(/^cgroup2 \/sys\/fs\/cgroup cgroup2 /m);
    expect(guest!.stderr).not.toMatch(/^\S+ \S+ cgroup /m);
    expect(guest!.stderr).toMatch(/^controllers: .*\bcpuset\b.*\bhugetlb\b/m);
    expect(reports.size).toBe(AGENT_TEST_FILES.length);
  });

  it.each(AGENT_TEST_FILES)('%s passes on pure cgroup v2', (file) => {
    if (setupError) throw setupError;
    const report = reports.get(file);
    if (!report) throw new Error(`jest in the guest reported nothing for ${file}:\n${guest!.stderr.slice(-4000)}`);
    expect(report.failures.map((failure) => `${failure.title}\n${failure.message}`)).toEqual([]);
    expect(report.passed).toBeGreaterThan(0);
    expect(report.skipped).toBe(0);
  });
});
