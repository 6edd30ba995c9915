/**
 * npm run bench:dataplane: the same dpdk-testpmd forwarding, on the same lcores, in three
 * environments, to measure what the node agent's isolation costs:
 *
 *   host      testpmd pinned with taskset, nothing else;
 *   isolated  the agent's kind of isolation in a namespace sandbox: cpuset and hugetlb cgroups,
 *             masked CPU and PCI sysfs, hugetlbfs with size=, own mount, pid and network
 *             namespaces (test/host/dataplane/vnf-isolation.ts builds it, as the agent would);
 *   docker    the real thing: the VNF placed by the controller's plan, its pod rendered, the host
 *             and the pod cgroup prepared by the node agent, the pod run with Docker
 *             (test/host/dataplane/one-node-cluster.ts and kubelet-pod.ts, as the data-plane
 *             tests run it).
 *
 * Modes: io and macswap between two net_null ports, io between two net_ring ports (a burst
 * sent with --tx-first circulates), and the memif chain of two VNFs (edge: memif <-> net_null,
 * io; loop: memif, macswap back). Single-VNF modes run on the last CPU (main and forwarding lcore
 * both on it); the chain puts edge on the first CPU and loop on the last.
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
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseCpuList } from '../../src/api/cpu-list.js';
import { VNF_NAME_LABEL } from '../../src/api/group.js';
import { ExtraHugepages, lockHugepages, TempTree } from '../../test/host/helpers/host-fixtures.js';
import { removeTestContainers } from '../../test/host/dataplane/docker-container.js';
import { buildImages, IMAGES } from '../../test/host/dataplane/images.js';
import { removeKubeletCgroups, type KubeletPod } from '../../test/host/dataplane/kubelet-pod.js';
import { OneNodeCluster } from '../../test/host/dataplane/one-node-cluster.js';
import { missingPrerequisites, type Prerequisite } from '../../test/host/dataplane/prerequisites.js';
import { SandboxedApp } from '../../test/host/dataplane/sandbox.js';
import { lcoreArgs, parseTestpmdOutput, type PortStats } from '../../test/host/dataplane/testpmd-output.js';
import { startVnfPod, VNF_CONTAINER } from '../../test/host/dataplane/vnf-pod-startup.js';
import { FakePciBus, VnfIsolation, type PodMount } from '../../test/host/dataplane/vnf-isolation.js';

const MiB = 2 ** 20;
/** Hugepages of each VNF; EAL preallocates all of it (--socket-mem), as the operator renders it. */
const ALLOCATION = 48 * MiB;
const MODES = ['io', 'macswap', 'ring', 'memif'] as const;
const ENVS = ['host', 'isolated', 'docker'] as const;
type Mode = (typeof MODES)[number];
type Env = (typeof ENVS)[number];
const TARGET = 0.98;
const WARMUP_BLOCKS = 2;
const LINK_MOUNT = '/run/memif/bench';
/** Top cgroup of the docker environment's pods in every hierarchy. */
const BENCH_CGROUPS = `nfv-bench-${process.pid}`;

interface Sample {
  mpps: number;
  cyclesPerPacket: number;
  /** Share of the CPUs busy just before the run, with nothing of ours running. */
  busyBefore: number;
}

/** One testpmd of a run, whichever environment runs it. */
interface Vnf {
  output(): string;
  stop(): Promise<string>;
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
const memif = (role: 'server' | 'client') => `net_memif0,role=${role},id=0,socket=${LINK_MOUNT}/memif.sock,socket-abstract=no`;
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

function ealArgs(role: Role, hugeDir: string, linkDir: string): string[] {
  const vdevs = [...(role.link ? [memif(role.link).replace(LINK_MOUNT, linkDir)] : []), ...role.vdevs];
  return [...lcoreArgs([role.cpu]), '--huge-dir', hugeDir, '--file-prefix', `bench-${role.name}`, '--socket-mem', String(ALLOCATION / MiB), ...vdevs.flatMap((v) => ['--vdev', v])];
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

async function main(): Promise<void> {
  const needs: Prerequisite[] = ['root', 'dpdk', 'hugepages', 'hugetlb-cgroup', ...(envs.includes('docker') ? (['docker'] as const) : [])];
  const missing = await missingPrerequisites(needs);
  if (missing.length > 0) throw new Error(`bench:dataplane cannot run here:\n  - ${missing.join('\n  - ')}`);
  if (envs.includes('docker')) await buildImages(['l2fwd']);

  const unlock = await lockHugepages();
  const pages = new ExtraHugepages();
  const tree = new TempTree('nfv-bench-dataplane');
  const samples = new Map<string, Sample[]>();
  try {
    pages.ensureFree(64);
    const bus = new FakePciBus(tree.path('fake-sys'), []);
    let serial = 0;

    /** Starts one role of a run on the host or in the namespace sandbox. */
    async function start(env: 'host' | 'isolated', role: Role, link: PodMount): Promise<{ vnf: Vnf; isolation: VnfIsolation }> {
      serial++;
      const isolation = await VnfIsolation.prepare(tree.path(`${role.name}-${env}-${serial}`), { name: `${role.name}-${serial}`, cpus: [role.cpu], hugepageBytes: ALLOCATION, pciDevices: [] }, bus, {
        cgroups: env === 'isolated',
      });
      // Outside a container the socket is at its host path: the EAL arguments name the host path.
      const testpmd = [...ealArgs(role, isolation.hugepageDir, link.source), '--', ...role.forwarding, ...common];
      const app = env === 'host' ? SandboxedApp.startOnHost(role.name, [role.cpu], 'dpdk-testpmd', testpmd) : SandboxedApp.start(role.name, isolation, 'dpdk-testpmd', testpmd);
      await app.waitFor(/packet forwarding - ports=/);
      return { isolation, vnf: { output: () => app.output, stop: async () => (await app.stop()).output } };
    }

    /**
     * Starts the roles of a mode as VNFs of a one-node cluster made for the run: placed by the
     * controller's plan on the roles' CPUs (the only isolated ones), prepared by the node agent,
     * each pod run with Docker; testpmd's options are the VNF's spec.args.
     */
    async function deploy(mode: Mode): Promise<{ vnfs: Vnf[]; cleanup: () => Promise<void> }> {
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
          pods.push(await startVnfPod(cluster, vnf, pod, BENCH_CGROUPS));
        }
        const podOf = (role: Role) => pods.find((p) => p.pod.metadata!.labels![VNF_NAME_LABEL] === role.name)!;
        const started: Vnf[] = [];
        // The chain's server first, so that the client connects at once.
        for (const role of [...modeRoles].reverse()) {
          const container = podOf(role).start(VNF_CONTAINER);
          await container.waitFor('forwarding', /packet forwarding - ports=/);
          started.unshift({
            output: () => container.output,
            stop: async () => {
              await container.stop();
              await container.waitFor('the final statistics', /Bye\.\.\./, 10_000).catch(() => undefined);
              return container.output;
            },
          });
        }
        return { vnfs: started, cleanup };
      } catch (err) {
        await cleanup();
        throw err;
      }
    }

    async function run(mode: Mode, env: Env): Promise<Sample> {
      const busyBefore = await waitForQuiet();
      const link = { source: tree.path(`memif-${++serial}`), target: LINK_MOUNT };
      mkdirSync(link.source, { recursive: true });
      const started: { vnf: Vnf; isolation?: VnfIsolation }[] = [];
      let deployed: Awaited<ReturnType<typeof deploy>> | undefined;
      try {
        if (env === 'docker') {
          deployed = await deploy(mode);
          started.push(...deployed.vnfs.map((vnf) => ({ vnf })));
        } else {
          // The chain's server first, so that the client connects at once.
          for (const role of [...roles(mode)].reverse()) started.unshift(await start(env, role, link));
        }
        await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
        const outputs: string[] = [];
        for (const { vnf } of started) outputs.push(await vnf.stop());
        const report = parseTestpmdOutput(outputs[0]!);
        const mpps = runMpps(report.stats, roles(mode)[0]!.measuredPorts);
        if (mpps === 0 || report.cyclesPerPacket === undefined) throw new Error(`${mode}/${env}: no traffic measured; output:\n${outputs[0]!.slice(-3000)}`);
        return { mpps, cyclesPerPacket: report.cyclesPerPacket, busyBefore };
      } finally {
        await deployed?.cleanup();
        for (const { isolation } of started) await isolation?.destroy();
        // Only on the host does EAL's runtime directory outlive the run (the others have their own /run).
        if (env === 'host') for (const role of roles(mode)) rmSync(`/run/dpdk/bench-${role.name}`, { recursive: true, force: true });
      }
    }

    for (const mode of modes) {
      for (let i = 0; i < runs; i++) {
        for (const env of envs) {
          const sample = await run(mode, env);
          const key = `${mode}/${env}`;
          samples.set(key, [...(samples.get(key) ?? []), sample]);
          process.stderr.write(`  ${key} run ${i + 1}/${runs}: ${sample.mpps.toFixed(2)} Mpps, ${sample.cyclesPerPacket.toFixed(1)} cycles/packet (machine ${(sample.busyBefore * 100).toFixed(0)}% busy before)\n`);
        }
      }
    }
  } finally {
    await removeTestContainers();
    removeKubeletCgroups(BENCH_CGROUPS);
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
