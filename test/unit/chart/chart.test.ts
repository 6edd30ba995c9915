/**
 * charts/nfv-operator: `helm lint --strict`; the rendered objects validated by kubeconform (strict)
 * against the pinned Kubernetes release's schemas and the CRDs' own; the security posture of both
 * workloads; and the RBAC, which must be exactly what the code does.
 *
 * The RBAC table below is the review gate: every call that reaches the API server from src/ or
 * node-agent/ is a row (file, call, target) with the permissions it needs. A new call, or a call
 * moved to another resource, fails "every API call site is in the table" until someone adds the
 * row, and the chart's rules then have to match the table.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { CHART_CRDS_DIR } from '../../../src/api/generate-crds.js';
import { NFV_NODE_LABEL } from '../../../src/api/group.js';
import { repoRoot, resolveClusterTools, type ClusterTools } from '../../cluster/tools.js';
import { CHART_DIR, helmTemplate, parseManifests, renderChart, runCommand, type RenderedObject } from './chart-commands.js';
import { builtinSchemaLocation, crdSchemaLocation, kubernetesSourceDir, writeBuiltinSchemas, writeCrdSchemas } from './kubeconform-schemas.js';

/** Jest 30 does not apply the project's testTimeout per project, so each hook and test says its own. */
const TIMEOUT_MS = 180_000;
const RELEASE = 'nfv';
const NAMESPACE = 'nfv-system';

// ---------------------------------------------------------------------------------------------
// The RBAC table
// ---------------------------------------------------------------------------------------------

/** One permission: who, where (cluster-wide or the release namespace), what. */
interface Grant {
  component: 'controller' | 'node-agent';
  scope: 'cluster' | 'namespace';
  /** `group/resource[/subresource]`, core group as `core`. */
  resource: string;
  verb: string;
  /** resourceNames of the rule, if it is restricted to some. */
  names?: string[];
}

const LEASE = 'nfv-operator-leader';
const grants = (component: Grant['component'], scope: Grant['scope'], resource: string, verbs: string[], names?: string[]): Grant[] =>
  verbs.map((verb) => ({ component, scope, resource, verb, ...(names ? { names } : {}) }));
const controller = (resource: string, ...verbs: string[]) => grants('controller', 'cluster', resource, verbs);
const agent = (resource: string, ...verbs: string[]) => grants('node-agent', 'cluster', resource, verbs);

/**
 * A place in the code that talks to the API server. `call` is the method as written (receiver
 * prefixes such as `this.` and `deps.` and type arguments dropped); `target` is the resource
 * argument as written. Wrappers (the informer's list/watch, StatusWriter, ChildApplier,
 * EventRecorder) grant nothing themselves: their callers' rows say on which resource.
 */
interface CodeAccess {
  file: string;
  call: string;
  target: string;
  /** Calls with this file, call and target. */
  count: number;
  grants: Grant[];
  why: string;
}

// Server-side apply is a PATCH; applying an object that does not exist creates it, which the API
// server authorizes as `create` too (apiserver handlers/patch.go: createAuthorizerAttributes).
const RBAC_TABLE: CodeAccess[] = [
  // --- controller: informers (list + watch through KubeListWatchSource) ---
  { file: 'src/operator.ts', call: 'informer', target: 'resources.vnfs', count: 1, grants: controller('nfv.dev/virtualnetworkfunctions', 'list', 'watch'), why: 'VNF cache' },
  { file: 'src/operator.ts', call: 'informer', target: 'resources.pods', count: 1, grants: controller('core/pods', 'list', 'watch'), why: 'VNF pods (label nfv.dev/vnf)' },
  { file: 'src/operator.ts', call: 'informer', target: 'resources.hugepagePools', count: 1, grants: controller('nfv.dev/hugepagepools', 'list', 'watch'), why: 'pool cache' },
  { file: 'src/operator.ts', call: 'informer', target: 'resources.nodes', count: 1, grants: controller('core/nodes', 'list', 'watch'), why: 'node labels and taints for placement' },
  { file: 'src/operator.ts', call: 'informer', target: 'resources.nfvNodes', count: 1, grants: controller('nfv.dev/nfvnodes', 'list', 'watch'), why: 'inventories and ledgers' },
  { file: 'src/operator.ts', call: 'Informer.forResource', target: 'ref', count: 1, grants: [], why: 'the informer helper; rows above' },
  { file: 'src/runtime/list-watch-source.ts', call: 'client.list', target: 'this.resource', count: 1, grants: [], why: 'every informer lists' },
  { file: 'src/runtime/list-watch-source.ts', call: 'client.watch', target: 'this.resource', count: 1, grants: [], why: 'every informer watches' },
  // --- controller: writes ---
  { file: 'src/controllers/vnf/act.ts', call: 'client.mergePatch', target: 'resources.vnfs', count: 1, grants: controller('nfv.dev/virtualnetworkfunctions', 'patch'), why: 'add/remove the finalizer' },
  { file: 'src/controllers/vnf/act.ts', call: 'statusWriter.write', target: 'resources.vnfs', count: 1, grants: controller('nfv.dev/virtualnetworkfunctions/status', 'patch'), why: 'VNF status (SSA on status)' },
  { file: 'src/controllers/hugepage-pool/controller.ts', call: 'statusWriter.write', target: 'resources.hugepagePools', count: 1, grants: controller('nfv.dev/hugepagepools/status', 'patch'), why: 'pool status (SSA on status)' },
  { file: 'src/runtime/status-writer.ts', call: 'client.apply', target: 'ref', count: 1, grants: [], why: 'StatusWriter: SSA on the status subresource of its callers’ resources' },
  { file: 'src/controllers/vnf/act.ts', call: 'client.apply', target: 'resources.nfvNodes', count: 1, grants: controller('nfv.dev/nfvnodes/status', 'patch'), why: 'allocation ledger (SSA on status with resourceVersion)' },
  {
    file: 'src/controllers/vnf/act.ts',
    call: 'children.apply',
    target: 'resources.configMaps',
    count: 1,
    grants: [...controller('core/configmaps', 'create', 'patch'), ...controller('nfv.dev/virtualnetworkfunctions/finalizers', 'update')],
    why: 'inline config ConfigMap (SSA; blockOwnerDeletion needs update on the owner’s finalizers under OwnerReferencesPermissionEnforcement)',
  },
  {
    file: 'src/controllers/vnf/act.ts',
    call: 'children.apply',
    target: 'resources.pods',
    count: 1,
    grants: [...controller('core/pods', 'create', 'patch'), ...controller('nfv.dev/virtualnetworkfunctions/finalizers', 'update')],
    why: 'the VNF pod (SSA; blockOwnerDeletion as above)',
  },
  { file: 'src/runtime/apply.ts', call: 'client.apply', target: 'ref', count: 1, grants: [], why: 'ChildApplier: SSA for its callers' },
  { file: 'src/controllers/vnf/act.ts', call: 'client.delete', target: 'resources.pods', count: 1, grants: controller('core/pods', 'delete'), why: 'delete the pod (uid precondition)' },
  { file: 'src/controllers/vnf/act.ts', call: 'events.record', target: 'vnf', count: 1, grants: controller('core/events', 'create'), why: 'Events on VNFs' },
  { file: 'src/runtime/event-recorder.ts', call: 'client.create', target: 'coreResources.events', count: 1, grants: controller('core/events', 'create'), why: 'EventRecorder' },
  // --- controller: leader election, in the release namespace ---
  { file: 'src/runtime/leader-election.ts', call: 'client.get', target: 'coreResources.leases', count: 2, grants: grants('controller', 'namespace', 'coordination.k8s.io/leases', ['get'], [LEASE]), why: 'read the Lease (campaign, release)' },
  { file: 'src/runtime/leader-election.ts', call: 'client.create', target: 'coreResources.leases', count: 1, grants: grants('controller', 'namespace', 'coordination.k8s.io/leases', ['create']), why: 'create the Lease when missing' },
  { file: 'src/runtime/leader-election.ts', call: 'client.update', target: 'coreResources.leases', count: 2, grants: grants('controller', 'namespace', 'coordination.k8s.io/leases', ['update'], [LEASE]), why: 'acquire/renew, release' },
  // --- node agent ---
  { file: 'node-agent/agent.ts', call: 'Informer.forResource', target: 'VNF_RESOURCE', count: 1, grants: agent('nfv.dev/virtualnetworkfunctions', 'list', 'watch'), why: 'VNFs placed on its node (field selector)' },
  { file: 'node-agent/agent.ts', call: 'Informer.forResource', target: 'coreResources.pods', count: 1, grants: agent('core/pods', 'list', 'watch'), why: 'VNF pods bound to its node' },
  { file: 'node-agent/agent.ts', call: 'Informer.forResource', target: 'HUGEPAGE_POOL_RESOURCE', count: 1, grants: agent('nfv.dev/hugepagepools', 'list', 'watch'), why: 'pools to reserve hugepages for' },
  { file: 'node-agent/agent.ts', call: 'Informer.forResource', target: 'coreResources.nodes', count: 1, grants: agent('core/nodes', 'list', 'watch'), why: 'its Node (field selector metadata.name)' },
  { file: 'node-agent/agent.ts', call: 'Informer.forResource', target: 'NFV_NODE_RESOURCE', count: 1, grants: agent('nfv.dev/nfvnodes', 'list', 'watch'), why: 'its NfvNode (field selector metadata.name)' },
  {
    file: 'node-agent/node-reconciler.ts',
    call: 'client.apply',
    target: 'NFV_NODE_RESOURCE',
    count: 2,
    grants: [...agent('nfv.dev/nfvnodes', 'create', 'patch'), ...agent('nfv.dev/nfvnodes/status', 'patch')],
    why: 'create its NfvNode with the Node as owner (SSA); inventory and Ready (SSA on status)',
  },
  { file: 'node-agent/vnf-reconciler.ts', call: 'client.apply', target: 'VNF_RESOURCE', count: 1, grants: agent('nfv.dev/virtualnetworkfunctions/status', 'patch'), why: 'NodePrepared condition (SSA on status)' },
];

const CALL = /\b((?:Informer\.forResource|informer)|(?:client\.(?:get|list|watch|create|update|mergePatch|jsonPatch|apply|delete))|statusWriter\.write|children\.apply|events\.record)\s*(?:<[^>(]*>)?\s*\(\s*([^,()]+?)\s*(?:,\s*([^,()]+?)\s*)?[,)]/g;

/** Every API call site of src/ and node-agent/ (the REST client itself aside), keyed like the table. */
async function scanCallSites(): Promise<Map<string, number>> {
  const root = repoRoot();
  const sites = new Map<string, number>();
  for (const dir of ['src', 'node-agent']) {
    for (const entry of await readdir(join(root, dir), { recursive: true, withFileTypes: true })) {
      if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
      const path = join(entry.parentPath, entry.name);
      const file = relative(root, path);
      if (file === 'src/runtime/kube-client.ts') continue;
      for (const match of (await readFile(path, 'utf8')).matchAll(CALL)) {
        const call = match[1]!;
        // Informer.forResource(client, ref, ...): the resource is the second argument.
        const target = call === 'Informer.forResource' ? match[3] ?? '' : match[2]!;
        const key = `${file} ${call} ${target}`;
        sites.set(key, (sites.get(key) ?? 0) + 1);
      }
    }
  }
  return sites;
}

const grantKey = (g: Grant) => `${g.component} ${g.scope} ${g.resource} ${g.verb}${g.names ? ` [${[...g.names].sort().join(',')}]` : ''}`;

interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** The rendered ClusterRoles and Roles as grant keys. */
function renderedGrants(objects: RenderedObject[]): string[] {
  const keys = new Set<string>();
  for (const role of objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role')) {
    const component = role.metadata.labels?.['app.kubernetes.io/component'] as Grant['component'];
    const scope = role.kind === 'ClusterRole' ? 'cluster' : 'namespace';
    for (const rule of role.rules as PolicyRule[]) {
      for (const group of rule.apiGroups ?? []) {
        for (const resource of rule.resources ?? []) {
          for (const verb of rule.verbs) {
            keys.add(grantKey({ component, scope, resource: `${group || 'core'}/${resource}`, verb, ...(rule.resourceNames ? { names: rule.resourceNames } : {}) }));
          }
        }
      }
    }
  }
  return [...keys].sort();
}

// ---------------------------------------------------------------------------------------------

let tools: ClusterTools;
let objects: RenderedObject[];
let workDir: string;

const find = (kind: string, component: string): RenderedObject => {
  const found = objects.filter((o) => o.kind === kind && o.metadata.labels?.['app.kubernetes.io/component'] === component);
  if (found.length !== 1) throw new Error(`expected one ${kind} of ${component}, rendered ${found.length}`);
  return found[0]!;
};

interface Container {
  name: string;
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  securityContext?: Record<string, unknown> & { capabilities?: { add?: string[]; drop?: string[] } };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; mountPropagation?: string }[];
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  ports?: { name: string; containerPort: number }[];
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  securityContext?: Record<string, unknown>;
  volumes?: { name: string; hostPath?: { path: string; type?: string } }[];
  nodeSelector?: Record<string, string>;
  tolerations?: unknown[];
  hostNetwork?: boolean;
  hostPID?: boolean;
  serviceAccountName?: string;
}
const podSpec = (workload: RenderedObject) => (workload.spec as { template: { spec: PodSpec } }).template.spec;
const envOf = (container: Container) => Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value ?? `fieldRef:${e.valueFrom?.fieldRef?.fieldPath}`]));

/** Every value under `key` anywhere in `value`. */
function valuesOf(value: unknown, key: string): unknown[] {
  if (Array.isArray(value)) return value.flatMap((item) => valuesOf(item, key));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => [...(k === key ? [v] : []), ...valuesOf(v, key)]);
}

beforeAll(async () => {
  tools = await resolveClusterTools();
  objects = await renderChart({ release: RELEASE, namespace: NAMESPACE });
  workDir = await mkdtemp(join(tmpdir(), 'nfv-chart-'));
}, TIMEOUT_MS);

afterAll(async () => {
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

describe('helm', () => {
  test(
    'lint --strict passes',
    async () => {
      const result = await runCommand(tools.helm, ['lint', '--strict', CHART_DIR, '--kube-version', tools.versions.kubernetes]);
      expect(result.stderr + result.stdout).toContain('0 chart(s) failed');
      expect(result.code).toBe(0);
    },
    TIMEOUT_MS,
  );

  test(
    'the chart ships exactly the generated CRDs',
    async () => {
      const withCrds = parseManifests((await helmTemplate({ includeCrds: true }, tools)).stdout);
      const crdNames = withCrds.filter((o) => o.kind === 'CustomResourceDefinition').map((o) => o.metadata.name);
      expect(crdNames.sort()).toEqual(['hugepagepools.nfv.dev', 'nfvnodes.nfv.dev', 'virtualnetworkfunctions.nfv.dev']);
      expect((await readdir(CHART_CRDS_DIR)).sort()).toEqual(['nfv.dev_hugepagepools.yaml', 'nfv.dev_nfvnodes.yaml', 'nfv.dev_virtualnetworkfunctions.yaml']);
    },
    TIMEOUT_MS,
  );
});

describe('values.schema.json', () => {
  test.each([
    { set: 'replicas=abc', error: "at '/replicas': got string, want integer" },
    { set: 'agent.image.pullPolicy=Sometimes', error: '/agent/image/pullPolicy' },
    { set: 'runAs.user=root', error: "at '/runAs/user': got string, want integer" },
    { set: 'agent.nicPools[0].pool=fast,agent.nicPools[0].vendor=8086', error: "at '/agent/nicPools/0/vendor': got number, want string" },
    { set: 'replicaCount=2', error: "additional properties 'replicaCount' not allowed" },
    { set: 'agent.privileged=true', error: "additional properties 'privileged' not allowed" },
  ])(
    'refuses --set $set, in helm template and in helm lint',
    async ({ set, error }) => {
      const rendered = await helmTemplate({ set: [set] }, tools);
      expect(rendered.code).not.toBe(0);
      expect(rendered.stderr).toContain(error);
      const linted = await runCommand(tools.helm, ['lint', '--strict', CHART_DIR, '--kube-version', tools.versions.kubernetes, '--set', set]);
      expect(linted.code).not.toBe(0);
      expect(linted.stdout + linted.stderr).toContain(error);
    },
    TIMEOUT_MS,
  );

  test(
    'Bidirectional propagation is refused with the reason (privileged containers only)',
    async () => {
      const result = await helmTemplate({ set: ['agent.stateRootMountPropagation=Bidirectional'] }, tools);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain('Bidirectional mount propagation is available only to privileged containers');
    },
    TIMEOUT_MS,
  );
});

describe('kubeconform', () => {
  let schemaLocations: string[];

  beforeAll(async () => {
    const withCrds = parseManifests((await helmTemplate({ includeCrds: true }, tools)).stdout);
    const kinds = new Map(withCrds.filter((o) => !o.apiVersion.startsWith('nfv.dev/')).map((o) => [`${o.apiVersion} ${o.kind}`, { apiVersion: o.apiVersion, kind: o.kind }]));
    const swagger = join(await kubernetesSourceDir(tools.versions.kubernetes), 'api', 'openapi-spec', 'swagger.json');
    await writeBuiltinSchemas(swagger, [...kinds.values()], join(workDir, 'builtin'));
    const crdFiles = await writeCrdSchemas(withCrds, join(workDir, 'crds'));
    expect(crdFiles.map((f) => f.slice(f.lastIndexOf('/') + 1)).sort()).toEqual(['hugepagepool_v1alpha1.json', 'nfvnode_v1alpha1.json', 'virtualnetworkfunction_v1alpha1.json']);
    schemaLocations = ['-schema-location', builtinSchemaLocation(join(workDir, 'builtin')), '-schema-location', crdSchemaLocation(join(workDir, 'crds'))];
  }, TIMEOUT_MS);

  const kubeconform = (manifests: string) => runCommand(tools.kubeconform, ['-strict', '-summary', '-output', 'json', ...schemaLocations, '-'], manifests);
  const summaryOf = (stdout: string) => (JSON.parse(stdout) as { summary: Record<string, number> }).summary;

  test(
    'helm template --include-crds is valid, every object checked (none skipped)',
    async () => {
      const rendered = await helmTemplate({ includeCrds: true, setString: ['agent.nicPools[0].pool=fast', 'agent.nicPools[0].vendor=8086', 'agent.nicPools[0].deviceId=159b'] }, tools);
      expect(rendered.code).toBe(0);
      const result = await kubeconform(rendered.stdout);
      expect(result.stderr).toBe('');
      expect(summaryOf(result.stdout)).toEqual({ valid: parseManifests(rendered.stdout).length, invalid: 0, errors: 0, skipped: 0 });
      expect(result.code).toBe(0);
    },
    TIMEOUT_MS,
  );

  test(
    'the schemas are strict: an unknown field in the DaemonSet is refused',
    async () => {
      const rendered = await helmTemplate({}, tools);
      const result = await kubeconform(rendered.stdout.replace('hostPID: true', 'hostPID: true\n      hostPid: true'));
      expect(result.code).not.toBe(0);
      expect(result.stdout).toContain("additional properties 'hostPid' not allowed");
    },
    TIMEOUT_MS,
  );

  test(
    'examples/ conform to the CRD schemas, and a typo in a VNF is refused',
    async () => {
      const examplesDir = join(repoRoot(), 'examples');
      const texts = await Promise.all((await readdir(examplesDir)).filter((f) => f.endsWith('.yaml')).map((f) => readFile(join(examplesDir, f), 'utf8')));
      const all = texts.join('\n---\n');
      const result = await kubeconform(all);
      expect(summaryOf(result.stdout)).toEqual({ valid: parseManifests(all).length, invalid: 0, errors: 0, skipped: 0 });

      const typo = await kubeconform('apiVersion: nfv.dev/v1alpha1\nkind: VirtualNetworkFunction\nmetadata: {name: x, namespace: default}\nspec:\n  image: i\n  cpus: {count: 2}\n  cpu: 2\n');
      expect(typo.code).not.toBe(0);
      expect(typo.stdout).toContain("additional properties 'cpu' not allowed");
    },
    TIMEOUT_MS,
  );
});

describe('security posture', () => {
  test('nothing is privileged', () => {
    expect(valuesOf(objects, 'privileged').filter((v) => v === true)).toEqual([]);
    expect(valuesOf(objects, 'privileged').length).toBeGreaterThan(0);
  });

  test('controller: non-root with a numeric UID, read-only root, no capabilities, RuntimeDefault seccomp, no escalation, no host access', () => {
    const spec = podSpec(find('Deployment', 'controller'));
    expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    expect(spec.containers).toHaveLength(1);
    expect(spec.containers[0]!.securityContext).toEqual({
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(spec.volumes ?? []).toEqual([]);
    expect(spec.hostNetwork ?? false).toBe(false);
    expect(spec.hostPID ?? false).toBe(false);
  });

  test('node agent: exactly SYS_ADMIN, SYS_CHROOT, SYS_PTRACE on top of nothing, not privileged, no escalation', () => {
    const spec = podSpec(find('DaemonSet', 'node-agent'));
    expect(spec.containers).toHaveLength(1);
    expect(spec.initContainers ?? []).toEqual([]);
    const security = spec.containers[0]!.securityContext!;
    expect(security.capabilities).toEqual({ drop: ['ALL'], add: ['SYS_ADMIN', 'SYS_CHROOT', 'SYS_PTRACE'] });
    expect(security).toMatchObject({ privileged: false, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsUser: 0 });
    expect(spec.securityContext).toMatchObject({ seccompProfile: { type: 'RuntimeDefault' } });
    expect(spec.hostNetwork).toBe(true);
    expect(spec.hostPID).toBe(true);
  });

  test('node agent: only the host paths it needs, /dev read-only, kubelet device plugins and PodResources, the runtime\'s NRI socket dir, the state root at its host path with HostToContainer', () => {
    const spec = podSpec(find('DaemonSet', 'node-agent'));
    const hostPaths = Object.fromEntries((spec.volumes ?? []).map((v) => [v.name, v.hostPath?.path]));
    expect(hostPaths).toEqual({
      'host-sys': '/sys',
      'host-cgroup': '/sys/fs/cgroup',
      'host-proc': '/proc',
      'host-dev': '/dev',
      'device-plugins': '/var/lib/kubelet/device-plugins',
      'pod-resources': '/var/lib/kubelet/pod-resources',
      nri: '/var/run/nri',
      'state-root': '/var/lib/nfv-operator',
    });
    const mounts = Object.fromEntries((spec.containers[0]!.volumeMounts ?? []).map((m) => [m.name, m]));
    expect(mounts['host-dev']).toMatchObject({ mountPath: '/host/dev', readOnly: true });
    expect(mounts['device-plugins']).toEqual({ name: 'device-plugins', mountPath: '/var/lib/kubelet/device-plugins' });
    expect(mounts['nri']).toEqual({ name: 'nri', mountPath: '/var/run/nri' });
    expect(mounts['pod-resources']).toEqual({ name: 'pod-resources', mountPath: '/var/lib/kubelet/pod-resources' });
    expect(mounts['state-root']).toEqual({ name: 'state-root', mountPath: '/var/lib/nfv-operator', mountPropagation: 'HostToContainer' });
    expect(valuesOf(objects, 'mountPropagation').filter((p) => p === 'Bidirectional')).toEqual([]);
  });

  test('node agent: the device-plugin directory follows agent.devicePluginDir', async () => {
    const moved = await renderChart({ set: ['agent.devicePluginDir=/var/lib/k0s/kubelet/device-plugins'] });
    const spec = podSpec(moved.find((o) => o.kind === 'DaemonSet')!);
    expect(spec.volumes!.find((v) => v.name === 'device-plugins')!.hostPath).toEqual({ path: '/var/lib/k0s/kubelet/device-plugins', type: 'DirectoryOrCreate' });
    expect(envOf(spec.containers[0]!).NFV_DEVICE_PLUGIN_DIR).toBe('/var/lib/k0s/kubelet/device-plugins');
  });

  test('node agent: the NRI socket\'s directory follows agent.nriSocket, and "" runs no NRI plugin and mounts nothing', async () => {
    const moved = podSpec((await renderChart({ set: ['agent.nriSocket=/run/containerd/nri/nri.sock'] })).find((o) => o.kind === 'DaemonSet')!);
    expect(moved.volumes!.find((v) => v.name === 'nri')!.hostPath).toEqual({ path: '/run/containerd/nri', type: 'DirectoryOrCreate' });
    expect(moved.containers[0]!.volumeMounts!.find((m) => m.name === 'nri')).toEqual({ name: 'nri', mountPath: '/run/containerd/nri' });
    expect(envOf(moved.containers[0]!).NFV_NRI_SOCKET).toBe('/run/containerd/nri/nri.sock');

    const off = podSpec((await renderChart({ set: ['agent.nriSocket='] })).find((o) => o.kind === 'DaemonSet')!);
    expect(off.volumes!.map((v) => v.name)).not.toContain('nri');
    expect(off.containers[0]!.volumeMounts!.map((m) => m.name)).not.toContain('nri');
    expect(envOf(off.containers[0]!).NFV_NRI_SOCKET).toBe('none');
  }, TIMEOUT_MS);

  test('node agent: "" for agent.podResourcesSocket reads none and mounts nothing', async () => {
    const off = podSpec((await renderChart({ set: ['agent.podResourcesSocket='] })).find((o) => o.kind === 'DaemonSet')!);
    expect(off.volumes!.map((v) => v.name)).not.toContain('pod-resources');
    expect(envOf(off.containers[0]!).NFV_POD_RESOURCES_SOCKET).toBe('none');
  }, TIMEOUT_MS);

  test('node agent: NFV nodes only, every taint tolerated, NODE_NAME from spec.nodeName, the roots under /host', () => {
    const spec = podSpec(find('DaemonSet', 'node-agent'));
    expect(spec.nodeSelector).toEqual({ [NFV_NODE_LABEL]: 'true' });
    expect(spec.tolerations).toEqual([{ operator: 'Exists' }]);
    expect(envOf(spec.containers[0]!)).toEqual({
      NODE_NAME: 'fieldRef:spec.nodeName',
      NFV_STATE_ROOT: '/var/lib/nfv-operator',
      NFV_SYSFS_ROOT: '/host/sys',
      NFV_PROC_ROOT: '/host/proc',
      NFV_CGROUP_ROOT: '/host/sys/fs/cgroup',
      NFV_DEV_ROOT: '/host/dev',
      NFV_DEVICE_PLUGIN_DIR: '/var/lib/kubelet/device-plugins',
      NFV_NRI_SOCKET: '/var/run/nri/nri.sock',
      NFV_POD_RESOURCES_SOCKET: '/var/lib/kubelet/pod-resources/kubelet.sock',
      NFV_MOUNT_NAMESPACE: '/host/proc/1/ns/mnt',
      NFV_NIC_POOLS: '[]',
      NFV_AGENT_VERSION: '0.1.0',
      LOG_LEVEL: 'info',
      NFV_METRICS_ADDRESS: ':9101',
    });
    // Ready only once the NRI plugin is registered (node-agent/main.ts): a rollout stops there.
    expect(spec.containers[0]!.readinessProbe).toMatchObject({ httpGet: { path: '/readyz', port: 'metrics' } });
    expect(spec.containers[0]!.ports).toEqual([{ name: 'metrics', containerPort: 9101 }]);
  });

  test('controller: 2 replicas, leader election from the downward API, probes on the metrics port', () => {
    const deployment = find('Deployment', 'controller');
    expect((deployment.spec as { replicas: number }).replicas).toBe(2);
    const container = podSpec(deployment).containers[0]!;
    expect(envOf(container)).toMatchObject({
      POD_NAME: 'fieldRef:metadata.name',
      POD_NAMESPACE: 'fieldRef:metadata.namespace',
      NFV_METRICS_ADDRESS: ':8080',
      NFV_STATE_ROOT: '/var/lib/nfv-operator',
    });
    expect(container.ports).toEqual([{ name: 'metrics', containerPort: 8080, protocol: 'TCP' }]);
    expect(container.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(container.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    const service = find('Service', 'controller');
    expect((service.spec as { selector: unknown }).selector).toEqual((deployment.spec as { selector: { matchLabels: unknown } }).selector.matchLabels);
  });

  test('without leader election there is no POD_NAMESPACE and no Lease Role', async () => {
    const single = await renderChart({ set: ['leaderElection.enabled=false', 'replicas=1'] });
    expect(envOf(podSpec(single.find((o) => o.kind === 'Deployment')!).containers[0]!)).not.toHaveProperty('POD_NAMESPACE');
    expect(single.filter((o) => o.kind === 'Role' || o.kind === 'RoleBinding')).toEqual([]);
  }, TIMEOUT_MS);
});

describe('RBAC', () => {
  test('every API call site of the code is in the table, with its count', async () => {
    const expected = new Map(RBAC_TABLE.map((row) => [`${row.file} ${row.call} ${row.target}`, row.count]));
    expect(Object.fromEntries([...(await scanCallSites())].sort())).toEqual(Object.fromEntries([...expected].sort()));
  });

  test('the chart grants exactly what the table needs, per component and scope', () => {
    const needed = [...new Set(RBAC_TABLE.flatMap((row) => row.grants.map(grantKey)))].sort();
    expect(renderedGrants(objects)).toEqual(needed);
  });

  test('each role is bound to its own ServiceAccount, the Lease Role in the release namespace', () => {
    const account = (component: string) => find('ServiceAccount', component).metadata.name;
    const subjectsOf = (kind: string, component: string) => (find(kind, component) as unknown as { subjects: unknown[] }).subjects;
    const roleRefOf = (kind: string, component: string) => (find(kind, component) as unknown as { roleRef: { name: string } }).roleRef.name;
    expect(subjectsOf('ClusterRoleBinding', 'controller')).toEqual([{ kind: 'ServiceAccount', name: account('controller'), namespace: NAMESPACE }]);
    expect(subjectsOf('ClusterRoleBinding', 'node-agent')).toEqual([{ kind: 'ServiceAccount', name: account('node-agent'), namespace: NAMESPACE }]);
    expect(subjectsOf('RoleBinding', 'controller')).toEqual([{ kind: 'ServiceAccount', name: account('controller'), namespace: NAMESPACE }]);
    expect(roleRefOf('ClusterRoleBinding', 'controller')).toBe(find('ClusterRole', 'controller').metadata.name);
    expect(roleRefOf('ClusterRoleBinding', 'node-agent')).toBe(find('ClusterRole', 'node-agent').metadata.name);
    expect(roleRefOf('RoleBinding', 'controller')).toBe(find('Role', 'controller').metadata.name);
    expect(find('Role', 'controller').metadata.namespace).toBe(NAMESPACE);
    expect(podSpec(find('Deployment', 'controller')).serviceAccountName).toBe(account('controller'));
    expect(podSpec(find('DaemonSet', 'node-agent')).serviceAccountName).toBe(account('node-agent'));
  });

  test('no wildcard, no secrets, no escalation verbs', () => {
    const rules = objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role').flatMap((o) => o.rules as PolicyRule[]);
    const words = rules.flatMap((r) => [...(r.apiGroups ?? []), ...(r.resources ?? []), ...r.verbs]);
    expect(words).not.toContain('*');
    expect(words).not.toContain('secrets');
    for (const verb of ['escalate', 'bind', 'impersonate', 'deletecollection']) expect(words).not.toContain(verb);
  });
});
