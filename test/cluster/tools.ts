/**
 * Where the binaries of the local cluster live.
 *
 * Every binary is built from the Go module proxy by `hack/build-tools.sh` (no container registry
 * is reachable here), once per pinned version, into `~/.cache/nfv-operator/bin/<tool>-<version>/`.
 * Resolving runs that script, which builds what is missing and is a no-op when everything is
 * cached, then asks it for the directories with `--print`.
 */
import { spawn } from 'node:child_process';
import { access, constants, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';

/** The versions pinned in `hack/versions.env`. */
export interface PinnedVersions {
  /** Kubernetes release of kube-apiserver, controller-manager, scheduler and kubectl, e.g. `v1.37.2`. */
  kubernetes: string;
  etcd: string;
  kwok: string;
  helm: string;
  kubeconform: string;
}

/** Absolute paths of the executables a local cluster and the chart checks need. */
export interface ClusterTools {
  etcd: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  kubectl: string;
  kwok: string;
  helm: string;
  kubeconform: string;
  versions: PinnedVersions;
}

/** The repository root (two levels above this file). */
export function repoRoot(): string {
  return fileURLToPath(new URL('../../', import.meta.url));
}

/** The cache root shared with `hack/build-tools.sh`: `$NFV_CACHE`, default `~/.cache/nfv-operator`. */
export function cacheRoot(): string {
  return process.env['NFV_CACHE'] ?? path.join(homedir(), '.cache', 'nfv-operator');
}

/** Reads `hack/versions.env` (plain `KEY=value` lines). */
export async function readPinnedVersions(root = repoRoot()): Promise<PinnedVersions> {
  const file = path.join(root, 'hack', 'versions.env');
  const values = new Map<string, string>();
  for (const line of (await readFile(file, 'utf8')).split('\n')) {
    const match = /^([A-Z0-9_]+)=(\S+)$/.exec(line.trim());
    if (match?.[1] && match[2]) values.set(match[1], match[2]);
  }
  const get = (key: string): string => {
    const value = values.get(key);
    if (!value) throw new Error(`${file}: ${key} is not set; add a line ${key}=vX.Y.Z`);
    return value;
  };
  return {
    kubernetes: get('K8S_VERSION'),
    etcd: get('ETCD_VERSION'),
    kwok: get('KWOK_VERSION'),
    helm: get('HELM_VERSION'),
    kubeconform: get('KUBECONFORM_VERSION'),
  };
}

let cached: Promise<ClusterTools> | undefined;

/**
 * Builds the missing tools (minutes on a cold cache, well under a second on a warm one) and
 * returns their paths. The result is memoized per process.
 */
export function resolveClusterTools(opts: { logger?: Logger } = {}): Promise<ClusterTools> {
  cached ??= resolveUncached(opts.logger).catch((err: unknown) => {
    cached = undefined;
    throw err;
  });
  return cached;
}

async function resolveUncached(logger: Logger | undefined): Promise<ClusterTools> {
  const root = repoRoot();
  const script = path.join(root, 'hack', 'build-tools.sh');
  await runScript(script, [], logger);
  const printed = await runScript(script, ['--print'], undefined);
  const dirs = new Map<string, string>();
  for (const line of printed.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) dirs.set(line.slice(0, eq), line.slice(eq + 1).trim());
  }
  const dir = (name: string): string => {
    const value = dirs.get(name);
    if (!value) throw new Error(`${script} --print did not name a directory for "${name}"`);
    return value;
  };
  const tools: ClusterTools = {
    etcd: path.join(dir('etcd'), 'etcd'),
    kubeApiserver: path.join(dir('kubernetes'), 'kube-apiserver'),
    kubeControllerManager: path.join(dir('kubernetes'), 'kube-controller-manager'),
    kubeScheduler: path.join(dir('kubernetes'), 'kube-scheduler'),
    kubectl: path.join(dir('kubernetes'), 'kubectl'),
    kwok: path.join(dir('kwok'), 'kwok'),
    helm: path.join(dir('helm'), 'helm'),
    kubeconform: path.join(dir('kubeconform'), 'kubeconform'),
    versions: await readPinnedVersions(root),
  };
  for (const [name, file] of Object.entries(tools)) {
    if (typeof file !== 'string') continue;
    try {
      await access(file, constants.X_OK);
    } catch {
      throw new Error(`${name}: ${file} is missing or not executable after ${script} ran; run it by hand and read its output`);
    }
  }
  return tools;
}

/** Runs the script with an argument array; stderr lines go to the logger, stdout is returned. */
function runScript(script: string, args: string[], logger: Logger | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    const stderrTail: string[] = [];
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    let partial = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        logger?.info({ tool: 'build-tools' }, line);
        stderrTail.push(line);
        if (stderrTail.length > 40) stderrTail.shift();
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) return resolve(stdout);
      if (partial) stderrTail.push(partial);
      reject(new Error(`${script} ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${stderrTail.join('\n')}`));
    });
  });
}
