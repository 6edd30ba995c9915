/** `kubectl apply --server-side -f` for the kinds nfv-operator knows, from multi-document YAML files. */
import { readFileSync } from 'node:fs';
import yaml from 'js-yaml';
import { resources } from '../../src/controllers/resources.js';
import type { KubeClient } from '../../src/runtime/kube-client.js';
import type { KubeObject, ResourceRef } from '../../src/runtime/kube-object.js';

const byKind = new Map<string, ResourceRef>(Object.values(resources).map((ref) => [ref.kind, ref]));

/** The objects of the YAML files, in file order. */
export function readManifests(files: readonly string[]): KubeObject[] {
  return files.flatMap((file) => yaml.loadAll(readFileSync(file, 'utf8')).filter((doc): doc is KubeObject => doc !== null && typeof doc === 'object'));
}

/** Server-side applies every object of `files`; returns them as applied. */
export async function applyManifests(client: KubeClient, files: readonly string[], fieldManager: string, namespace?: string): Promise<KubeObject[]> {
  const applied: KubeObject[] = [];
  for (const object of readManifests(files)) {
    const ref = byKind.get(object.kind ?? '');
    if (!ref) throw new Error(`${object.kind} ${object.metadata?.name}: no resource known for this kind`);
    const target = ref.namespaced && namespace ? { ...object, metadata: { ...object.metadata, namespace } } : object;
    applied.push(await client.apply(ref, target, { fieldManager, force: true }));
  }
  return applied;
}
