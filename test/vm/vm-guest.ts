/**
 * Boots the test VM (a Debian bookworm guest on pure cgroup v2, built by
 * hack/vm/build-vm-image.sh) with qemu, runs one job in it as root and returns what the job
 * printed and its exit code.
 *
 * The guest sees the host's repo (read-only, at the same path, so absolute paths and jest's
 * rootDir match) and the host's node binary (same glibc); the job's script and its output travel
 * through a writable per-run directory. The root disk is a qemu snapshot: nothing a job writes
 * survives it, so one cached image serves every run. qemu runs under `setpriv --pdeathsig` and is
 * SIGKILLed on timeout and in `finally`: no qemu outlives the run, not even when the test process
 * itself is killed.
 *
 * The kernel boots through its PVH entry point (an ELF vmlinux, no BIOS and no real-mode setup).
 * Where KVM is kvm_pvm, software nested virtualization as on this project's machines, KVM cannot
 * run Debian's kernel at all (see {@link kvmUnusableReason}), and the guest runs under TCG.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileAsync } from '../host/helpers/host-fixtures.js';

/** Repo root on the host, shared read-only into the guest at the same path. */
export const REPO_ROOT = posix.resolve(posix.dirname(fileURLToPath(import.meta.url)), '../..');
const BUILD_SCRIPT = posix.join(REPO_ROOT, 'hack/vm/build-vm-image.sh');
/** What the guest kernel writes to its serial console is kept up to this many bytes (the tail). */
const CONSOLE_LIMIT = 64 * 1024;

/**
 * How qemu runs the guest's CPU. `kvm` is the real thing; `tcg` is qemu's emulator, far slower
 * but enough for functional tests (cgroups, mounts) where KVM cannot boot the guest.
 */
export type Accelerator = 'kvm' | 'tcg';

/** The accelerator to use and, when it is not KVM, why. */
export interface AcceleratorChoice {
  accelerator: Accelerator;
  /** Set when KVM was wanted but cannot run the guest here. */
  fallbackReason?: string;
}

/**
 * NFV_VM_ACCELERATOR (`kvm` or `tcg`) when set, so `kvm` fails where KVM cannot run the guest.
 * Otherwise KVM where it can run the guest, else TCG with the reason, which callers must show.
 */
export function chooseAccelerator(): AcceleratorChoice {
  const chosen = process.env.NFV_VM_ACCELERATOR;
  if (chosen === 'kvm' || chosen === 'tcg') return { accelerator: chosen };
  if (chosen !== undefined) throw new Error(`NFV_VM_ACCELERATOR=${chosen}: use kvm or tcg`);
  const kvmProblem = kvmUnusableReason();
  return kvmProblem ? { accelerator: 'tcg', fallbackReason: kvmProblem } : { accelerator: 'kvm' };
}

/** One job for the VM. */
export interface VmJob {
  /** A bash script, run as root in the guest with the repo as working directory. */
  script: string;
  /** The whole run, boot included; qemu is killed past it. */
  timeoutMs: number;
  /** Default `kvm`; see {@link Accelerator}. */
  accelerator?: Accelerator;
  /** Guest RAM in MiB. Default 2048. */
  memoryMiB?: number;
  /** Guest vCPUs. Default 1. */
  vcpus?: number;
}

/** What a job left behind. */
export interface VmJobResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** The tail of the guest's serial console (kernel messages, init's errors). */
  console: string;
  durationMs: number;
}

/** The job did not finish: timeout, guest crash, qemu failure. Carries the console tail. */
export class VmJobError extends Error {
  constructor(
    message: string,
    readonly console: string,
  ) {
    super(`${message}\n--- guest console (tail) ---\n${console.slice(-4000)}`);
    this.name = 'VmJobError';
  }
}

/** Files of a built VM image (see hack/vm/build-vm-image.sh). */
export interface VmImage {
  dir: string;
  kernel: string;
  initrd: string;
  rootfs: string;
}

/** Builds the VM image if it is not cached yet (minutes, once), and returns its files. */
export async function ensureVmImage(): Promise<VmImage> {
  const { stdout } = await execFileAsync(BUILD_SCRIPT, [], { maxBuffer: 16 * 1024 * 1024 });
  const dir = stdout.trim().split('\n').pop()!;
  const image = { dir, kernel: posix.join(dir, 'vmlinux'), initrd: posix.join(dir, 'initrd.img'), rootfs: posix.join(dir, 'rootfs.ext4') };
  for (const file of [image.kernel, image.initrd, image.rootfs]) {
    if (!existsSync(file)) throw new Error(`${BUILD_SCRIPT} printed ${dir}, which has no ${posix.basename(file)}: delete the directory and build again`);
  }
  return image;
}

/** Why KVM cannot run the guest on this machine, or undefined when it can. */
export function kvmUnusableReason(): string | undefined {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch (err) {
    return `KVM is not usable: /dev/kvm cannot be opened read-write (${(err as Error).message})`;
  }
  if (existsSync('/sys/module/kvm_pvm') && !existsSync('/sys/module/kvm_intel') && !existsSync('/sys/module/kvm_amd')) {
    return (
      "KVM here is kvm_pvm (software nested virtualization without VMX/SVM), which runs only PVM-enabled guest kernels: Debian's kernel " +
      'never leaves the bzImage setup code, and booted through PVH it stops with "KVM internal error. Suberror: 1" (emulation failure) ' +
      'on cmpxchg16b, xrstor, then int3'
    );
  }
  return undefined;
}

/**
 * qemu's accelerator and CPU model. TCG runs single-threaded: the guest keeps every vCPU, but they
 * take turns on one host thread. Multi-threaded TCG (qemu 7.2, Debian bookworm's) loses guest
 * state under this suite: a process that SIGKILLs itself (test/host/crash-safety.test.ts) while
 * another of its threads runs V8-compiled WebAssembly died of SIGSEGV in 6 of 25 runs, its core
 * showing that thread resumed one byte inside a 6-byte `mov` and executing the garbage there; the
 * same runs single-threaded: 0 of 25, with or without PKU in the CPU model. It costs about a fifth
 * of the speed of code that had two host threads, and leaves a core for the rest of the machine.
 */
function cpuOptions(accelerator: Accelerator): string[] {
  if (accelerator === 'tcg') return ['-accel', 'tcg,thread=single', '-cpu', 'max'];
  return ['-enable-kvm', '-cpu', 'host'];
}

/** The qemu command line of one run. */
export function qemuArgs(image: VmImage, job: VmJob, jobDir: string, nodeDir: string): string[] {
  const kernelArgs = [
    'console=ttyS0',
    'root=/dev/vda',
    'ro',
    'init=/usr/local/sbin/nfv-vm-init',
    // Pure cgroup v2: no v1 hierarchy can be mounted, whatever runs in the guest.
    'cgroup_no_v1=all',
    // A dying init panics the kernel, which then reboots, which -no-reboot turns into qemu's exit.
    'panic=-1',
    'quiet',
    `nfv_repo=${REPO_ROOT}`,
    `nfv_node=${nodeDir}`,
  ];
  const share = (tag: string, path: string, readonly: boolean) => [
    '-virtfs',
    `local,path=${path},mount_tag=${tag},security_model=none${readonly ? ',readonly=on' : ''}`,
  ];
  return [
    ...cpuOptions(job.accelerator ?? 'kvm'),
    '-m',
    String(job.memoryMiB ?? 2048),
    '-smp',
    String(job.vcpus ?? 1),
    '-nodefaults',
    '-display',
    'none',
    '-no-reboot',
    '-serial',
    'stdio',
    '-kernel',
    image.kernel,
    '-initrd',
    image.initrd,
    '-append',
    kernelArgs.join(' '),
    '-drive',
    `file=${image.rootfs},format=raw,if=virtio,snapshot=on`,
    ...share('job', jobDir, false),
    ...share('repo', REPO_ROOT, true),
    ...share('node', nodeDir, true),
  ];
}

/** The program and arguments that start qemu, killed with its parent. */
function launcher(args: string[]): [string, string[]] {
  return ['setpriv', ['--pdeathsig', 'SIGKILL', '--', 'qemu-system-x86_64', ...args]];
}

/**
 * Boots the VM, runs `job.script` in it and returns its result; throws {@link VmJobError} when
 * the job does not finish. The job's exit code is its own: a failing job is a result, not an error.
 */
export async function runInVm(job: VmJob, image?: VmImage): Promise<VmJobResult> {
  const accelerator = job.accelerator ?? 'kvm';
  const kvmProblem = accelerator === 'kvm' ? kvmUnusableReason() : undefined;
  if (kvmProblem) throw new Error(kvmProblem);
  const vm = image ?? (await ensureVmImage());
  const jobDir = mkdtempSync('/tmp/nfv-vm-job-');
  const started = Date.now();
  let consoleTail = '';
  try {
    writeFileSync(posix.join(jobDir, 'run'), job.script);
    const nodeDir = posix.dirname(realpathSync(process.execPath));
    const [program, args] = launcher(qemuArgs(vm, job, jobDir, nodeDir));
    const qemu = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const append = (chunk: Buffer) => (consoleTail = (consoleTail + chunk.toString()).slice(-CONSOLE_LIMIT));
    qemu.stdout.on('data', append);
    qemu.stderr.on('data', append);
    const exited = new Promise<number | null>((resolve, reject) => {
      qemu.once('error', reject);
      qemu.once('exit', (code) => resolve(code));
    });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), job.timeoutMs)));
    try {
      const outcome = await Promise.race([exited, timedOut]);
      if (outcome === 'timeout') throw new VmJobError(`the VM job did not finish within ${job.timeoutMs} ms (${accelerator})`, consoleTail);
      const exitCodeFile = posix.join(jobDir, 'exit-code');
      if (!existsSync(exitCodeFile)) throw new VmJobError(`qemu exited with ${outcome} before the job finished (${accelerator})`, consoleTail);
      return {
        exitCode: Number(readFileSync(exitCodeFile, 'utf8').trim()),
        stdout: readFileSync(posix.join(jobDir, 'stdout'), 'utf8'),
        stderr: readFileSync(posix.join(jobDir, 'stderr'), 'utf8'),
        console: consoleTail,
        durationMs: Date.now() - started,
      };
    } finally {
      clearTimeout(timer);
      if (qemu.exitCode === null && qemu.signalCode === null) {
        qemu.kill('SIGKILL');
        await exited.catch(() => undefined);
      }
    }
  } finally {
    rmSync(jobDir, { recursive: true, force: true });
  }
}
