/**
 * charts/nfv-operator installed with Helm on the real local control plane: the API server accepts
 * every object (the workloads' security contexts and host paths, the RBAC), the CRDs are served,
 * the Deployment's and the DaemonSet's pods are created on a KWOK node of this test, and the
 * service accounts can do what the code does and no more (`kubectl auth can-i` and server-side
 * dry runs, as the service accounts). `helm uninstall` removes everything but the CRDs.
 *
 * KWOK plays the kubelet, so the containers never run; the images are never pulled (pullPolicy
 * Never).
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NFV_NODE_LABEL } from '../../src/api/group.js';
import { ApiError } from '../../src/runtime/api-error.js';
import { KubeClient } from '../../src/runtime/kube-client.js';
import type { KubeObject, ResourceRef } from '../../src/runtime/kube-object.js';
import { createTestNamespace, e2eCluster, e2eKubeConfig, type TestNamespace } from '../cluster/e2e-env.js';
import { createKwokNode, deleteKwokNodes } from '../cluster/kwok-nodes.js';
import { resolveClusterTools, type ClusterTools } from '../cluster/tools.js';
import { waitUntil } from '../cluster/wait-until.js';
import { CHART_DIR, runCommand, type CommandResult } from '../unit/chart/chart-commands.js';

/** Jest 30 does not apply the project's testTimeout per project, so each hook and test says its own. */
const TIMEOUT_MS = 180_000;
const TEST_LABEL = 'nfv.dev/e2e-helm';

const ref = (group: string, version: string, plural: string, kind: string, namespaced: boolean): ResourceRef => ({ group, version, plural, kind, namespaced });
const deployments = ref('apps', 'v1', 'deployments', 'Deployment', true);
const daemonSets = ref('apps', 'v1', 'daemonsets', 'DaemonSet', true);
const serviceAccounts = ref('', 'v1', 'serviceaccounts', 'ServiceAccount', true);
const services = ref('', 'v1', 'services', 'Service', true);
const roles = ref('rbac.authorization.k8s.io', 'v1', 'roles', 'Role', true);
const roleBindings = ref('rbac.authorization.k8s.io', 'v1', 'rolebindings', 'RoleBinding', true);
const clusterRoles = ref('rbac.authorization.k8s.io', 'v1', 'clusterroles', 'ClusterRole', false);
const clusterRoleBindings = ref('rbac.authorization.k8s.io', 'v1', 'clusterrolebindings', 'ClusterRoleBinding', false);
const crds = ref('apiextensions.k8s.io', 'v1', 'customresourcedefinitions', 'CustomResourceDefinition', false);
const vnfs = ref('nfv.dev', 'v1alpha1', 'virtualnetworkfunctions', 'VirtualNetworkFunction', true);
const pods = ref('', 'v1', 'pods', 'Pod', true);
const CRD_NAMES = ['hugepagepools.nfv.dev', 'nfvnodes.nfv.dev', 'virtualnetworkfunctions.nfv.dev'];

type Workload = KubeObject & {
  spec: { template: { spec: { containers: { securityContext?: unknown }[]; securityContext?: unknown; volumes?: { name: string }[] } } };
  status?: { availableReplicas?: number; numberReady?: number; desiredNumberScheduled?: number };
};

let tools: ClusterTools;
let client: KubeClient;
let ns: TestNamespace;
let release: string;
let nodeName: string;
let helmHome: string;
let installed: CommandResult;

const kubeconfig = () => e2eCluster().kubeconfigPath;
const controllerName = () => `${release}-nfv-operator-controller`;
const agentName = () => `${release}-nfv-operator-node-agent`;
const serviceAccount = (name: string) => `system:serviceaccount:${ns.name}:${name}`;

/** helm with this file's own config, cache and data directories. */
function helm(args: string[]): Promise<CommandResult> {
  return runCommand(tools.helm, [...args, '--kubeconfig', kubeconfig()], undefined, {
    HELM_CONFIG_HOME: join(helmHome, 'config'),
    HELM_CACHE_HOME: join(helmHome, 'cache'),
    HELM_DATA_HOME: join(helmHome, 'data'),
  });
}

function kubectl(args: string[], input?: string): Promise<CommandResult> {
  return runCommand(tools.kubectl, ['--kubeconfig', kubeconfig(), ...args], input);
}

/** `kubectl auth can-i` as `user`: true for "yes". */
async function canI(user: string, args: string[]): Promise<boolean> {
  const result = await kubectl(['auth', 'can-i', ...args, '--as', user]);
  const answer = result.stdout.trim();
  if (answer !== 'yes' && answer !== 'no') throw new Error(`kubectl auth can-i ${args.join(' ')}: ${result.stderr || result.stdout}`);
  return answer === 'yes';
}

async function gone(resource: ResourceRef, name: string, namespace?: string): Promise<boolean> {
  try {
    await client.get(resource, name, namespace ? { namespace } : {});
    return false;
  } catch (error) {
    if (error instanceof ApiError && error.code === 404) return true;
    throw error;
  }
}

beforeAll(async () => {
  tools = await resolveClusterTools();
  client = new KubeClient(e2eKubeConfig());
  ns = await createTestNamespace('helm');
  // Cluster-scoped objects (ClusterRoles, their bindings) are named after the release: one per run.
  release = ns.name;
  helmHome = await mkdtemp(join(tmpdir(), 'nfv-helm-'));
  // A node of this test only: NFV-labelled for the DaemonSet, tainted so that no other test's pod
  // lands on it; the controller pods are sent there too.
  nodeName = `${ns.name}-node`;
  await createKwokNode(e2eKubeConfig(), {
    name: nodeName,
    labels: { [NFV_NODE_LABEL]: 'true', [TEST_LABEL]: ns.name },
    taints: [{ key: TEST_LABEL, value: ns.name, effect: 'NoSchedule' }],
  });
  installed = await helm([
    'install',
    release,
    CHART_DIR,
    '--namespace',
    ns.name,
    '--set',
    'image.pullPolicy=Never',
    '--set',
    'agent.image.pullPolicy=Never',
    '--set-string',
    `agent.nodeSelector.nfv\\.dev/e2e-helm=${ns.name}`,
    '--set-string',
    `nodeSelector.nfv\\.dev/e2e-helm=${ns.name}`,
    '--set',
    `tolerations[0].key=${TEST_LABEL}`,
    '--set',
    'tolerations[0].operator=Exists',
  ]);
}, TIMEOUT_MS);

afterAll(async () => {
  // A failed test can leave the release behind; its cluster-scoped objects would outlive the namespace.
  if (release && helmHome) await helm(['uninstall', release, '--namespace', ns.name, '--ignore-not-found']);
  if (nodeName) await deleteKwokNodes(e2eKubeConfig(), [nodeName]);
  await ns?.delete();
  client?.close();
  if (helmHome) await rm(helmHome, { recursive: true, force: true });
}, TIMEOUT_MS);

describe('helm install', () => {
  test('succeeds and prints the notes', () => {
    expect(installed.stderr).toBe('');
    expect(installed.code).toBe(0);
    expect(installed.stdout).toContain('STATUS: deployed');
    expect(installed.stdout).toContain(`get lease nfv-operator-leader`);
  });

  test(
    'the CRDs are installed, Established and served (Helm skips those that already exist)',
    async () => {
      for (const name of CRD_NAMES) {
        await waitUntil(`CRD ${name} Established`, async () => {
          const crd = await client.get<KubeObject & { status?: { conditions?: { type: string; status: string }[] } }>(crds, name);
          return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
        });
      }
      // A CRD Helm has just created answers 503 for a moment while its storage starts.
      expect(await waitUntil('VirtualNetworkFunctions served', async () => (await client.list(vnfs, { namespace: ns.name })).items)).toEqual([]);
    },
    TIMEOUT_MS,
  );

  test(
    'the API server kept the workloads’ security settings as rendered (nothing pruned or defaulted away)',
    async () => {
      const agent = await client.get<Workload>(daemonSets, agentName(), { namespace: ns.name });
      const agentPod = agent.spec.template.spec;
      expect(agentPod.containers[0]!.securityContext).toEqual({
        privileged: false,
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        runAsUser: 0,
        runAsGroup: 0,
        runAsNonRoot: false,
        capabilities: { drop: ['ALL'], add: ['SYS_ADMIN', 'SYS_CHROOT', 'SYS_PTRACE'] },
      });
      expect(agentPod.securityContext).toEqual({ seccompProfile: { type: 'RuntimeDefault' }, appArmorProfile: { type: 'Unconfined' } });
      expect(agentPod.volumes!.map((v) => v.name)).toEqual(['host-sys', 'host-cgroup', 'host-proc', 'host-dev', 'device-plugins', 'pod-resources', 'nri', 'state-root']);
      const controller = await client.get<Workload>(deployments, controllerName(), { namespace: ns.name });
      expect(controller.spec.template.spec.securityContext).toEqual({ runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    },
    TIMEOUT_MS,
  );

  test(
    'the pods are created and (KWOK) become ready: 2 controller replicas, 1 agent on the NFV node',
    async () => {
      await waitUntil(
        'controller Deployment available with 2 replicas',
        async () => (await client.get<Workload>(deployments, controllerName(), { namespace: ns.name })).status?.availableReplicas === 2,
        { timeoutMs: 90_000, intervalMs: 250 },
      );
      await waitUntil(
        'node agent DaemonSet ready on the one NFV node',
        async () => {
          const status = (await client.get<Workload>(daemonSets, agentName(), { namespace: ns.name })).status;
          return status?.desiredNumberScheduled === 1 && status.numberReady === 1;
        },
        { timeoutMs: 90_000, intervalMs: 250 },
      );
      const agentPods = await client.list<KubeObject & { spec: { nodeName?: string } }>(pods, { namespace: ns.name, labelSelector: 'app.kubernetes.io/component=node-agent' });
      expect(agentPods.items.map((p) => p.spec.nodeName)).toEqual([nodeName]);
    },
    TIMEOUT_MS,
  );
});

describe('RBAC, as the service accounts', () => {
  test(
    'the controller can do what the code does',
    async () => {
      const sa = serviceAccount(controllerName());
      const allowed: string[][] = [
        ['list', 'virtualnetworkfunctions.nfv.dev', '--all-namespaces'],
        ['watch', 'pods', '--all-namespaces'],
        ['patch', 'virtualnetworkfunctions.nfv.dev', '-n', 'default'],
        ['patch', 'virtualnetworkfunctions.nfv.dev', '--subresource=status', '-n', 'default'],
        ['update', 'virtualnetworkfunctions.nfv.dev', '--subresource=finalizers', '-n', 'default'],
        ['patch', 'nfvnodes.nfv.dev', '--subresource=status'],
        ['patch', 'hugepagepools.nfv.dev', '--subresource=status'],
        ['create', 'pods', '-n', 'default'],
        ['delete', 'pods', '-n', 'default'],
        ['create', 'configmaps', '-n', 'default'],
        ['create', 'events', '-n', 'default'],
        ['create', 'leases.coordination.k8s.io', '-n', ns.name],
        ['get', 'leases.coordination.k8s.io/nfv-operator-leader', '-n', ns.name],
        ['update', 'leases.coordination.k8s.io/nfv-operator-leader', '-n', ns.name],
      ];
      for (const args of allowed) expect({ args, allowed: await canI(sa, args) }).toEqual({ args, allowed: true });
    },
    TIMEOUT_MS,
  );

  test(
    'the controller cannot do what the code does not',
    async () => {
      const sa = serviceAccount(controllerName());
      const refused: string[][] = [
        ['delete', 'nodes'],
        ['get', 'secrets', '-n', ns.name],
        ['list', 'secrets', '--all-namespaces'],
        ['get', 'pods', '-n', 'default'],
        ['patch', 'pods', '--subresource=status', '-n', 'default'],
        ['delete', 'configmaps', '-n', 'default'],
        ['delete', 'virtualnetworkfunctions.nfv.dev', '-n', 'default'],
        ['patch', 'nfvnodes.nfv.dev'],
        ['create', 'nfvnodes.nfv.dev'],
        ['update', 'leases.coordination.k8s.io/some-other-lease', '-n', ns.name],
        ['update', 'leases.coordination.k8s.io/nfv-operator-leader', '-n', 'default'],
        ['create', 'clusterrolebindings.rbac.authorization.k8s.io'],
      ];
      for (const args of refused) expect({ args, allowed: await canI(sa, args) }).toEqual({ args, allowed: false });
    },
    TIMEOUT_MS,
  );

  test(
    'the node agent can do what its code does, and no more',
    async () => {
      const sa = serviceAccount(agentName());
      const allowed: string[][] = [
        ['create', 'nfvnodes.nfv.dev'],
        ['patch', 'nfvnodes.nfv.dev'],
        ['patch', 'nfvnodes.nfv.dev', '--subresource=status'],
        ['watch', 'virtualnetworkfunctions.nfv.dev', '--all-namespaces'],
        ['patch', 'virtualnetworkfunctions.nfv.dev', '--subresource=status', '-n', 'default'],
        ['list', 'hugepagepools.nfv.dev'],
        ['list', 'pods', '--all-namespaces'],
        ['watch', 'nodes'],
      ];
      const refused: string[][] = [
        ['patch', 'virtualnetworkfunctions.nfv.dev', '-n', 'default'],
        ['delete', 'nfvnodes.nfv.dev'],
        ['patch', 'nfvnodes.nfv.dev', '--subresource=finalizers'],
        ['create', 'pods', '-n', 'default'],
        ['create', 'events', '-n', 'default'],
        ['get', 'secrets', '-n', ns.name],
        ['patch', 'nodes'],
        ['update', 'leases.coordination.k8s.io/nfv-operator-leader', '-n', ns.name],
      ];
      for (const args of allowed) expect({ args, allowed: await canI(sa, args) }).toEqual({ args, allowed: true });
      for (const args of refused) expect({ args, allowed: await canI(sa, args) }).toEqual({ args, allowed: false });
    },
    TIMEOUT_MS,
  );

  test(
    'server-side apply that creates an object needs create as well as patch (dry runs, as service accounts)',
    async () => {
      const configMap = `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: nfv-ssa-probe, namespace: ${ns.name}}\ndata: {a: b}\n`;
      const asController = await kubectl(
        ['apply', '--server-side', '--dry-run=server', '--field-manager=nfv-operator', '--as', serviceAccount(controllerName()), '-f', '-'],
        configMap,
      );
      expect(asController.stderr).toBe('');
      expect(asController.code).toBe(0);
      const asAgent = await kubectl(['apply', '--server-side', '--dry-run=server', '--field-manager=nfv-node-agent', '--as', serviceAccount(agentName()), '-f', '-'], configMap);
      expect(asAgent.code).not.toBe(0);
      expect(asAgent.stderr).toContain('forbidden');

      // patch alone is not enough to create by apply: the API server also authorizes `create`.
      const patchOnly = `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: configmaps-patch-only, namespace: ${ns.name}}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [patch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: configmaps-patch-only, namespace: ${ns.name}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: configmaps-patch-only}
subjects: [{kind: ServiceAccount, name: default, namespace: ${ns.name}}]
`;
      expect((await kubectl(['apply', '-f', '-'], patchOnly)).code).toBe(0);
      const asPatchOnly = await kubectl(['apply', '--server-side', '--dry-run=server', '--field-manager=probe', '--as', serviceAccount('default'), '-f', '-'], configMap);
      expect(asPatchOnly.code).not.toBe(0);
      expect(asPatchOnly.stderr).toMatch(/cannot create resource "configmaps"/);
    },
    TIMEOUT_MS,
  );
});

test(
  'the API server refuses Bidirectional propagation for a non-privileged container, which is why the agent uses HostToContainer',
  async () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'bidirectional-probe', namespace: ns.name },
      spec: {
        containers: [
          {
            name: 'c',
            image: 'nfv-operator/node-agent:dev',
            securityContext: { capabilities: { add: ['SYS_ADMIN'] } },
            volumeMounts: [{ name: 'state', mountPath: '/var/lib/nfv-operator', mountPropagation: 'Bidirectional' }],
          },
        ],
        volumes: [{ name: 'state', hostPath: { path: '/var/lib/nfv-operator' } }],
      },
    };
    const result = await kubectl(['create', '--dry-run=server', '-f', '-'], JSON.stringify(pod));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('Bidirectional mount propagation is available only to privileged containers');
  },
  TIMEOUT_MS,
);

test(
  'helm uninstall removes every object of the release and leaves the CRDs',
  async () => {
    const uninstalled = await helm(['uninstall', release, '--namespace', ns.name, '--wait']);
    expect(uninstalled.stderr).toBe('');
    expect(uninstalled.code).toBe(0);
    const namespaced: [ResourceRef, string][] = [
      [deployments, controllerName()],
      [daemonSets, agentName()],
      [serviceAccounts, controllerName()],
      [serviceAccounts, agentName()],
      [services, `${release}-nfv-operator-metrics`],
      [roles, `${release}-nfv-operator-leader-election`],
      [roleBindings, `${release}-nfv-operator-leader-election`],
    ];
    for (const [resource, name] of namespaced) {
      await waitUntil(`${resource.kind} ${name} deleted`, () => gone(resource, name, ns.name), { timeoutMs: 60_000, intervalMs: 200 });
    }
    for (const resource of [clusterRoles, clusterRoleBindings]) {
      for (const name of [controllerName(), agentName()]) expect(await gone(resource, name)).toBe(true);
    }
    for (const name of CRD_NAMES) expect(await gone(crds, name)).toBe(false);
  },
  TIMEOUT_MS,
);
