/**
 * The certificates and keys of a local cluster: a CA, the API server's serving certificate, one
 * client certificate per component, and the service-account signing key pair.
 *
 * Certificates are ECDSA P-256 (a few milliseconds each with `openssl`, run with argument arrays);
 * the service-account key is RSA 2048 from node:crypto, as kube-apiserver documents it.
 */
import { execFile } from 'node:child_process';
import { generateKeyPair } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const generateKeyPairAsync = promisify(generateKeyPair);

/** A PEM certificate and its PEM private key, as files and as contents. */
export interface CertKeyPair {
  certFile: string;
  keyFile: string;
  certPem: string;
  keyPem: string;
}

/** Everything `generateClusterPki` writes. */
export interface ClusterPki {
  dir: string;
  ca: CertKeyPair;
  /** Serving certificate of kube-apiserver. */
  apiServer: CertKeyPair;
  /** Client certificate in the `system:masters` group, for the admin kubeconfig, tests and KWOK. */
  admin: CertKeyPair;
  /** Client certificate `system:kube-controller-manager`. */
  controllerManager: CertKeyPair;
  /** Client certificate `system:kube-scheduler`. */
  scheduler: CertKeyPair;
  /** RSA key that signs service-account tokens (PKCS#8 PEM) and its public half (SPKI PEM). */
  serviceAccountKeyFile: string;
  serviceAccountPublicKeyFile: string;
}

/** Names the API server's certificate must be valid for, besides loopback. */
export interface PkiOptions {
  /** First address of the service range: the `kubernetes` Service's cluster IP. */
  kubernetesServiceIp: string;
  /** Days of validity; default 30 (a local cluster lives minutes). */
  days?: number;
}

/** Writes the PKI of one cluster into `dir` (created if missing). */
export async function generateClusterPki(dir: string, opts: PkiOptions): Promise<ClusterPki> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const days = String(opts.days ?? 30);
  const configFile = path.join(dir, 'openssl.cnf');
  await writeFile(configFile, opensslConfig(opts.kubernetesServiceIp));

  const serviceAccount = generateKeyPairAsync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });

  const ca = await issue(dir, configFile, days, 'ca', '/CN=nfv-local-cluster-ca', 'v3_ca', undefined);
  const [apiServer, admin, controllerManager, scheduler] = await Promise.all([
    issue(dir, configFile, days, 'apiserver', '/CN=kube-apiserver', 'apiserver', ca),
    issue(dir, configFile, days, 'admin', '/O=system:masters/CN=nfv-local-admin', 'client', ca),
    issue(dir, configFile, days, 'controller-manager', '/CN=system:kube-controller-manager', 'client', ca),
    issue(dir, configFile, days, 'scheduler', '/CN=system:kube-scheduler', 'client', ca),
  ]);

  const { publicKey, privateKey } = await serviceAccount;
  const serviceAccountKeyFile = path.join(dir, 'sa.key');
  const serviceAccountPublicKeyFile = path.join(dir, 'sa.pub');
  await Promise.all([
    writeFile(serviceAccountKeyFile, privateKey, { mode: 0o600 }),
    writeFile(serviceAccountPublicKeyFile, publicKey),
  ]);
  return { dir, ca, apiServer, admin, controllerManager, scheduler, serviceAccountKeyFile, serviceAccountPublicKeyFile };
}

/**
 * Issues one more client certificate from the CA of a PKI that `generateClusterPki` wrote into
 * `dir`, e.g. a kubelet's `/O=system:nodes/CN=system:node:<name>`; valid for 30 days.
 */
export async function issueClientCertificate(dir: string, name: string, subject: string): Promise<CertKeyPair> {
  const ca = { certFile: path.join(dir, 'ca.crt'), keyFile: path.join(dir, 'ca.key') };
  return issue(dir, path.join(dir, 'openssl.cnf'), '30', name, subject, 'client', ca);
}

/** Creates a key and a certificate signed by `ca` (self-signed when `ca` is undefined). */
async function issue(
  dir: string,
  configFile: string,
  days: string,
  name: string,
  subject: string,
  extensions: string,
  ca: Pick<CertKeyPair, 'certFile' | 'keyFile'> | undefined,
): Promise<CertKeyPair> {
  const certFile = path.join(dir, `${name}.crt`);
  const keyFile = path.join(dir, `${name}.key`);
  const args = [
    'req', '-x509', '-new', '-nodes',
    '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-keyout', keyFile, '-out', certFile,
    '-days', days, '-subj', subject,
    '-config', configFile, '-extensions', extensions,
  ];
  if (ca) args.push('-CA', ca.certFile, '-CAkey', ca.keyFile);
  try {
    await execFileAsync('openssl', args);
  } catch (err) {
    throw new Error(`openssl could not issue the ${name} certificate: ${String(err)}`);
  }
  const [certPem, keyPem] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
  return { certFile, keyFile, certPem, keyPem };
}

function opensslConfig(kubernetesServiceIp: string): string {
  return `[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
[apiserver]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = IP:127.0.0.1, IP:${kubernetesServiceIp}, DNS:localhost, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;
}
