import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { API_VERSION } from '../../src/api/group.js';
import type { VirtualNetworkFunction } from '../../src/api/virtual-network-function.js';
import { resources } from '../../src/controllers/resources.js';
import { ApiError } from '../../src/runtime/api-error.js';
import { KubeClient } from '../../src/runtime/kube-client.js';
import { createTestNamespace, e2eCluster, e2eKubeConfig, type TestNamespace } from '../cluster/e2e-env.js';
import { installCrds } from '../cluster/install-crds.js';
import { resolveClusterTools } from '../cluster/tools.js';

const run = promisify(execFile);
let client: KubeClient;
let ns: TestNamespace;

beforeAll(async () => {
  client = new KubeClient(e2eKubeConfig());
  await installCrds(client);
  ns = await createTestNamespace('api');
});
afterAll(async () => {
  await ns.delete();
  client.close();
});

const valid = () => ({
  image: 'nfv-operator/l2fwd:22.11',
  cpus: { count: 2 },
  hugepages: { pageSize: '1Gi', amount: '2Gi', pool: 'gold' },
  interfaces: [{ name: 'uplink', device: { pciAddress: '0000:3b:00.0' } }],
});

async function rejection(name: string, spec: object): Promise<string> {
  try {
    await client.create(resources.vnfs, { apiVersion: API_VERSION, kind: 'VirtualNetworkFunction', metadata: { name, namespace: ns.name }, spec });
  } catch (error) {
    if (error instanceof ApiError && error.code === 422) return error.message;
    throw error;
  }
  throw new Error(`VNF ${name} was accepted`);
}

describe('the API server validates VNFs with the generated schema and CEL', () => {
  test('a valid VNF is accepted, with defaults filled in', async () => {
    const created = await client.create<VirtualNetworkFunction>(resources.vnfs, {
      apiVersion: API_VERSION,
      kind: 'VirtualNetworkFunction',
      metadata: { name: 'ok', namespace: ns.name },
      spec: valid(),
    } as VirtualNetworkFunction);
    expect(created.spec.cpus.fullCores).toBe(true);
    expect(created.spec.interfaces[0]!.driver).toBe('vfio-pci');
  });

  test.each([
    ['negative CPUs', { ...valid(), cpus: { count: -1 } }, /spec\.cpus\.count: Invalid value: -1: spec\.cpus\.count in body should be greater than or equal to 1/],
    ['an unknown page size', { ...valid(), hugepages: { pageSize: '4Mi', amount: '4Mi', pool: 'gold' } }, /spec\.hugepages\.pageSize: Unsupported value: "4Mi": supported values: "2Mi", "1Gi"/],
    [
      'a malformed PCI address',
      { ...valid(), interfaces: [{ name: 'uplink', device: { pciAddress: '3b:00.0' } }] },
      /spec\.interfaces\[0\]\.device\.pciAddress: Invalid value: "3b:00\.0": must be a full PCI address such as 0000:3b:00\.1/,
    ],
    [
      'an amount that is not a whole number of pages',
      { ...valid(), hugepages: { pageSize: '1Gi', amount: '1536Mi', pool: 'gold' } },
      /spec\.hugepages\.amount: Invalid value: amount must be a whole number of pages: a multiple of pageSize \(e\.g\. 2Gi with 1Gi pages\)/,
    ],
    ['two device selectors', { ...valid(), interfaces: [{ name: 'u', device: { pciAddress: '0000:3b:00.0', pool: 'fast' } }] }, /set exactly one of pciAddress, vendor \(with deviceId\) or pool/],
    ['a link to itself', { ...valid(), links: [{ name: 'loop', peer: 'self-link', role: 'server' }] }, /spec\.links\[\]\.peer must name another VNF/],
  ])('rejects %s, naming the field', async (_what, spec, message) => {
    const name = _what === 'a link to itself' ? 'self-link' : `bad-${Math.random().toString(36).slice(2, 8)}`;
    expect(await rejection(name, spec)).toMatch(message);
  });

  test('placement inputs are immutable once set', async () => {
    try {
      await client.mergePatch(resources.vnfs, 'ok', { spec: { cpus: { count: 4 } } }, { namespace: ns.name });
      throw new Error('accepted');
    } catch (error) {
      expect((error as Error).message).toMatch(/spec\.cpus: Invalid value: spec\.cpus cannot change once set: delete and recreate the VNF/);
    }
  });

  test('kubectl explain prints the field docs', async () => {
    const tools = await resolveClusterTools();
    const { stdout } = await run(tools.kubectl, ['--kubeconfig', e2eCluster().kubeconfigPath, 'explain', 'vnf.spec.cpus']);
    expect(stdout).toMatch(/Exclusive CPUs\. They come from the isolated CPUs of one NUMA node/);
    expect(stdout).toMatch(/fullCores\s+<boolean>/);
    expect(stdout).toMatch(/Take whole physical cores/);
  });
});
