/**
 * nfv-operator under a GitOps tool. examples/gitops/ is applied the way Flux's kustomize-controller
 * applies a Git directory: every file its kustomization.yaml lists, server-side, with the field
 * manager `kustomize-controller`, into the namespace the kustomization names (here the test's own).
 * Then:
 * - it converges: the pool and every VNF are Ready, in the kstatus terms that Argo CD and Flux read
 *   health from (Ready=True, no Reconciling, no Stalled, observedGeneration == generation);
 * - applying the same files again is a no-op: no object gets a new resourceVersion or generation,
 *   so a GitOps tool sees no drift and the controller gets no event to react to;
 * - the controller never writes spec: in every object's managedFields only the applier owns
 *   `f:spec`; the operator's manager owns the status and, on VNFs, metadata.finalizers.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { V1ManagedFieldsEntry, V1Node, V1ObjectMeta } from '@kubernetes/client-node';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { AGENT_FIELD_MANAGER, CONTROLLER_FIELD_MANAGER, NFV_NODE_LABEL } from '../../src/api/group.js';
import type { HugepagePool } from '../../src/api/hugepage-pool.js';
import type { VirtualNetworkFunction } from '../../src/api/virtual-network-function.js';
import { resources } from '../../src/controllers/resources.js';
import type { Condition } from '../../src/runtime/conditions.js';
import type { KubeObject } from '../../src/runtime/kube-object.js';
import { applyManifests, readManifests } from '../cluster/apply-manifests.js';
import { startNfvFixture, type NfvFixture } from '../cluster/nfv-fixture.js';
import { repoRoot } from '../cluster/tools.js';
import { waitUntil } from '../cluster/wait-until.js';

const GITOPS_DIR = join(repoRoot(), 'examples', 'gitops');
/** Flux's kustomize-controller applies with this field manager. */
const APPLIER = 'kustomize-controller';

interface Kustomization {
  namespace?: string;
  resources?: string[];
}

const kustomization = yaml.load(readFileSync(join(GITOPS_DIR, 'kustomization.yaml'), 'utf8')) as Kustomization;
const files = (kustomization.resources ?? []).map((file) => join(GITOPS_DIR, file));
const manifests = readManifests(files);
const poolNames = manifests.filter((m) => m.kind === 'HugepagePool').map((m) => m.metadata!.name!);
const vnfNames = manifests.filter((m) => m.kind === 'VirtualNetworkFunction').map((m) => m.metadata!.name!);

/** An object of the site as read back: full metadata (with managedFields) and a kstatus-style status. */
interface SiteObject {
  kind?: string;
  metadata: V1ObjectMeta;
  status?: { observedGeneration?: number; conditions?: Condition[] };
}

let f: NfvFixture;

beforeAll(async () => {
  // Four NICs per NUMA node, so the site's NICs fit however the planner spreads the VNFs.
  f = await startNfvFixture('gitops', { nodes: 2, shape: { nicsPerNuma: 4 } });
});

afterAll(async () => {
  // The VNFs first, while the operator runs to release them; then the site's cluster-scoped pool.
  await f?.close();
  for (const pool of poolNames) await f?.client.delete(resources.hugepagePools, pool).catch(() => undefined);
});

/** The applied objects as they are now. */
async function current(): Promise<SiteObject[]> {
  const pools = await Promise.all(poolNames.map((name) => f.client.get<HugepagePool>(resources.hugepagePools, name)));
  const vnfs = await Promise.all(vnfNames.map((name) => f.get(name)));
  return [...pools, ...vnfs] as SiteObject[];
}

/** kind/name -> resourceVersion and generation. */
function versions(objects: readonly (SiteObject | KubeObject)[]): Record<string, { resourceVersion: string; generation: number }> {
  return Object.fromEntries(
    objects.map((o) => [`${o.kind}/${o.metadata!.name}`, { resourceVersion: o.metadata!.resourceVersion!, generation: o.metadata!.generation! }]),
  );
}

/** kstatus: what Argo CD's and Flux's health checks conclude from an object's status. */
function health(object: SiteObject): string {
  const status = object.status;
  const has = (type: string, value?: string) => status?.conditions?.some((c) => c.type === type && (value === undefined || c.status === value)) ?? false;
  if (status?.observedGeneration !== object.metadata!.generation) return `not observed (observedGeneration ${status?.observedGeneration}, generation ${object.metadata!.generation})`;
  if (has('Stalled', 'True')) return 'stalled';
  if (has('Reconciling', 'True')) return 'reconciling';
  return has('Ready', 'True') ? 'current' : 'not ready';
}

/** The top-level keys of a managedFields entry's field set, e.g. ['f:spec']. */
function ownedTopLevel(entry: V1ManagedFieldsEntry): string[] {
  return Object.keys((entry.fieldsV1 ?? {}) as Record<string, unknown>).sort();
}

describe('a GitOps tool applying examples/gitops/', () => {
  test('the kustomization lists every manifest of the directory, and names a namespace to rewrite', () => {
    const listed = [...(kustomization.resources ?? [])].sort();
    const onDisk = readdirSync(GITOPS_DIR)
      .filter((name) => name.endsWith('.yaml') && name !== 'kustomization.yaml')
      .sort();
    expect(listed).toEqual(onDisk);
    expect(kustomization.namespace).toBeTruthy();
    expect(poolNames).toHaveLength(1);
    expect(vnfNames.length).toBeGreaterThanOrEqual(4);
    // Namespaced objects carry no namespace of their own: the kustomization (or this test) sets it.
    expect(manifests.filter((m) => m.metadata?.namespace)).toEqual([]);
  });

  test('the site selects only this suite\'s nodes, and its pool name is free', async () => {
    // The examples select every NFV node (nfv.dev/nfv-node=true), as on a real site. Other suites
    // remove their nodes when they finish; wait for stragglers, then make sure only ours remain.
    const ours = new Set(f.nodeNames);
    const strangers = async () => {
      const { items } = await f.client.list<V1Node>(resources.nodes, { labelSelector: `${NFV_NODE_LABEL}=true` });
      return items.map((n) => n.metadata!.name!).filter((name) => !ours.has(name));
    };
    await waitUntil('NFV nodes of other suites to be gone', async () => (await strangers()).length === 0, { timeoutMs: 30_000, intervalMs: 500 }).catch(() => undefined);
    expect(await strangers()).toEqual([]);
    for (const pool of poolNames) {
      const existing = await f.client.get(resources.hugepagePools, pool).then(() => true, () => false);
      expect({ pool, existing }).toEqual({ pool, existing: false });
    }
  });

  test('server-side apply of the directory converges: pool and VNFs Ready, in kstatus terms', async () => {
    const applied = await applyManifests(f.client, files, APPLIER, f.ns.name);
    expect(applied.map((o) => `${o.kind}/${o.metadata!.name}`)).toEqual(manifests.map((m) => `${m.kind}/${m.metadata!.name}`));

    const objects = await waitUntil(
      'every object of the site to be current',
      async () => {
        const now = await current();
        return now.every((o) => health(o) === 'current') ? now : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 250 },
    );
    for (const object of objects) {
      const status = object.status as { observedGeneration: number; conditions: Condition[] };
      expect({ object: object.metadata!.name, ready: status.conditions.find((c) => c.type === 'Ready')?.status }).toEqual({ object: object.metadata!.name, ready: 'True' });
      expect(status.conditions.map((c) => c.type)).not.toContain('Reconciling');
      expect(status.conditions.map((c) => c.type)).not.toContain('Stalled');
      expect(status.observedGeneration).toBe(object.metadata!.generation);
      // Conditions say which generation they describe, too.
      for (const condition of status.conditions) expect(condition.observedGeneration).toBe(object.metadata!.generation);
    }
    // memif chains share a node.
    const byName = new Map(objects.map((o) => [o.metadata.name!, o as unknown as VirtualNetworkFunction]));
    expect(byName.get('bng-access')!.status!.placement!.node).toBe(byName.get('bng-core')!.status!.placement!.node);
    expect(byName.get('fw-inside')!.status!.placement!.node).toBe(byName.get('fw-outside')!.status!.placement!.node);
  });

  test('applying the same files again changes nothing: same resourceVersion and generation everywhere', async () => {
    // Let the controller and the agent finish their last status writes first.
    const settled = await waitUntil(
      'the site to stop changing',
      async () => {
        const before = versions(await current());
        await new Promise((resolve) => setTimeout(resolve, 2_000));
        const after = versions(await current());
        return JSON.stringify(before) === JSON.stringify(after) ? after : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 0 },
    );
    // Created once and never updated in spec: generation 1 everywhere.
    expect(Object.values(settled).map((v) => v.generation)).toEqual(Object.values(settled).map(() => 1));

    const reapplied = await applyManifests(f.client, files, APPLIER, f.ns.name);
    // The API server's answer to each apply: no write, so no new resourceVersion.
    expect(versions(reapplied)).toEqual(settled);
    // And nothing else moved in reaction: nothing was written, so no watch event woke anyone.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(versions(await current())).toEqual(settled);
  });

  test('the controller never writes spec: only the applier owns f:spec', async () => {
    for (const object of await current()) {
      const name = `${object.kind}/${object.metadata!.name}`;
      const entries = object.metadata!.managedFields ?? [];
      const specOwners = entries.filter((e) => ownedTopLevel(e).includes('f:spec')).map((e) => `${e.manager} ${e.operation}`);
      expect({ name, specOwners }).toEqual({ name, specOwners: [`${APPLIER} Apply`] });

      for (const entry of entries.filter((e) => e.manager === CONTROLLER_FIELD_MANAGER || e.manager === AGENT_FIELD_MANAGER)) {
        const owned = ownedTopLevel(entry);
        if (entry.subresource === 'status') {
          expect({ name, manager: entry.manager, owned }).toEqual({ name, manager: entry.manager, owned: ['f:status'] });
        } else {
          // Outside the status, the operator only adds and removes its finalizer.
          expect({ name, manager: entry.manager, fields: entry.fieldsV1 }).toEqual({
            name,
            manager: CONTROLLER_FIELD_MANAGER,
            fields: { 'f:metadata': { 'f:finalizers': expect.anything() } },
          });
        }
      }
    }
    // The status of every VNF is written by the operator, its NodePrepared condition by the agent.
    const vnf = (await current()).find((o) => o.kind === 'VirtualNetworkFunction')!;
    const managers = (vnf.metadata!.managedFields ?? []).map((e) => `${e.manager} ${e.operation}${e.subresource ? ` ${e.subresource}` : ''}`).sort();
    expect(managers).toEqual([`${AGENT_FIELD_MANAGER} Apply status`, `${APPLIER} Apply`, `${CONTROLLER_FIELD_MANAGER} Apply status`, `${CONTROLLER_FIELD_MANAGER} Update`].sort());
  });
});
