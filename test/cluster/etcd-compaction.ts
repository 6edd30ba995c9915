/**
 * Compaction of the shared e2e cluster's etcd, so a test can make the API server answer a watch
 * with a real 410 Gone, as it does in production when a client resumes from a revision etcd has
 * already discarded.
 *
 * Only watches that reach etcd see it: kube-apiserver serves watches from its watch cache, whose
 * window ignores etcd compaction, except for resources whose cache is off. `events` (core and
 * events.k8s.io) are the ones off by default, so watch those:
 *
 * ```ts
 * const revision = await compactE2eEtcd();
 * // a watch on events from a resourceVersion below `revision` now ends with an ERROR event, code 410
 * ```
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CLUSTER_TMP_PREFIX, runDir, type ClusterRecord } from './cluster-registry.js';
import { e2eCluster } from './e2e-env.js';

/**
 * The client URL of the shared cluster's etcd (`http://127.0.0.1:<port>`). The global setup
 * does not publish it, so it is read from the cluster's record in the run dir and the etcd
 * process's own command line.
 *
 * @throws Error naming the file or process it could not read.
 */
export function e2eEtcdUrl(): string {
  const { tmpDir } = e2eCluster();
  const id = path.basename(tmpDir).slice(CLUSTER_TMP_PREFIX.length);
  const recordFile = path.join(runDir(), `${id}.json`);
  let record: ClusterRecord;
  try {
    record = JSON.parse(readFileSync(recordFile, 'utf8')) as ClusterRecord;
  } catch (err) {
    throw new Error(`cannot read the e2e cluster's record ${recordFile}: ${String(err)}`, { cause: err });
  }
  const etcd = record.processes.find((proc) => proc.name === 'etcd');
  if (!etcd) throw new Error(`${recordFile} lists no etcd process`);
  let args: string[];
  try {
    args = readFileSync(`/proc/${etcd.pid}/cmdline`, 'utf8').split('\0');
  } catch (err) {
    throw new Error(`etcd (pid ${etcd.pid}) of the e2e cluster is not running: ${String(err)}`, { cause: err });
  }
  const flag = '--listen-client-urls=';
  const urls = args.find((arg) => arg.startsWith(flag))?.slice(flag.length);
  if (!urls || !args.some((arg) => arg.includes(tmpDir))) {
    throw new Error(`pid ${etcd.pid} is not the etcd of the e2e cluster in ${tmpDir} (command line: ${args.join(' ')})`);
  }
  return urls.split(',')[0]!;
}

/** A request to etcd's gRPC gateway (HTTP/JSON on the client port). */
async function etcdGateway<T>(url: string, route: string, body: unknown): Promise<T> {
  const res = await fetch(`${url}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`etcd ${route} answered HTTP ${res.status}: ${text}`);
  return JSON.parse(text) as T;
}

/** The current revision of etcd: every API object's resourceVersion is at most this. */
export async function etcdRevision(url = e2eEtcdUrl()): Promise<number> {
  const status = await etcdGateway<{ header?: { revision?: string } }>(url, '/v3/maintenance/status', {});
  const revision = Number(status.header?.revision);
  if (!Number.isSafeInteger(revision) || revision <= 0) throw new Error(`etcd status has no revision: ${JSON.stringify(status)}`);
  return revision;
}

/**
 * Compacts etcd at its current revision and resolves once the compaction is physical, so every
 * older revision is gone and a watch from one of them fails with "required revision has been
 * compacted", which the API server turns into 410 Gone. Returns the revision compacted at.
 *
 * Compaction only drops history, never current objects, so it is safe on the shared cluster.
 */
export async function compactE2eEtcd(url = e2eEtcdUrl()): Promise<number> {
  const revision = await etcdRevision(url);
  try {
    await etcdGateway(url, '/v3/kv/compaction', { revision: String(revision), physical: true });
  } catch (err) {
    // Nothing was written since an earlier compaction at this very revision: the goal holds.
    if (!String(err).includes('required revision has been compacted')) throw err;
  }
  return revision;
}
