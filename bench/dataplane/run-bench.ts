/**
 * npm run bench:dataplane: the same dpdk-testpmd forwarding, on the same lcores, in three
 * environments, to measure what the node agent's isolation costs:
 *
 *   host      testpmd pinned with taskset on a hugetlbfs mount of its own, nothing else;
 *   isolated  the VNF placed by the controller's plan, its pod rendered, the host and the
 *             kubelet-style pod cgroup prepared by the node agent (hugetlbfs with size=, the CPU
 *             and PCI sysfs masks, the memif directory, the cpuset and hugetlb limits), as the
 *             data-plane tests do it (test/host/dataplane/one-node-cluster.ts, kubelet-pod.ts);
 *             the pod's containers then run in a namespace sandbox (sandbox-runtime.ts: own
 *             mount, pid and network namespaces, the pod's volumes as bind mounts, a cgroup under
 *             the pod cgroup), with the image's entrypoint and the host's testpmd: the isolation
 *             is exactly the agent's, without a container engine;
 *   docker    the same path with Docker (through testcontainers) as the runtime, running the
 *             VNF image.
 *
 * Modes: io and macswap between two net_null ports, io between two net_ring ports (a burst
 * sent with --tx-first circulates), and the memif chain of two VNFs (edge: memif <-> net_null,
 * io; loop: memif, macswap back). Single-VNF modes run on the last CPU (main and forwarding lcore
 * both on it); the chain puts edge on the first CPU and loop on the last. In isolated and docker,
 * testpmd's options are the VNF's spec.args and the image's entrypoint adds the operator's EAL
 * options and its own testpmd defaults; the host passes the same options to testpmd by hand. host
 * and isolated run Debian's DPDK of the host, docker the image's (with the memif PMD of patches/).
 *
 * Each mode runs N times per environment, the environments interleaved so that a change of load
 * on the machine hits them alike. A run's Mpps is the median of testpmd's per-second Rx-pps after
 * the first two seconds; its cycles/packet comes from --record-core-cycles (the forwarding
 * lcore's busy cycles per packet, steadier than Mpps when other work shares the machine). The
 * table prints min/median/max of both, and isolated/host and docker/host ratios of the medians
 * (for cycles/packet, host/env, so that above 1 is always better). Each mode is judged on the
 * metric whose runs spread less. Target: isolated/host >= 0.98. Before each run the bench waits
 * (up to 30 s) for the machine to be quiet, and counts the runs it had to start on a busy one.
 *
 *   npm run bench:dataplane -- [--runs 5] [--seconds 6] [--modes io,macswap,ring,memif] [--envs host,isolated,docker]
 *
 * Ctrl-C (or SIGTERM) stops it after the run in progress, and it cleans up as after a failure.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { posix } from 'node:path';
import { parseArgs } from 'node:util';
import { parseCpuList } from '../../src/api/cpu-list.js';
import { VNF_NAME_LABEL } from '../../src/api/group.js';
import { execFileAsync, ExtraHugepages, lockHugepages, TempTree, unmountAllUnder } from '../../test/host/helpers/host-fixtures.js';
import type { ContainerProcess, ContainerRuntime } from '../../test/host/dataplane/container-process.js';
import { DockerRuntime } from '../../test/host/dataplane/docker-runtime.js';
import { FakePciBus } from '../../test/host/dataplane/fake-pci-bus.js';
import { HostProcess } from '../../test/host/dataplane/host-process.js';
import { buildImages, IMAGES } from '../../test/host/dataplane/images.js';
import { removeKubeletCgroups, type KubeletPod } from '../../test/host/dataplane/kubelet-pod.js';
import { OneNodeCluster } from '../../test/host/dataplane/one-node-cluster.js';
import { missingPrerequisites, type Prerequisite } from '../../test/host/dataplane/prerequisites.js';
import { SandboxRuntime } from '../../test/host/dataplane/sandbox-runtime.js';
import { lcoreArgs, parseTestpmdOutput, type PortStats } from '../../test/host/dataplane/testpmd-output.js';
import { startVnfPod, VNF_CONTAINER } from '../../test/host/dataplane/vnf-pod-startup.js';

const MiB = 2 ** 20;
/** Hugepages of each VNF; EAL preallocates all of it (--socket-mem), as the operator renders it. */
const ALLOCATION = 48 * MiB;
const MODES = ['io', 'macswap', 'ring', 'memif'] as const;
const ENVS = ['host', 'isolated', 'docker'] as const;
type Mode = (typeof MODES)[number];
type Env = (typeof ENVS)[number];
const TARGET = 0.98;
const WARMUP_BLOCKS = 2;
/** Top cgroup of the isolated and docker environments' pods in every hierarchy. */
const BENCH_CGROUPS = `nfv-bench-${process.pid}`;

interface Sample {
  mpps: number;
  cyclesPerPacket: number;
  /** Share of the CPUs busy just before the run, with nothing of ours running. */
  busyBefore: number;
}

/** One testpmd of a run, whichever environment runs it. */
interface Vnf {
  /** Stops it and returns its output, the final statistics included. */
  stop(): Promise<string>;
  /** Kills it if it still runs. */
  kill(): Promise<void>;
}

/** A started testpmd as a {@link Vnf}. */
function stoppable(app: ContainerProcess): Vnf {
  return {
    stop: async () => {
      await app.stop();
      await app.waitFor('the final statistics', /Bye\.\.\./, 10_000).catch(() => undefined);
      return app.output;
    },
    kill: async () => {
      if (!app.hasEnded) await app.kill();
    },
  };
}

/**
 * testpmd's role in a mode: its memif link end (the VNF's spec.links; its port comes first, as
 * the operator renders it), its other vdevs, forwarding arguments and the ports whose Rx-pps count.
 */
interface Role {
  name: string;
  cpu: number;
  link?: 'server' | 'client';
  vdevs: string[];
  forwarding: string[];
  measuredPorts: number[];
}

const { values: options } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '6' },
    modes: { type: 'string', default: MODES.join(',') },
    envs: { type: 'string', default: ENVS.join(',') },
  },
});
const runs = Number(options.runs);
const seconds = Number(options.seconds);
const modes = options.modes.split(',') as Mode[];
const envs = options.envs.split(',') as Env[];
for (const mode of modes) if (!MODES.includes(mode)) throw new Error(`unknown mode ${mode} (known: ${MODES.join(', ')})`);
for (const env of envs) if (!ENVS.includes(env)) throw new Error(`unknown environment ${env} (known: ${ENVS.join(', ')})`);

const cpus = parseCpuList(readFileSync('/sys/devices/system/cpu/present', 'utf8').trim());
const [firstCpu, lastCpu] = [cpus[0]!, cpus.at(-1)!];
const memif = (role: 'server' | 'client', linkDir: string) => `net_memif0,role=${role},id=0,socket=${linkDir}/memif.sock,socket-abstract=no`;
const common = ['--auto-start', '--stats-period', '1', '--record-core-cycles', '--total-num-mbufs', '8192'];

/** The testpmds of a mode; the first one is measured. */
function roles(mode: Mode): Role[] {
  switch (mode) {
    case 'io':
    case 'macswap':
      return [{ name: mode, cpu: lastCpu, vdevs: ['net_null0', 'net_null1'], forwarding: [`--forward-mode=${mode}`], measuredPorts: [0, 1] }];
    case 'ring':
      return [{ name: 'ring', cpu: lastCpu, vdevs: ['net_ring0', 'net_ring1'], forwarding: ['--forward-mode=io', '--tx-first'], measuredPorts: [0, 1] }];
    case 'memif':
      // The controller places the chain member whose name sorts first first, on the lowest free CPU.
      return [
        { name: 'edge', cpu: firstCpu, link: 'client', vdevs: ['net_null0'], forwarding: ['--forward-mode=io'], measuredPorts: [0] },
        { name: 'loop', cpu: lastCpu, link: 'server', vdevs: [], forwarding: ['--forward-mode=macswap', '--port-topology=loop'], measuredPorts: [0] },
      ];
  }
}

/** The host's testpmd command line: the EAL options a pod is rendered with, at host paths. */
function hostTestpmdArgs(role: Role, hugeDir: string, linkDir: string): string[] {
  const vdevs = [...(role.link ? [memif(role.link, linkDir)] : []), ...role.vdevs];
  const eal = [...lcoreArgs([role.cpu]), '--huge-dir', hugeDir, '--file-prefix', `bench-${role.name}`, '--socket-mem', String(ALLOCATION / MiB), ...vdevs.flatMap((v) => ['--vdev', v])];
  return [...eal, '--', ...role.forwarding, ...common];
}

/** Share of the CPUs' time that was not idle over `ms`, from /proc/stat. */
async function cpuBusy(ms: number): Promise<number> {
  const sample = () => {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    return { idle: fields[3]! + fields[4]!, total: fields.reduce((a, b) => a + b, 0) };
  };
  const before = sample();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = sample();
  return 1 - (after.idle - before.idle) / Math.max(1, after.total - before.total);
}

/**
 * Waits, up to 30 s, until the machine is quiet (under 15% busy with nothing of ours running),
 * so that other work does not land in one environment's runs only. Returns the last busy share.
 */
async function waitForQuiet(): Promise<number> {
  let busy = 1;
  for (let waited = 0; waited < 30; waited++) {
    busy = await cpuBusy(1000);
    if (busy < 0.15) break;
  }
  return busy;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Mpps of a run: the median over the seconds after warm-up of the measured ports' summed Rx-pps. */
function runMpps(stats: PortStats[], ports: number[]): number {
  const perBlock: number[] = [];
  const measured = stats.filter((s) => ports.includes(s.port));
  for (let i = 0; i + ports.length <= measured.length; i += ports.length) {
    perBlock.push(measured.slice(i, i + ports.length).reduce((sum, s) => sum + s.rxPps, 0));
  }
  const steady = perBlock.slice(WARMUP_BLOCKS);
  return steady.length > 0 ? median(steady) / 1e6 : 0;
}

/** The signal that asked the bench to stop: it stops after the run in progress and cleans up as after a failure. */
let interrupted: NodeJS.Signals | undefined;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupted = signal;
    process.stderr.write(`\n${signal}: stopping after the run in progress, then cleaning up\n`);
  });
}

async function main(): Promise<void> {
  const needs: Prerequisite[] = ['root', 'dpdk', 'hugepages', 'hugetlb-cgroup', ...(envs.includes('docker') ? (['docker'] as const) : [])];
  const missing = await missingPrerequisites(needs);
  if (missing.length > 0) throw new Error(`bench:dataplane cannot run here:\n  - ${missing.join('\n  - ')}`);
  if (envs.includes('docker')) await buildImages(['l2fwd']);

  const unlock = await lockHugepages();
  const pages = new ExtraHugepages();
  const tree = new TempTree('nfv-bench-dataplane');
  const samples = new Map<string, Sample[]>();
  const runtimes: Record<Exclude<Env, 'host'>, ContainerRuntime | undefined> = {
    isolated: envs.includes('isolated') ? new SandboxRuntime(tree.path('sandbox')) : undefined,
    docker: envs.includes('docker') ? new DockerRuntime() : undefined,
  };
  try {
    pages.ensureFree(64);
    const bus = new FakePciBus(tree.path('fake-sys'), []);
    let serial = 0;

    const runtimeOf = (env: Exclude<Env, 'host'>) => runtimes[env]!;

    /** The roles of a mode on the host: a hugetlbfs mount of the allocation's size each and a memif directory, testpmd pinned with taskset. */
    async function startOnHost(mode: Mode): Promise<Vnf[]> {
      const runDir = tree.path(`host-${++serial}`);
      const linkDir = posix.join(runDir, 'memif');
      mkdirSync(linkDir, { recursive: true });
      const started: Vnf[] = [];
      // The chain's server first, so that the client connects at once.
      for (const role of [...roles(mode)].reverse()) {
        const hugeDir = posix.join(runDir, `hugepages-${role.name}`);
        mkdirSync(hugeDir);
        await execFileAsync('mount', ['-t', 'hugetlbfs', '-o', `pagesize=2M,size=${ALLOCATION}`, 'nodev', hugeDir]);
        const app = new HostProcess(role.name, [role.cpu], 'dpdk-testpmd', hostTestpmdArgs(role, hugeDir, linkDir));
        started.unshift(stoppable(app));
        await app.waitFor('forwarding', /packet forwarding - ports=/);
      }
      return started;
    }

    /**
     * Starts the roles of a mode as VNFs of a one-node cluster made for the run: placed by the
     * controller's plan on the roles' CPUs (the only isolated ones), prepared by the node agent,
     * each pod run by `runtime`; testpmd's options are the VNF's spec.args.
     */
    async function deploy(mode: Mode, runtime: ContainerRuntime): Promise<{ vnfs: Vnf[]; cleanup: () => Promise<void> }> {
      serial++;
      const modeRoles = roles(mode);
      const cluster = await OneNodeCluster.start({
        stateRoot: tree.path(`state-${serial}`),
        isolatedCpus: modeRoles.map((r) => r.cpu),
        poolPages: (modeRoles.length * ALLOCATION) / (2 * MiB),
        pciBus: bus,
      });
      const pods: KubeletPod[] = [];
      const cleanup = async () => {
        for (const pod of pods) await pod.delete();
        await cluster.stop();
      };
      try {
        const vnfs = modeRoles.map((role) => {
          const peer = modeRoles.find((other) => other !== role)?.name;
          return cluster.create(role.name, {
            image: IMAGES.l2fwd,
            cpus: { count: 1 },
            hugepages: { pageSize: '2Mi', amount: `${ALLOCATION / MiB}Mi`, pool: OneNodeCluster.POOL },
            links: role.link && peer ? [{ name: 'bench', peer, role: role.link }] : [],
            args: [...role.vdevs.flatMap((v) => ['--vdev', v]), '--', ...role.forwarding, ...common],
          });
        });
        const order = [...vnfs].sort((a, b) => a.metadata.name!.localeCompare(b.metadata.name!));
        for (const vnf of order) {
          const { pod } = cluster.place(vnf);
          const role = modeRoles.find((r) => r.name === vnf.metadata.name)!;
          if (vnf.status!.placement!.cpus !== String(role.cpu)) throw new Error(`${mode}: the controller placed ${role.name} on CPU ${vnf.status!.placement!.cpus}, not ${role.cpu}`);
          pods.push(await startVnfPod(cluster, vnf, pod, { cgroupTop: BENCH_CGROUPS, runtime }));
        }
        const podOf = (role: Role) => pods.find((p) => p.pod.metadata!.labels![VNF_NAME_LABEL] === role.name)!;
        const started: Vnf[] = [];
        // The chain's server first, so that the client connects at once.
        for (const role of [...modeRoles].reverse()) {
          const container = podOf(role).start(VNF_CONTAINER);
          await container.waitFor('forwarding', /packet forwarding - ports=/);
          started.unshift(stoppable(container));
        }
        return { vnfs: started, cleanup };
      } catch (err) {
        await cleanup();
        throw err;
      }
    }

    async function run(mode: Mode, env: Env): Promise<Sample> {
      const busyBefore = await waitForQuiet();
      let started: Vnf[] = [];
      let deployed: Awaited<ReturnType<typeof deploy>> | undefined;
      try {
        if (env === 'host') {
          started = await startOnHost(mode);
        } else {
          deployed = await deploy(mode, runtimeOf(env));
          started = deployed.vnfs;
        }
        await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
        const outputs: string[] = [];
        for (const vnf of started) outputs.push(await vnf.stop());
        const report = parseTestpmdOutput(outputs[0]!);
        const mpps = runMpps(report.stats, roles(mode)[0]!.measuredPorts);
        if (mpps === 0 || report.cyclesPerPacket === undefined) throw new Error(`${mode}/${env}: no traffic measured; output:\n${outputs[0]!.slice(-3000)}`);
        return { mpps, cyclesPerPacket: report.cyclesPerPacket, busyBefore };
      } finally {
        // A run that failed half-way leaves processes: gone before their mounts and cgroups go.
        for (const vnf of started) await vnf.kill();
        await deployed?.cleanup();
        if (env === 'host') {
          await unmountAllUnder(tree.dir);
          // Only on the host does EAL's runtime directory outlive the run (the others have their own /run).
          for (const role of roles(mode)) rmSync(`/run/dpdk/bench-${role.name}`, { recursive: true, force: true });
        }
      }
    }

    for (const mode of modes) {
      for (let i = 0; i < runs; i++) {
        for (const env of envs) {
          if (interrupted) throw new Error(`bench:dataplane interrupted by ${interrupted}; cleaned up`);
          const sample = await run(mode, env);
          const key = `${mode}/${env}`;
          samples.set(key, [...(samples.get(key) ?? []), sample]);
          process.stderr.write(`  ${key} run ${i + 1}/${runs}: ${sample.mpps.toFixed(2)} Mpps, ${sample.cyclesPerPacket.toFixed(1)} cycles/packet (machine ${(sample.busyBefore * 100).toFixed(0)}% busy before)\n`);
        }
      }
    }
  } finally {
    for (const runtime of Object.values(runtimes)) await runtime?.removeContainers();
    removeKubeletCgroups(BENCH_CGROUPS);
    await unmountAllUnder(tree.dir);
    await tree.cleanup();
    pages.cleanup();
    unlock();
  }
  printTable(samples);
}

/** Relative spread of a metric's runs: (max - min) / median, averaged over the environments. */
function spread(lists: number[][]): number {
  return lists.reduce((sum, values) => sum + (Math.max(...values) - Math.min(...values)) / median(values), 0) / lists.length;
}

function printTable(samples: Map<string, Sample[]>): void {
  const label: Record<Mode, string> = { io: 'io net_null', macswap: 'macswap net_null', ring: 'io net_ring', memif: 'memif chain' };
  const rows = [['mode', 'env', 'Mpps min', 'median', 'max', 'cyc/pkt min', 'median', 'max', 'Mpps ratio', 'cyc ratio', 'judged on', `>= ${TARGET}`, 'runs on a busy machine']];
  for (const mode of modes) {
    const host = samples.get(`${mode}/host`);
    const all = envs.map((env) => samples.get(`${mode}/${env}`)!);
    // Judged on the metric whose runs spread less in this mode, as the steadier of the two.
    const byCycles = spread(all.map((list) => list.map((s) => s.cyclesPerPacket))) < spread(all.map((list) => list.map((s) => s.mpps)));
    for (const env of envs) {
      const list = samples.get(`${mode}/${env}`)!;
      const mpps = list.map((s) => s.mpps);
      const cycles = list.map((s) => s.cyclesPerPacket);
      const ratio = host && env !== 'host' ? { mpps: median(mpps) / median(host.map((s) => s.mpps)), cycles: median(host.map((s) => s.cyclesPerPacket)) / median(cycles) } : undefined;
      const judged = ratio && (byCycles ? ratio.cycles : ratio.mpps);
      rows.push([
        label[mode],
        env,
        ...[Math.min(...mpps), median(mpps), Math.max(...mpps)].map((v) => v.toFixed(2)),
        ...[Math.min(...cycles), median(cycles), Math.max(...cycles)].map((v) => v.toFixed(1)),
        ratio ? ratio.mpps.toFixed(3) : '',
        ratio ? ratio.cycles.toFixed(3) : '',
        ratio ? (byCycles ? 'cyc/pkt' : 'Mpps') : '',
        judged === undefined ? '' : judged >= TARGET ? 'yes' : 'NO',
        String(list.filter((s) => s.busyBefore >= 0.15).length),
      ]);
    }
  }
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  console.log(`\nbench:dataplane: ${runs} runs of ${seconds} s per mode and environment, interleaved. Mpps: packets received per`);
  console.log('second over the measured ports. Ratios of medians: env/host for Mpps, host/env for cycles/packet (above 1 is better).\n');
  for (const row of rows) console.log(row.map((cell, column) => (column < 2 || column === 10 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  '));
  console.log('\nThe machine has 2 CPUs: single-VNF modes run on the last; the memif chain needs both, and the first one');
  console.log('also runs everything else, so other work on the machine shows most there ("busy" = over 15% before the run).');
}

await main();
