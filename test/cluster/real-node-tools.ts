/**
 * The executables of a real node: kubelet, containerd (with its runc shim and ctr) and crictl,
 * built by hack/build-tools.sh like the rest of the local cluster, plus runc and the CNI plugins
 * from Debian (hack/install-dataplane-deps.sh).
 */
import { execFile } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { repoRoot, resolveClusterTools } from './tools.js';

const execFileAsync = promisify(execFile);

/** Absolute paths of what a real node runs. */
export interface RealNodeTools {
  kubelet: string;
  containerd: string;
  /** containerd finds its shim on PATH: this directory goes first on containerd's PATH. */
  containerdBinDir: string;
  ctr: string;
  crictl: string;
  runc: string;
  cniBinDir: string;
}

/** Builds what is missing (see `resolveClusterTools`) and returns the paths; throws naming what is absent. */
export async function resolveRealNodeTools(logger?: Logger): Promise<RealNodeTools> {
  const cluster = await resolveClusterTools({ logger });
  const { stdout } = await execFileAsync('bash', [path.join(repoRoot(), 'hack', 'build-tools.sh'), '--print']);
  const dirs = new Map(stdout.split('\n').filter((line) => line.includes('=')).map((line) => line.split('=', 2) as [string, string]));
  const containerdBinDir = dirs.get('containerd') ?? '';
  const tools: RealNodeTools = {
    kubelet: path.join(path.dirname(cluster.kubectl), 'kubelet'),
    containerd: path.join(containerdBinDir, 'containerd'),
    containerdBinDir,
    ctr: path.join(containerdBinDir, 'ctr'),
    crictl: path.join(dirs.get('crictl') ?? '', 'crictl'),
    runc: '/usr/sbin/runc',
    cniBinDir: '/usr/lib/cni',
  };
  const required: Array<[string, string]> = [
    ['kubelet', tools.kubelet],
    ['containerd', tools.containerd],
    ['containerd-shim-runc-v2', path.join(containerdBinDir, 'containerd-shim-runc-v2')],
    ['ctr', tools.ctr],
    ['crictl', tools.crictl],
    ['runc (Debian package runc)', tools.runc],
    ['CNI bridge plugin (Debian package containernetworking-plugins)', path.join(tools.cniBinDir, 'bridge')],
    ['CNI host-local plugin', path.join(tools.cniBinDir, 'host-local')],
    ['CNI loopback plugin', path.join(tools.cniBinDir, 'loopback')],
  ];
  for (const [name, file] of required) {
    try {
      await access(file, constants.X_OK);
    } catch {
      throw new Error(`${name}: ${file} is missing; run hack/ensure-deps.sh (it installs and builds what the real node needs)`);
    }
  }
  return tools;
}
