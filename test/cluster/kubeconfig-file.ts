/**
 * Self-contained kubeconfig files (certificates embedded), one per identity of the local cluster.
 */
import { writeFile } from 'node:fs/promises';
import yaml from 'js-yaml';
import type { CertKeyPair } from './cluster-pki.js';

/** One cluster, one client-certificate user, one context, selected. */
export interface KubeconfigSpec {
  /** `https://127.0.0.1:<port>` */
  server: string;
  caPem: string;
  client: Pick<CertKeyPair, 'certPem' | 'keyPem'>;
  /** Name of the user entry, e.g. `admin`. */
  user: string;
  /** Name of the cluster and context entries; default `nfv-local`. */
  clusterName?: string;
}

const b64 = (pem: string): string => Buffer.from(pem).toString('base64');

/** Renders the kubeconfig as YAML. */
export function renderKubeconfig(spec: KubeconfigSpec): string {
  const cluster = spec.clusterName ?? 'nfv-local';
  const context = `${spec.user}@${cluster}`;
  return yaml.dump({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: cluster, cluster: { server: spec.server, 'certificate-authority-data': b64(spec.caPem) } }],
    users: [
      {
        name: spec.user,
        user: { 'client-certificate-data': b64(spec.client.certPem), 'client-key-data': b64(spec.client.keyPem) },
      },
    ],
    contexts: [{ name: context, context: { cluster, user: spec.user } }],
    'current-context': context,
    preferences: {},
  });
}

/** Writes the kubeconfig readable by its owner only (it holds a private key). */
export async function writeKubeconfig(file: string, spec: KubeconfigSpec): Promise<void> {
  await writeFile(file, renderKubeconfig(spec), { mode: 0o600 });
}
