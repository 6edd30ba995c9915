import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { runCommand } from './command.js';

/** One line of /proc/self/mountinfo. */
export interface MountEntry {
  mountId: number;
  parentId: number;
  /** `major:minor` of the filesystem's device. */
  device: string;
  /** Root of the mount within its filesystem. */
  root: string;
  mountPoint: string;
  /** Per-mount options (rw, nosuid, ...). */
  mountOptions: string[];
  fsType: string;
  source: string;
  /** Per-superblock options (for hugetlbfs: pagesize=2M, size=...). */
  superOptions: string[];
}

// mountinfo escapes space, tab, newline and backslash as octal.
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

/** Parses the text of a mountinfo file. */
export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const fields = line.split(' ');
    const separator = fields.indexOf('-');
    if (separator < 6 || fields.length < separator + 4) continue;
    entries.push({
      mountId: Number(fields[0]),
      parentId: Number(fields[1]),
      device: fields[2]!,
      root: unescapeMountField(fields[3]!),
      mountPoint: unescapeMountField(fields[4]!),
      mountOptions: fields[5]!.split(','),
      fsType: fields[separator + 1]!,
      source: unescapeMountField(fields[separator + 2]!),
      superOptions: fields[separator + 3]!.split(','),
    });
  }
  return entries;
}

/** A mount to make. */
export interface MountRequest {
  source: string;
  target: string;
  fsType: string;
  /** `-o` options, each validated by the caller (numbers and fixed words only). */
  options: string[];
}

/**
 * Mounting and unmounting. The agent runs in the host's mount namespace (or passes `nsenter`), so
 * what it mounts under the state root is what kubelet hands to the pods.
 */
export interface Mounter {
  /** Mounts a filesystem. */
  mount(request: MountRequest): Promise<void>;
  /** Bind-mounts `source` on `target`, read-only when asked. */
  bind(source: string, target: string, options?: { readOnly?: boolean }): Promise<void>;
  /** Unmounts the top mount at `target`. */
  unmount(target: string): Promise<void>;
  /** The current mount table. */
  mounts(): Promise<MountEntry[]>;
}

/** Options of a {@link CommandMounter}. */
export interface CommandMounterOptions {
  /** procfs root whose self/mountinfo is read. Default `/proc`. */
  procRoot?: string;
  /**
   * Mount namespace file to enter for every mount and unmount (e.g. `/proc/1/ns/mnt` when the agent
   * runs in a container with hostPID). Default: the agent's own namespace, which then needs the
   * state root mounted with Bidirectional propagation.
   */
  mountNamespace?: string;
  /**
   * Mount table to read. Default `<procRoot>/1/mountinfo` with `mountNamespace` (the host's view,
   * where the mounts are made), else `<procRoot>/self/mountinfo`.
   */
  mountInfoPath?: string;
}

/** A {@link Mounter} that runs mount(8) and umount(8) with argument vectors. */
export class CommandMounter implements Mounter {
  private readonly mountInfoPath: string;
  private readonly mountNamespace?: string;

  constructor(options: CommandMounterOptions = {}) {
    const procRoot = options.procRoot ?? '/proc';
    this.mountNamespace = options.mountNamespace;
    this.mountInfoPath = options.mountInfoPath ?? posix.join(procRoot, options.mountNamespace ? '1/mountinfo' : 'self/mountinfo');
  }

  async mount(request: MountRequest): Promise<void> {
    const args = ['-t', request.fsType];
    if (request.options.length > 0) args.push('-o', request.options.join(','));
    args.push('--', request.source, request.target);
    await this.run('mount', args);
  }

  async bind(source: string, target: string, options: { readOnly?: boolean } = {}): Promise<void> {
    await this.run('mount', ['--bind', '--', source, target]);
    if (options.readOnly) await this.run('mount', ['-o', 'remount,bind,ro', '--', target]);
  }

  async unmount(target: string): Promise<void> {
    await this.run('umount', ['--', target]);
  }

  async mounts(): Promise<MountEntry[]> {
    return parseMountInfo(await readFile(this.mountInfoPath, 'utf8'));
  }

  private async run(program: string, args: string[]): Promise<void> {
    if (this.mountNamespace) await runCommand('nsenter', [`--mount=${this.mountNamespace}`, '--', program, ...args]);
    else await runCommand(program, args);
  }
}

/** The top-most mount at exactly `path`, if any. */
export function mountAt(mounts: readonly MountEntry[], path: string): MountEntry | undefined {
  const normalized = posix.resolve(path);
  let found: MountEntry | undefined;
  for (const entry of mounts) if (entry.mountPoint === normalized) found = entry;
  return found;
}

/** Mounts at `dir` or below it, deepest first (the order to unmount them in). */
export function mountsUnder(mounts: readonly MountEntry[], dir: string): MountEntry[] {
  const normalized = posix.resolve(dir);
  const prefix = normalized.endsWith('/') ? normalized : `${normalized}/`;
  return mounts
    .filter((entry) => entry.mountPoint === normalized || entry.mountPoint.startsWith(prefix))
    .map((entry, index) => ({ entry, index }))
    .sort((a, b) => b.entry.mountPoint.length - a.entry.mountPoint.length || b.index - a.index)
    .map(({ entry }) => entry);
}
