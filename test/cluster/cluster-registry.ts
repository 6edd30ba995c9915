/**
 * Records of running local clusters, so that a cluster whose owner died without cleaning up (a
 * Jest run killed with SIGKILL, a crashed demo) is reaped by the next cluster start.
 *
 * One JSON file per cluster in `~/.cache/nfv-operator/run/`: the owner's pid and start time, the
 * temp dir, and every process with its start time. A pid is only signalled when its start time
 * and command line still match the record, so a recycled pid is never killed.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { cacheRoot } from './tools.js';

/** Prefix of every local cluster's temp dir; the reaper removes nothing else. */
export const CLUSTER_TMP_PREFIX = 'nfv-cluster-';

/** One process of a recorded cluster. */
export interface RecordedProcess {
  name: string;
  pid: number;
  /** Field 22 of /proc/<pid>/stat (clock ticks after boot), or null where /proc is missing. */
  startTime: string | null;
}

/** What the run dir knows about one cluster. */
export interface ClusterRecord extends OwnedRecord {
  tmpDir: string;
  processes: RecordedProcess[];
}

/** The run dir, `~/.cache/nfv-operator/run`. */
export function runDir(): string {
  return path.join(cacheRoot(), 'run');
}

/** The start time of `pid` from /proc, or null if the process (or /proc) does not exist. */
export function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

/** True while `pid` runs and (when known) still has `startTime`, i.e. it is not a recycled pid. */
export function isAlive(pid: number, startTime: string | null): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  return startTime === null || processStartTime(pid) === startTime;
}

/** The command line of `pid`, arguments joined by spaces; empty when it is gone. */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

/** A record of something a test process owns and must clean up: one JSON file per id in a directory. */
export interface OwnedRecord {
  id: string;
  ownerPid: number;
  ownerStartTime: string | null;
}

/** Writes (or replaces) the record atomically: a reaper of another run never reads half of it. */
export function writeOwnedRecord(dir: string, record: OwnedRecord): void {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${record.id}.json`);
  writeFileSync(`${file}.tmp`, JSON.stringify(record, null, 2));
  renameSync(`${file}.tmp`, file);
}

/** Removes the record; missing is fine. */
export function removeOwnedRecord(dir: string, id: string): void {
  rmSync(path.join(dir, `${id}.json`), { force: true });
}

/** True for a temp dir a reaper may delete: directly under the OS temp dir, with `prefix`. */
export function isOwnTmpDir(dir: string, prefix: string): boolean {
  return path.dirname(dir) === path.resolve(tmpdir()) && path.basename(dir).startsWith(prefix);
}

/**
 * The records in `dir` whose owner has died, each with its file (remove it once reaped). A file
 * that cannot be read is removed: half-written by a dying owner, or not ours, it names nothing to reap.
 */
export function orphanedRecords<R extends OwnedRecord>(dir: string): { file: string; record: R }[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((name) => name.endsWith('.json'));
  } catch {
    return [];
  }
  const orphaned: { file: string; record: R }[] = [];
  for (const name of files) {
    const file = path.join(dir, name);
    try {
      const record = JSON.parse(readFileSync(file, 'utf8')) as R;
      if (!isAlive(record.ownerPid, record.ownerStartTime)) orphaned.push({ file, record });
    } catch {
      rmSync(file, { force: true });
    }
  }
  return orphaned;
}

/** Writes (or replaces) the cluster's record. */
export function writeClusterRecord(record: ClusterRecord): void {
  writeOwnedRecord(runDir(), record);
}

/** Removes the cluster's record; missing is fine. */
export function removeClusterRecord(id: string): void {
  removeOwnedRecord(runDir(), id);
}

/** True for a temp dir this module may delete: directly under the OS temp dir, with our prefix. */
export function isClusterTmpDir(dir: string): boolean {
  return isOwnTmpDir(dir, CLUSTER_TMP_PREFIX);
}

/**
 * Kills the processes and removes the temp dirs of clusters whose owner is dead; returns how many
 * clusters were reaped. Never throws: a failed reap must not prevent a new cluster from starting.
 */
export function reapOrphanedClusters(logger?: Logger): number {
  const orphaned = orphanedRecords<ClusterRecord>(runDir());
  for (const { file, record } of orphaned) {
    for (const proc of record.processes) {
      if (!isAlive(proc.pid, proc.startTime) || !commandLine(proc.pid).includes(record.tmpDir)) continue;
      for (const target of [-proc.pid, proc.pid]) {
        try {
          process.kill(target, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }
    if (isClusterTmpDir(record.tmpDir)) rmSync(record.tmpDir, { recursive: true, force: true });
    rmSync(file, { force: true });
    logger?.warn({ cluster: record.id, ownerPid: record.ownerPid, tmpDir: record.tmpDir }, 'reaped a local cluster whose owner had died');
  }
  return orphaned.length;
}
