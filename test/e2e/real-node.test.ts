/**
 * This machine as a real node of the shared e2e cluster (test/cluster/real-node.ts): kubelet
 * v1.37 and containerd 2.4 with runc, no registry. Proves what the device, hugepage and DaemonSet
 * work builds on: the node is Ready with the kernel's capacity, a pod from the API server runs and
 * its log comes back through the API server, a pod off the host network gets an address on the
 * node's bridge, what kubelet does with a pod's hugetlb limits on this
 * host, that a deleted pod leaves no container or cgroup, that stopping the node leaves nothing,
 * and that the reaper cleans up after an owner killed with SIGKILL.
 *
 * Needs root and the Docker engine (hack/install-dataplane-deps.sh); fails, never skips, without.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';
import { createTestNamespace, e2eCluster, e2eKubeConfig, type TestNamespace } from '../cluster/e2e-env.js';
import { runDir } from '../cluster/cluster-registry.js';
import { RealNode } from '../cluster/real-node.js';
import { cgroupDirsDeepestFirst, cgroupHierarchies, mountsUnder, pidsInCgroupTree } from '../cluster/real-node-host.js';
import { processesNaming, reapOrphanedRealNodes, REAL_NODE_TMP_PREFIX } from '../cluster/real-node-registry.js';
import { repoRoot } from '../cluster/tools.js';
import { waitUntil } from '../cluster/wait-until.js';
import { ExtraHugepages } from '../host/helpers/host-fixtures.js';

const execFileAsync = promisify(execFile);
const IMAGE = 'nfv-operator/debian:bookworm';
const HUGEPAGES_2MI = 2;
const MI = 2 ** 20;

const kc = e2eKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const logger = pino({ name: 'real-node-test', level: process.env['NFV_CLUSTER_LOG_LEVEL'] ?? 'warn' }, pino.destination(2));

let node: RealNode;
let ns: TestNamespace;
const hugepages = new ExtraHugepages();
/** Bytes in the kernel's hugepage pools by kubelet resource name, just before and just after the node started. */
const kernelPagesAroundStart: Array<Record<'hugepages-2Mi' | 'hugepages-1Gi', number>> = [];

beforeAll(async () => {
  // The pause image is built from the base image in seconds when Docker's cache is warm.
  await execFileAsync('bash', [path.join(repoRoot(), 'hack', 'build-images.sh'), 'pause'], { timeout: 30 * 60_000 });
  // Pages for the hugepage pod's admission; kubelet reads the pools once, at its start. Other
  // users of the machine may resize them meanwhile (the host suite's lock is held for whole files,
  // minutes at a time), so the pools are sampled on both sides of the start.
  hugepages.ensureFree(HUGEPAGES_2MI * 2);
  kernelPagesAroundStart.push(readKernelPages());
  const cluster = e2eCluster();
  node = await RealNode.start({ server: cluster.server, pkiDir: path.join(cluster.tmpDir, 'pki'), kubeConfig: kc, images: [IMAGE], logger });
  kernelPagesAroundStart.push(readKernelPages());
  ns = await createTestNamespace('real-node');
}, 300_000);

afterAll(async () => {
  await node?.stop();
  hugepages.cleanup();
  await ns?.delete();
}, 120_000);

describe('a real kubelet node', () => {
  test('is Ready with the CPUs, memory and hugepages the kernel reports', async () => {
    const { status } = await core.readNode({ name: node.name });
    expect(status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(status?.nodeInfo?.kubeletVersion).toBe(e2eCluster().kubernetesVersion);
    expect(status?.nodeInfo?.containerRuntimeVersion).toMatch(/^containerd:\/\/2\./);
    const capacity = status?.capacity ?? {};
    expect(capacity['cpu']).toBe(String(Number((await execFileAsync('nproc', ['--all'])).stdout.trim())));
    const memTotalKi = Number(/^MemTotal:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1]);
    expect(capacity['memory']).toBe(`${memTotalKi}Ki`);
    const reported = { 'hugepages-2Mi': quantityBytes(capacity['hugepages-2Mi']), 'hugepages-1Gi': quantityBytes(capacity['hugepages-1Gi']) };
    expect(kernelPagesAroundStart).toContainEqual(reported);
  });

  test('runs a hostNetwork pod from a local image and serves its log through the API server', async () => {
    const pod = await runToCompletion('hello', { command: ['sh', '-c', 'echo hello from $(hostname)'] });
    expect(pod.status?.phase).toBe('Succeeded');
    const log = await core.readNamespacedPodLog({ name: 'hello', namespace: ns.name });
    expect(log.trim()).toBe(`hello from ${readFileSync('/proc/sys/kernel/hostname', 'utf8').trim()}`);
  });

  test('gives a pod off the host network an address on the node\'s own bridge', async () => {
    const pod = await runToCompletion('pod-network', { command: ['hostname', '-I'] }, { hostNetwork: false });
    expect(pod.status?.phase).toBe('Succeeded');
    expect(pod.status?.podIP).toMatch(/^10\.250\.0\.\d+$/);
    expect(pod.status?.podIP).not.toBe(node.address);
    const log = await core.readNamespacedPodLog({ name: 'pod-network', namespace: ns.name });
    expect(log.trim()).toBe(pod.status?.podIP);
  });

  test('gives a container the hugetlb limit of its hugepages-2Mi request, and 0 without one, where its cgroups have hugetlb', async () => {
    const withPages = await startSleeper('hugepages', { 'hugepages-2Mi': `${HUGEPAGES_2MI * 2}Mi` });
    const without = await startSleeper('no-hugepages', {});
    const limits = [hugetlbLimit2Mi(containerCgroup(withPages)), hugetlbLimit2Mi(containerCgroup(without))];
    if (hugetlbHierarchyOfKubelet()) {
      expect(limits).toEqual([HUGEPAGES_2MI * 2 * MI, 0]);
    } else {
      // This host is hybrid with hugetlb in cgroup v2 only: kubelet (cgroupfs, v1 mode) skips the
      // pod's hugetlb limit ("Optional subsystem not supported: hugetlb") and runc's v1 manager
      // the container's, so no hugetlb limit exists at all; the node agent's is the only one.
      expect(limits).toEqual([undefined, undefined]);
    }
    await Promise.all([deletePod('hugepages'), deletePod('no-hugepages')]);
  });

  test('deleting a pod removes its container and its cgroups', async () => {
    const pod = await startSleeper('deleted', {});
    const uid = pod.metadata?.uid ?? '';
    const containerId = containerIdOf(pod);
    expect(await node.listContainers()).toContain(containerId);
    expect(podCgroupDirs(uid).length).toBeGreaterThan(0);
    await deletePod('deleted');
    await waitUntil('the container to be removed', async () => !(await node.listContainers()).includes(containerId), { timeoutMs: 30_000, intervalMs: 250 });
    await waitUntil(`the cgroups of pod ${uid} to be removed`, () => podCgroupDirs(uid).length === 0, { timeoutMs: 30_000, intervalMs: 250 });
  });

  test('stop leaves no process, mount, cgroup, sysctl, iptables chain, directory, hosts entry or Node behind', async () => {
    await startSleeper('left-running', {});
    const { host } = node;
    await node.stop();
    expect(processesNaming(host.dir)).toEqual([]);
    expect(mountsUnder(host.dir)).toEqual([]);
    expect(pidsInCgroupTree(host.cgroupRoot)).toEqual([]);
    expect(cgroupHierarchies().flatMap((h) => cgroupDirsDeepestFirst(path.join(h, host.cgroupRoot)))).toEqual([]);
    for (const [key, value] of Object.entries(host.kernelTunables)) expect([key, readFileSync(`/proc/sys/${key}`, 'utf8').trim()]).toEqual([key, value]);
    for (const chain of host.absentChains) {
      await expect(execFileAsync(chain.binary, ['-w', '-t', chain.table, '-S', chain.chain])).rejects.toThrow();
    }
    expect(readFileSync('/etc/hosts', 'utf8')).not.toContain(` ${host.nodeName} `);
    expect(existsSync(`/sys/class/net/${host.bridge}`)).toBe(false);
    expect(host.absentDirs.filter(existsSync)).toEqual([]);
    expect(existsSync(host.dir)).toBe(false);
    expect(existsSync(path.join(runDir(), 'real-nodes', `${path.basename(host.dir).slice(REAL_NODE_TMP_PREFIX.length)}.json`))).toBe(false);
    await expect(core.readNode({ name: host.nodeName })).rejects.toMatchObject({ code: 404 });
  });

  test('a node whose owner was SIGKILLed, with a pod running, is cleaned up by the next start\'s reaper', async () => {
    const cluster = e2eCluster();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/cluster/start-real-node.ts', '--kubeconfig', cluster.kubeconfigPath, '--pki-dir', path.join(cluster.tmpDir, 'pki'), '--image', IMAGE],
      { cwd: repoRoot(), stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const orphan = JSON.parse(await firstLine(child.stdout)) as { name: string; dir: string; cgroupRoot: string };
    const pod = await startSleeper('orphaned', {});
    child.kill('SIGKILL');
    await exited;
    // kubelet and containerd run in sessions of their own: they outlive their owner.
    expect(processesNaming(orphan.dir).length).toBeGreaterThan(0);
    expect(podCgroupDirs(pod.metadata?.uid ?? '').length).toBeGreaterThan(0);

    expect(await reapOrphanedRealNodes(logger)).toBe(1);
    expect(processesNaming(orphan.dir)).toEqual([]);
    expect(pidsInCgroupTree(orphan.cgroupRoot)).toEqual([]);
    expect(cgroupHierarchies().flatMap((h) => cgroupDirsDeepestFirst(path.join(h, orphan.cgroupRoot)))).toEqual([]);
    expect(mountsUnder(orphan.dir)).toEqual([]);
    expect(existsSync(orphan.dir)).toBe(false);
    expect(readFileSync('/etc/hosts', 'utf8')).not.toContain(` ${orphan.name} `);
    // The reaper may run without the cluster: the Node object of a dead node is the test's to delete.
    await core.deleteNode({ name: orphan.name });
  });
});

/** The first line a stream writes; rejects if it ends first. */
function firstLine(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      text += chunk;
      const newline = text.indexOf('\n');
      if (newline >= 0) resolve(text.slice(0, newline));
    });
    stream.once('end', () => reject(new Error(`start-real-node.ts ended before it printed its node: ${text}`)));
  });
}

function readKernelPages(): Record<'hugepages-2Mi' | 'hugepages-1Gi', number> {
  const pages = (size: string): number => {
    const file = `/sys/kernel/mm/hugepages/hugepages-${size}/nr_hugepages`;
    return existsSync(file) ? Number(readFileSync(file, 'utf8')) : 0;
  };
  return { 'hugepages-2Mi': pages('2048kB') * 2 * MI, 'hugepages-1Gi': pages('1048576kB') * 1024 * MI };
}

/** Bytes of a quantity as the kubelet reports hugepages (`4Mi`, `0`, `2Gi`). */
function quantityBytes(quantity: string | undefined): number {
  const match = /^(\d+)(Ki|Mi|Gi)?$/.exec(quantity ?? '');
  if (!match) throw new Error(`unexpected quantity "${quantity}"`);
  const unit: Record<string, number> = { Ki: 1024, Mi: MI, Gi: 1024 * MI };
  return Number(match[1]) * (match[2] ? (unit[match[2]] ?? 1) : 1);
}

function podManifest(name: string, container: Record<string, unknown>, spec: { hostNetwork?: boolean } = {}): V1Pod {
  return {
    metadata: { name, namespace: ns.name },
    spec: {
      nodeName: node.name,
      hostNetwork: spec.hostNetwork ?? true,
      tolerations: [node.toleration],
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'main', image: IMAGE, imagePullPolicy: 'Never', ...container }],
    },
  };
}

async function runToCompletion(name: string, container: Record<string, unknown>, spec: { hostNetwork?: boolean } = {}): Promise<V1Pod> {
  await core.createNamespacedPod({ namespace: ns.name, body: podManifest(name, container, spec) });
  return waitForPod(name, (pod) => ['Succeeded', 'Failed'].includes(pod.status?.phase ?? ''));
}

/** A Guaranteed pod (limits only) that sleeps; resolves once its container runs. */
async function startSleeper(name: string, extraLimits: Record<string, string>): Promise<V1Pod> {
  await core.createNamespacedPod({
    namespace: ns.name,
    body: podManifest(name, {
      command: ['sleep', 'infinity'],
      resources: { limits: { cpu: '100m', memory: '64Mi', ...extraLimits } },
    }),
  });
  return waitForPod(name, (pod) => Boolean(pod.status?.containerStatuses?.[0]?.state?.running));
}

async function waitForPod(name: string, done: (pod: V1Pod) => boolean): Promise<V1Pod> {
  let last: V1Pod | undefined;
  try {
    return await waitUntil(
      `pod ${name}`,
      async () => {
        last = await core.readNamespacedPod({ name, namespace: ns.name });
        return done(last) ? last : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last status: ${JSON.stringify(last?.status)}`);
  }
}

async function deletePod(name: string): Promise<void> {
  await core.deleteNamespacedPod({ name, namespace: ns.name });
  await waitUntil(
    `pod ${name} to be gone`,
    async () => {
      try {
        await core.readNamespacedPod({ name, namespace: ns.name });
        return false;
      } catch (err) {
        if ((err as { code?: number }).code === 404) return true;
        throw err;
      }
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  );
}

function containerIdOf(pod: V1Pod): string {
  return (pod.status?.containerStatuses?.[0]?.containerID ?? '').replace(/^containerd:\/\//, '');
}

/** The container's cgroup path, as kubelet's cgroupfs driver names it for a Guaranteed pod. */
function containerCgroup(pod: V1Pod): string {
  return path.join(node.cgroupRoot, 'kubepods', `pod${pod.metadata?.uid}`, containerIdOf(pod));
}

function podCgroupDirs(uid: string): string[] {
  return cgroupHierarchies().flatMap((h) =>
    ['', 'burstable', 'besteffort'].map((qos) => path.join(h, node.cgroupRoot, 'kubepods', qos, `pod${uid}`)).filter(existsSync),
  );
}

/**
 * The hugetlb hierarchy kubelet and runc write in: the v1 `hugetlb` one in v1 mode (hybrid hosts
 * included), the unified root on a pure v2 host; undefined when there is none.
 */
function hugetlbHierarchyOfKubelet(): string | undefined {
  const root = '/sys/fs/cgroup';
  if (existsSync(path.join(root, 'cgroup.controllers'))) {
    return readFileSync(path.join(root, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('hugetlb') ? root : undefined;
  }
  return existsSync(path.join(root, 'hugetlb', 'cgroup.procs')) ? path.join(root, 'hugetlb') : undefined;
}

/** The 2Mi hugetlb limit of a cgroup in bytes, from whichever hierarchy has one; undefined if none does. */
function hugetlbLimit2Mi(cgroup: string): number | undefined {
  const candidates = [
    path.join('/sys/fs/cgroup/hugetlb', cgroup, 'hugetlb.2MB.limit_in_bytes'),
    path.join('/sys/fs/cgroup/unified', cgroup, 'hugetlb.2MB.max'),
    path.join('/sys/fs/cgroup', cgroup, 'hugetlb.2MB.max'),
  ];
  const file = candidates.find(existsSync);
  if (!file) return undefined;
  const value = readFileSync(file, 'utf8').trim();
  return value === 'max' ? Number.MAX_SAFE_INTEGER : Number(value);
}
