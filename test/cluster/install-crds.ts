/** Installs the generated CRDs (crds/*.yaml) with server-side apply and waits until they serve. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { CRDS_DIR } from '../../src/api/generate-crds.js';
import type { KubeClient } from '../../src/runtime/kube-client.js';
import type { KubeObject, ResourceRef } from '../../src/runtime/kube-object.js';
import { waitUntil } from './wait-until.js';

const crdResource: ResourceRef = { group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions', kind: 'CustomResourceDefinition', namespaced: false };

type Crd = KubeObject & { status?: { conditions?: { type: string; status: string }[] } };

/** Applies every CRD of crds/ and resolves once all report Established. */
export async function installCrds(client: KubeClient): Promise<string[]> {
  const crds = readdirSync(CRDS_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => yaml.load(readFileSync(join(CRDS_DIR, f), 'utf8')) as Crd);
  for (const crd of crds) await client.apply(crdResource, crd, { fieldManager: 'nfv-e2e', force: true });
  const names = crds.map((crd) => crd.metadata!.name!);
  await waitUntil('CRDs established', async () => {
    const states = await Promise.all(names.map((name) => client.get<Crd>(crdResource, name)));
    return states.every((crd) => crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True'));
  });
  return names;
}
