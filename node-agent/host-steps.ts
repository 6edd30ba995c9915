import { mkdir, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { READY_FILE } from '../src/api/host-paths.js';
import { DriverBindingError, type UserspaceDriver } from './host/driver-binding.js';
import { isErrno } from './host/kernel-files.js';
import { mountsUnder } from './host/mounts.js';
import type { NodeHost } from './host/node-host.js';
import { PodCgroupMissingError } from './host/pod-cgroups.js';
import type { StepData } from './journal.js';
import type { VnfHostPlan } from './validate.js';

/** A host step failed; `reason` is the CamelCase NodePrepared reason to report. */
export class HostStepError extends Error {
  override readonly name = 'HostStepError';

  constructor(
    readonly reason: string,
    readonly step: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** One reversible change to the host. `apply` and `undo` are idempotent and safe on partial state. */
export interface HostStep {
  /** Journal key, e.g. `hugetlbfs`, `driver:0000:3b:00.0`, `ready:<pod uid>`. */
  name: string;
  /** Reads what undo will need before anything changes (the original driver). */
  capture?(): Promise<StepData>;
  /** Makes the change; may return more data for undo. */
  apply(data: StepData | undefined): Promise<StepData | void>;
  /** Reverses the change, given the data journaled with it. */
  undo(data: StepData | undefined): Promise<void>;
}

/** What steps need besides the plan and the host. */
export interface StepContext {
  /** Whether another VNF's journal still uses this memif directory (the link's other end). */
  memifDirInUse(dir: string): Promise<boolean>;
}

const POD_UID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Names of the host-stage steps of a plan, in the order they are applied. */
export function hostStepNames(plan: VnfHostPlan): string[] {
  return [
    'directories',
    'hugetlbfs',
    'pci-devices',
    'cpu-mask',
    ...plan.memifDirs.map((dir) => `memif:${dir}`),
    ...plan.devices.filter((device) => device.driver !== 'kernel').map((device) => `driver:${device.pciAddress}`),
  ];
}

/** Names of the pod-stage steps for one pod, in order. */
export function podStepNames(podUid: string): string[] {
  if (!POD_UID.test(podUid)) throw new RangeError(`"${podUid}" is not a pod UID`);
  return [`cgroups:${podUid}`, `ready:${podUid}`];
}

async function removeIfExists(path: string): Promise<void> {
  await rm(path, { force: true, recursive: true });
}

async function wrap<T>(reason: string, step: string, action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (err) {
    if (err instanceof HostStepError || err instanceof PodCgroupMissingError) throw err;
    if (err instanceof DriverBindingError) throw new HostStepError(err.reason, step, err.message, { cause: err });
    throw new HostStepError(reason, step, `${step}: ${(err as Error).message}`, { cause: err });
  }
}

/** The step called `name` for this plan (names come from the plan or from the journal). */
export function hostStep(name: string, plan: VnfHostPlan, host: NodeHost, context: StepContext): HostStep {
  const paths = plan.paths;
  const [kind, ...rest] = name.split(':');
  const argument = rest.join(':');
  switch (kind) {
    case 'directories':
      return {
        name,
        apply: () =>
          wrap('HostDirectoryFailed', name, async () => {
            for (const dir of [paths.root, paths.cpuMask, paths.readySignal, paths.pciDevices]) await mkdir(dir, { recursive: true, mode: 0o755 });
            await host.masks.prepareEmptyDir(paths.emptyDir);
          }),
        undo: () =>
          wrap('HostDirectoryFailed', name, async () => {
            const left = mountsUnder(await host.mounter.mounts(), paths.root);
            if (left.length > 0) throw new Error(`refusing to delete ${paths.root}: ${left.map((m) => m.mountPoint).join(', ')} still mounted`);
            await removeIfExists(paths.root);
          }),
      };
    case 'hugetlbfs':
      return {
        name,
        apply: () => wrap('HugetlbfsMountFailed', name, () => host.hugetlbfs.ensureMounted(paths.hugepages, plan.pageSize, plan.hugepageBytes)),
        // Files first: pages of files left in hugetlbfs stay charged to the cgroup that faulted them.
        undo: () => wrap('HugetlbfsMountFailed', name, () => host.hugetlbfs.ensureUnmounted(paths.hugepages)),
      };
    case 'pci-devices':
      return {
        name,
        apply: () => wrap('SysfsMaskFailed', name, () => host.masks.preparePciDevices(paths.pciDevices, plan.devices.map((d) => d.pciAddress))),
        undo: () => removeIfExists(paths.pciDevices),
      };
    case 'cpu-mask':
      return {
        name,
        apply: () => wrap('SysfsMaskFailed', name, () => host.masks.prepareCpuMask(paths.cpuMask, plan.cpus)),
        undo: () => removeIfExists(paths.cpuMask),
      };
    case 'memif': {
      if (!plan.memifDirs.includes(argument)) throw new RangeError(`${argument} is not a memif directory of VNF ${plan.uid}`);
      return {
        name,
        apply: () => wrap('MemifDirectoryFailed', name, async () => void (await mkdir(argument, { recursive: true, mode: 0o770 }))),
        undo: async () => {
          if (await context.memifDirInUse(argument)) return;
          await removeIfExists(argument);
          // The namespace directory goes with its last link.
          await rmdir(posix.dirname(argument)).catch(() => undefined);
        },
      };
    }
    case 'driver': {
      const device = plan.devices.find((d) => d.pciAddress === argument);
      if (!device || device.driver === 'kernel') throw new RangeError(`${argument} is not a device the plan of VNF ${plan.uid} binds`);
      return {
        name,
        capture: async () => ({ originalDriver: await host.drivers.currentDriver(argument) }),
        apply: () => wrap('DriverBindFailed', name, () => host.drivers.bind(argument, device.driver as UserspaceDriver)),
        undo: (data) => wrap('DriverRestoreFailed', name, () => host.drivers.restore(argument, String(data?.originalDriver ?? ''))),
      };
    }
    case 'cgroups': {
      if (!POD_UID.test(argument)) throw new RangeError(`"${argument}" is not a pod UID`);
      return {
        name,
        apply: () =>
          wrap('CgroupLimitFailed', name, async () => {
            const applied = await host.podCgroups.apply(argument, {
              cpus: plan.cpus,
              mems: [plan.numaNode],
              pageSize: plan.pageSize,
              hugepageBytes: plan.hugepageBytes,
            });
            return { ...applied } as StepData;
          }),
        // The pod's cgroups belong to kubelet and go with the pod; nothing of ours is left in them.
        undo: async () => undefined,
      };
    }
    case 'ready': {
      if (!POD_UID.test(argument)) throw new RangeError(`"${argument}" is not a pod UID`);
      const file = posix.join(paths.readySignal, READY_FILE);
      return {
        name,
        apply: () =>
          wrap('ReadySignalFailed', name, async () => {
            await mkdir(paths.readySignal, { recursive: true, mode: 0o755 });
            await writeFile(`${file}.tmp`, argument, { mode: 0o444 });
            await rename(`${file}.tmp`, file);
          }),
        undo: async () => {
          await removeIfExists(`${file}.tmp`);
          // A newer pod's signal is not ours to remove.
          const content = await readFile(file, 'utf8').catch((err: unknown) => (isErrno(err, 'ENOENT') ? undefined : Promise.reject(err)));
          if (content === argument) await rm(file, { force: true });
        },
      };
    }
    default:
      throw new RangeError(`unknown host step "${name}"`);
  }
}
