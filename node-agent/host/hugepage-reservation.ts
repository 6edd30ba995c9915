import { posix } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { PAGE_SIZE_BYTES, type PageSize } from '../../src/api/common.js';
import { readKernelInt, writeKernelAttribute } from './kernel-files.js';

/** Hugepage counters of one size on one NUMA node. */
export interface HugepageCounts {
  /** nr_hugepages: persistent pages the node holds. */
  total: number;
  /** free_hugepages. */
  free: number;
  /** surplus_hugepages (overcommit, not ours to count). */
  surplus: number;
}

/** What a reservation attempt ended with. */
export interface ReservationResult {
  requested: number;
  /** What the kernel holds now: may be less than requested (fragmentation) or more (pages in use). */
  allocated: number;
  /** Writes made to nr_hugepages. */
  attempts: number;
}

/** Options of {@link HugepageReservation}. */
export interface HugepageReservationOptions {
  /** procfs root, for vm/compact_memory. Default `/proc`. */
  procRoot?: string;
  /** Writes of nr_hugepages before giving up on a shortfall. Default 4. */
  attempts?: number;
  /** Pause between attempts, in ms. Default 200. */
  retryDelayMs?: number;
  /** Ask the kernel to compact memory before retrying, which makes contiguous (1Gi) pages likelier. Default true. */
  compactBeforeRetry?: boolean;
  /** Writes a kernel attribute. Default {@link writeKernelAttribute}; tests give a fake kernel's. */
  writeAttribute?: (path: string, value: string) => Promise<void>;
}

/** sysfs directory name of a page size: hugepages-2048kB. */
export function hugepageDirName(pageSize: PageSize): string {
  return `hugepages-${PAGE_SIZE_BYTES[pageSize] / 1024}kB`;
}

/**
 * Runtime hugepage reservation per NUMA node through
 * /sys/devices/system/node/nodeN/hugepages/hugepages-<kB>kB/nr_hugepages: no reboot and no kubelet
 * restart. The kernel may give fewer pages than asked when memory is fragmented; the result says
 * what it actually holds.
 */
export class HugepageReservation {
  private readonly procRoot: string;
  private readonly attempts: number;
  private readonly retryDelayMs: number;
  private readonly compactBeforeRetry: boolean;
  private readonly writeAttribute: (path: string, value: string) => Promise<void>;

  constructor(
    private readonly sysfsRoot: string,
    options: HugepageReservationOptions = {},
  ) {
    this.procRoot = options.procRoot ?? '/proc';
    this.attempts = Math.max(1, options.attempts ?? 4);
    this.retryDelayMs = options.retryDelayMs ?? 200;
    this.compactBeforeRetry = options.compactBeforeRetry ?? true;
    this.writeAttribute = options.writeAttribute ?? writeKernelAttribute;
  }

  /** Directory of one size on one NUMA node. */
  directory(numaNode: number, pageSize: PageSize): string {
    return posix.join(this.sysfsRoot, 'devices/system/node', `node${numaNode}`, 'hugepages', hugepageDirName(pageSize));
  }

  /** Current counters; throws if the node or size does not exist. */
  async read(numaNode: number, pageSize: PageSize): Promise<HugepageCounts> {
    const dir = this.directory(numaNode, pageSize);
    const total = await readKernelInt(posix.join(dir, 'nr_hugepages'));
    if (total === undefined) throw new Error(`${dir} does not exist: NUMA node ${numaNode} has no ${pageSize} hugepages on this kernel`);
    return {
      total,
      free: (await readKernelInt(posix.join(dir, 'free_hugepages'))) ?? 0,
      surplus: (await readKernelInt(posix.join(dir, 'surplus_hugepages'))) ?? 0,
    };
  }

  /**
   * Sets nr_hugepages to `target`, retrying a bounded number of times while the kernel gives
   * fewer. Never asks for fewer than `floor` (pages held by running VNFs), whatever `target` says.
   */
  async reserve(numaNode: number, pageSize: PageSize, target: number, floor = 0): Promise<ReservationResult> {
    if (!Number.isSafeInteger(target) || target < 0) throw new RangeError(`hugepage target ${target} is not a page count`);
    const requested = Math.max(target, floor);
    const file = posix.join(this.directory(numaNode, pageSize), 'nr_hugepages');
    let attempts = 0;
    let allocated = (await this.read(numaNode, pageSize)).total;
    while (allocated !== requested && attempts < this.attempts) {
      if (attempts > 0) {
        if (this.compactBeforeRetry) await this.compact();
        await delay(this.retryDelayMs);
      }
      attempts++;
      await this.writeAttribute(file, `${requested}\n`);
      allocated = (await this.read(numaNode, pageSize)).total;
      // Shrinking never needs a retry: what is still there is in use and the kernel keeps it.
      if (allocated >= requested) break;
    }
    return { requested, allocated, attempts };
  }

  private async compact(): Promise<void> {
    try {
      await this.writeAttribute(posix.join(this.procRoot, 'sys/vm/compact_memory'), '1\n');
    } catch {
      // Compaction is a hint; kernels without CONFIG_COMPACTION have no such file.
    }
  }
}
