import { constants } from 'node:fs';
import { open, readFile, readdir, readlink } from 'node:fs/promises';

/** Whether `err` is a Node system error with this errno code (ENOENT, EBUSY, ...). */
export function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === code;
}

/** A write to a kernel attribute (sysfs, procfs, cgroupfs) that the kernel refused. */
export class KernelWriteError extends Error {
  override readonly name = 'KernelWriteError';
  /** errno code, e.g. EBUSY, EINVAL. */
  readonly code: string;

  constructor(
    readonly path: string,
    readonly value: string,
    cause: unknown,
  ) {
    const code = (cause as NodeJS.ErrnoException).code ?? 'EIO';
    super(`writing "${value.trim()}" to ${path} failed: ${code} (${(cause as Error).message})`, { cause });
    this.code = code;
  }
}

/** Reads a kernel text file, trimmed; `undefined` when it does not exist. */
export async function readKernelText(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return undefined;
    throw err;
  }
}

/** Reads a kernel file holding one integer; `undefined` when the file does not exist. */
export async function readKernelInt(path: string): Promise<number | undefined> {
  const text = await readKernelText(path);
  if (text === undefined) return undefined;
  const value = Number.parseInt(text, 10);
  if (!Number.isFinite(value)) throw new Error(`${path} holds "${text}", not an integer`);
  return value;
}

/**
 * Writes one value to a kernel attribute with a single write(2), opened as `echo value > path`
 * opens it (O_WRONLY|O_TRUNC) but without a shell. Kernel attributes act on each write, so the
 * value is never split; the file is never created, so a missing attribute is an error.
 */
export async function writeKernelAttribute(path: string, value: string): Promise<void> {
  let handle;
  try {
    handle = await open(path, constants.O_WRONLY | constants.O_TRUNC);
    await handle.write(value);
  } catch (err) {
    throw new KernelWriteError(path, value, err);
  } finally {
    await handle?.close();
  }
}

/** Basename of the target of a symlink (a sysfs `driver` or `iommu_group` link); `undefined` when absent. */
export async function readLinkName(path: string): Promise<string | undefined> {
  try {
    const target = await readlink(path);
    return target.slice(target.lastIndexOf('/') + 1);
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'EINVAL') || isErrno(err, 'ENOTDIR')) return undefined;
    throw err;
  }
}

/** Entries of a directory, sorted; empty when it does not exist. */
export async function listDir(path: string): Promise<string[]> {
  try {
    return (await readdir(path)).sort();
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return [];
    throw err;
  }
}
