/**
 * The chart's default mount namespace for the agent, `/host/proc/1/ns/mnt`, on a normal host: the
 * agent runs in a container (its own mount namespace, private propagation, the host's procfs at
 * /host/proc as the chart mounts it, with hostPID), and its real CommandMounter enters PID 1's
 * mount namespace with nsenter for every mount and unmount. The mounts must then exist for the
 * host (PID 1's mount table), not in the agent's own namespace, and go away when it unmounts.
 *
 * Needs a host whose PID 1 is its init. Where /proc/1/ns/mnt cannot be opened even by root (a
 * sandbox whose PID 1 belongs to its supervisor, like the machine this project is developed on),
 * the default cannot work at all and the file is skipped with the reason; the pure cgroup v2 VM
 * (test/vm) runs it on a real init.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, openSync, readFileSync, readlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { posix } from 'node:path';
import { createInterface } from 'node:readline';
import { mountAt, mountsUnder, parseMountInfo } from '../../node-agent/host/mounts.js';
import { execFileAsync, HELPERS, requireRoot, TempTree } from './helpers/host-fixtures.js';
import type { MountsFromContainerReport, MountsFromContainerRequest } from './helpers/mounts-from-agent-container.js';

const REPO_ROOT = posix.resolve(HELPERS, '../../..');
const LONG = 120_000;
const HUGEPAGE_BYTES = 4 << 20;

/** Why the host's init mount namespace cannot be entered here, or undefined when it can. */
function initMountNamespaceProblem(): string | undefined {
  try {
    closeSync(openSync('/proc/1/ns/mnt', 'r'));
    return undefined;
  } catch (err) {
    let init = 'unknown';
    try {
      init = readFileSync('/proc/1/comm', 'utf8').trim();
    } catch {
      // The reason below stands without the name.
    }
    return `/proc/1/ns/mnt cannot be opened here (${(err as Error).message}): PID 1 (${init}) is not an init whose mount namespace root may enter, so the chart's default agent.mountNamespace cannot work on this machine; test/vm runs this file on a real init`;
  }
}

/**
 * Builds the agent container's view and runs `command` in it: run under `unshare --mount
 * --propagation private`, it mounts a tmpfs root (unbindable, so the recursive binds below do not
 * copy it into itself), binds every top-level directory of the host into it (the container image
 * and the state root, at the same paths), binds the host's /proc at /host/proc as the chart's
 * host-proc volume does, and chroots into it.
 */
const CONTAINER_VIEW = `
set -euo pipefail
root=$1 workdir=$2; shift 2
mount -t tmpfs -o mode=0755 agent-root "$root"
mount --make-unbindable "$root"
for entry in /*; do
  name=\${entry#/}
  [ "$name" != host ] || continue
  if [ -L "$entry" ]; then ln -s "$(readlink "$entry")" "$root/$name"
  elif [ -d "$entry" ]; then mkdir "$root/$name" && mount --rbind "$entry" "$root/$name"
  fi
done
mkdir -p "$root/host/proc"
mount --rbind /proc "$root/host/proc"
exec chroot "$root" env --chdir="$workdir" "$@"
`;

const problem = initMountNamespaceProblem();
if (problem) console.warn(`SKIPPED host-mount-namespace.test.ts: ${problem}`);
const describeOnNormalHost = problem ? describe.skip : describe;

describeOnNormalHost("the chart's default mount namespace /host/proc/1/ns/mnt, from the agent's container", () => {
  let tree: TempTree;
  let request: MountsFromContainerRequest;

  /** Mounts under the test directory as PID 1 (the host's init) sees them. */
  const initMounts = () => mountsUnder(parseMountInfo(readFileSync('/proc/1/mountinfo', 'utf8')), tree.dir);

  /** Starts the agent in its container; it mounts, reports, and unmounts when told to. */
  function startAgentInContainer(): { agent: ChildProcess; exited: Promise<unknown[]>; reports: AsyncIterator<string>; unmount: () => void } {
    const command = [process.execPath, '--import', 'tsx', posix.join(HELPERS, 'mounts-from-agent-container.ts'), JSON.stringify(request)];
    const agent = spawn('unshare', ['--mount', '--propagation', 'private', '--', 'bash', '-c', CONTAINER_VIEW, 'agent-container', tree.path('agent-root'), REPO_ROOT, ...command], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const exited = once(agent, 'exit');
    return { agent, exited, reports: createInterface({ input: agent.stdout! })[Symbol.asyncIterator](), unmount: () => agent.stdin!.end('unmount\n') };
  }

  async function nextReport(reports: AsyncIterator<string>): Promise<MountsFromContainerReport> {
    const line = await reports.next();
    if (line.done) throw new Error('the agent in its container exited without reporting (its stderr is above)');
    return JSON.parse(line.value) as MountsFromContainerReport;
  }

  beforeAll(() => {
    requireRoot();
    tree = new TempTree('nfv-host-mount-ns');
    request = {
      testDir: tree.dir,
      hugepageDir: tree.path('vnf', 'hugepages'),
      hugepageBytes: HUGEPAGE_BYTES,
      bindSource: tree.path('bind-source'),
      bindTarget: tree.path('vnf', 'bind-target'),
    };
    mkdirSync(request.bindSource);
    mkdirSync(request.bindTarget, { recursive: true });
    writeFileSync(posix.join(request.bindSource, 'marker'), 'seen through the bind mount');
    mkdirSync(tree.path('agent-root'));
  });

  afterAll(async () => {
    if (!tree) return;
    // Whatever the agent left in the host's namespace, deepest first, before the tree goes.
    for (const mount of initMounts()) {
      await execFileAsync('nsenter', ['--mount=/proc/1/ns/mnt', '--', 'umount', '-l', '--', mount.mountPoint]).catch(() => undefined);
    }
    await tree.cleanup();
  });

  it('mounts hugetlbfs and a bind mount in the host namespace, not in its own, and unmounts them there', async () => {
    const { agent, exited, reports, unmount } = startAgentInContainer();
    try {
      const mounted = await nextReport(reports);
      expect(mounted.namespace).not.toBe(readlinkSync('/proc/1/ns/mnt'));

      const hugetlbfs = mountAt(initMounts(), request.hugepageDir);
      expect(hugetlbfs?.fsType).toBe('hugetlbfs');
      expect(hugetlbfs?.superOptions).toEqual(expect.arrayContaining(['pagesize=2M', `size=${HUGEPAGE_BYTES}`]));
      expect(mountAt(initMounts(), request.bindTarget)).toBeDefined();
      expect(readFileSync(`/proc/1/root${request.bindTarget}/marker`, 'utf8')).toBe('seen through the bind mount');
      // The mounter read the host's table through /host/proc/1/mountinfo...
      expect(mounted.hostTable.map((mount) => mount.mountPoint).sort()).toEqual([request.bindTarget, request.hugepageDir].sort());
      // ...while its own namespace (private, like a container's) never got either mount.
      expect(mounted.ownNamespace).toEqual([]);

      unmount();
      const unmounted = await nextReport(reports);
      expect(initMounts()).toEqual([]);
      expect(unmounted.hostTable).toEqual([]);
      expect(unmounted.ownNamespace).toEqual([]);
      expect(existsSync(request.hugepageDir)).toBe(false);
      expect(existsSync(`/proc/1/root${request.bindTarget}/marker`)).toBe(false);
      const [code] = (await exited) as [number | null];
      expect(code).toBe(0);
    } finally {
      // Its namespace, and every mount in it, goes with its last process.
      if (agent.exitCode === null && agent.signalCode === null) agent.kill('SIGKILL');
    }
  }, LONG);
});
