/**
 * What the data-plane tests need from the machine, checked up front so that a machine without
 * hugepages, DPDK or a Docker engine fails the tests with what to install, never a silent pass.
 * NFV_ALLOW_MISSING_DOCKER=1 turns a missing prerequisite into a named skip with a warning.
 */
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { getContainerRuntimeClient } from 'testcontainers';
import { cgroupHierarchies } from './cgroup-hierarchies.js';

/** A thing a data-plane test needs from the machine. */
export type Prerequisite = 'root' | 'dpdk' | 'hugepages' | 'hugetlb-cgroup' | 'docker';

const INSTALL = 'run hack/install-dataplane-deps.sh as root';

async function check(need: Prerequisite): Promise<string | undefined> {
  switch (need) {
    case 'root':
      return process.getuid?.() === 0 ? undefined : 'root: the data-plane tests mount hugetlbfs, write cgroups and nr_hugepages; run them as root';
    case 'dpdk':
      return onPath('dpdk-testpmd') ? undefined : `dpdk-testpmd: not on PATH (Debian's dpdk-dev 22.11); ${INSTALL}`;
    case 'hugepages':
      if (!readFileSync('/proc/filesystems', 'utf8').includes('hugetlbfs')) return 'hugepages: this kernel has no hugetlbfs (CONFIG_HUGETLBFS)';
      if (!existsSync('/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages')) return 'hugepages: this kernel has no 2 MiB hugepage pool';
      return undefined;
    case 'hugetlb-cgroup':
      return cgroupHierarchies().some((h) => h.controllers.includes('hugetlb')) ? undefined : 'hugetlb cgroup: no cgroup hierarchy offers the hugetlb controller (mount cgroup v2, or the v1 hugetlb hierarchy)';
    case 'docker':
      try {
        // What the tests drive containers with: testcontainers finds the engine as they will.
        await getContainerRuntimeClient();
        return undefined;
      } catch {
        return `docker: no Docker engine answers; ${INSTALL} (installs docker.io and starts dockerd)`;
      }
  }
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => {
    try {
      accessSync(`${dir}/${command}`, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The prerequisites among `needs` that this machine lacks, each saying what to do about it. */
export async function missingPrerequisites(needs: readonly Prerequisite[]): Promise<string[]> {
  const results = await Promise.all(needs.map(check));
  return results.filter((message): message is string => message !== undefined);
}

/**
 * `describe` that runs `body` when nothing is missing. Otherwise it fails with one test that
 * names what is missing, or, with NFV_ALLOW_MISSING_DOCKER=1, skips `body` under a title that
 * says why and prints a warning.
 */
export function describeDataplane(title: string, missing: readonly string[], body: () => void): void {
  if (missing.length === 0) {
    describe(title, body);
    return;
  }
  if (process.env.NFV_ALLOW_MISSING_DOCKER === '1') {
    console.warn(`WARNING: SKIPPING "${title}" because NFV_ALLOW_MISSING_DOCKER=1 and this machine lacks:\n  - ${missing.join('\n  - ')}`);
    describe.skip(`${title} [SKIPPED, missing: ${missing.join('; ')}]`, body);
    return;
  }
  describe(title, () => {
    test('has what it needs on this machine (set NFV_ALLOW_MISSING_DOCKER=1 to skip instead)', () => {
      throw new Error(`${title} cannot run here:\n  - ${missing.join('\n  - ')}`);
    });
  });
}
