/**
 * The agent's side of test/host/host-mount-namespace.test.ts, run inside a container's view of the
 * host (its own mount namespace, the host's procfs at /host/proc): the agent's real mounter, set up
 * as the chart sets it up (procfs root /host/proc, mount namespace /host/proc/1/ns/mnt), mounts a
 * hugetlbfs and a bind mount and prints what it sees under the test directory as one JSON line: in
 * the host's mount table (through the mounter) and in its own namespace. After a line on stdin it
 * unmounts both and prints the same again.
 *
 * One process does both, as one agent prepares and tears down: an agent container started while
 * the mounts exist would hold copies of them, which with the private propagation used here (the
 * chart uses HostToContainer, which passes the host's unmount on) keep the directories busy.
 *
 * Usage: node --import tsx mounts-from-agent-container.ts '<json MountsFromContainerRequest>'
 */
import { once } from 'node:events';
import { readFile, readlink } from 'node:fs/promises';
import { CommandMounter, mountsUnder, parseMountInfo, type MountEntry } from '../../../node-agent/host/mounts.js';
import { HugetlbfsMount } from '../../../node-agent/host/hugetlbfs-mount.js';

/** The chart's defaults (charts/nfv-operator: NFV_PROC_ROOT, agent.mountNamespace). */
const CHART_PROC_ROOT = '/host/proc';
const CHART_MOUNT_NAMESPACE = '/host/proc/1/ns/mnt';

/** What the script is asked to do. */
export interface MountsFromContainerRequest {
  /** Every path below is under it; only mounts under it are reported. */
  testDir: string;
  hugepageDir: string;
  hugepageBytes: number;
  bindSource: string;
  bindTarget: string;
}

/** A mount as the script reports it. */
export interface ReportedMount {
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

/** What the agent saw after mounting, and again after unmounting. */
export interface MountsFromContainerReport {
  /** The agent's mount namespace (`mnt:[inode]`). */
  namespace: string;
  /** Mounts under the test directory in the host's table, as the mounter reads it. */
  hostTable: ReportedMount[];
  /** Mounts under the test directory in the agent's own mount namespace. */
  ownNamespace: ReportedMount[];
}

const report = (mounts: MountEntry[], dir: string): ReportedMount[] =>
  mountsUnder(mounts, dir).map(({ mountPoint, fsType, superOptions }) => ({ mountPoint, fsType, superOptions }));

async function main(): Promise<void> {
  const request = JSON.parse(process.argv[2]!) as MountsFromContainerRequest;
  const mounter = new CommandMounter({ procRoot: CHART_PROC_ROOT, mountNamespace: CHART_MOUNT_NAMESPACE });
  const hugetlbfs = new HugetlbfsMount(mounter);
  const printReport = async () => {
    const result: MountsFromContainerReport = {
      namespace: await readlink('/proc/self/ns/mnt'),
      hostTable: report(await mounter.mounts(), request.testDir),
      ownNamespace: report(parseMountInfo(await readFile('/proc/self/mountinfo', 'utf8')), request.testDir),
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  };
  await hugetlbfs.ensureMounted(request.hugepageDir, '2Mi', request.hugepageBytes);
  await mounter.bind(request.bindSource, request.bindTarget);
  await printReport();
  await once(process.stdin, 'data');
  process.stdin.pause();
  await hugetlbfs.ensureUnmounted(request.hugepageDir);
  await mounter.unmount(request.bindTarget);
  await printReport();
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
