/**
 * Run records of real nodes, so that one whose owner died (a Jest run killed with SIGKILL) is
 * cleaned up by the next start: its kubelet, containerd and shims killed, the processes left in
 * its cgroups killed, its mounts, cgroups, sysctls, iptables chains, /etc/hosts line and bridge
 * undone (`restoreHost`), and its temp dir removed.
 *
 * One JSON file per node in `~/.cache/nfv-operator/run/real-nodes/` (a subdirectory, so the
 * cluster reaper, which reads `run/*.json`, never mistakes it for a cluster).
 */
import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { commandLine, isOwnTmpDir, orphanedRecords, removeOwnedRecord, runDir, writeOwnedRecord, type OwnedRecord, type RecordedProcess } from './cluster-registry.js';
import { killUntilGone, restoreHost, type HostSnapshot } from './real-node-host.js';

/** Prefix of every real node's temp dir; the reaper removes nothing else. */
export const REAL_NODE_TMP_PREFIX = 'nfv-real-node-';

/** What the run dir knows about one real node. */
export interface RealNodeRecord extends OwnedRecord {
  host: HostSnapshot;
  processes: RecordedProcess[];
}

function recordDir(): string {
  return path.join(runDir(), 'real-nodes');
}

/** Writes (or replaces) the real node's record. */
export function writeRealNodeRecord(record: RealNodeRecord): void {
  writeOwnedRecord(recordDir(), record);
}

/** Removes the real node's record; missing is fine. */
export function removeRealNodeRecord(id: string): void {
  removeOwnedRecord(recordDir(), id);
}

/** True for a temp dir the reaper may delete: directly under the OS temp dir, with our prefix. */
export function isRealNodeTmpDir(dir: string): boolean {
  return isOwnTmpDir(dir, REAL_NODE_TMP_PREFIX);
}

/** Pids of every process whose command line names `dir` (kubelet, containerd, the shims). */
export function processesNaming(dir: string): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => pid !== process.pid && commandLine(pid).includes(dir));
}

/** SIGKILL to every process that names `dir`, until they are gone (throws after 5 s). */
export function killProcessesNaming(dir: string): Promise<void> {
  return killUntilGone(() => processesNaming(dir), `processes naming ${dir}`);
}

/**
 * Cleans up every recorded real node whose owner is dead; returns how many. Never throws: a
 * failed reap must not prevent a new node from starting (it is logged).
 */
export async function reapOrphanedRealNodes(logger: Logger): Promise<number> {
  let reaped = 0;
  for (const { file, record } of orphanedRecords<RealNodeRecord>(recordDir())) {
    const dir = record.host.dir;
    if (!isRealNodeTmpDir(dir)) {
      logger.warn({ file, dir }, 'real node record names a dir that is not ours; removing only the record');
      rmSync(file, { force: true });
      continue;
    }
    await killProcessesNaming(dir).catch((err: unknown) => logger.warn({ err, dir }, 'processes of a dead real node survive SIGKILL'));
    const failures = await restoreHost(record.host, logger);
    if (failures.length === 0) rmSync(dir, { recursive: true, force: true });
    rmSync(file, { force: true });
    reaped++;
    logger.warn({ node: record.host.nodeName, ownerPid: record.ownerPid, dir, failures }, 'reaped a real node whose owner had died');
  }
  return reaped;
}
