/**
 * Fake nodes that KWOK plays the kubelet of: KWOK marks them Ready, renews their Lease and makes
 * the pods bound to them Running/Ready. The local cluster's KWOK manages only nodes that carry
 * `kwok.x-k8s.io/node: fake`, so other nodes (e.g. one a test registers as a real agent) are left
 * alone.
 */
import { CoreV1Api, type KubeConfig, type V1Node, type V1Taint } from '@kubernetes/client-node';
import { waitUntil } from './wait-until.js';

/** The annotation the local cluster's KWOK selects nodes by, and its value. */
export const KWOK_NODE_ANNOTATION = 'kwok.x-k8s.io/node';
export const KWOK_NODE_ANNOTATION_VALUE = 'fake';

/** Resources a node reports, as Kubernetes quantities. */
export interface NodeResources {
  cpu: string;
  memory: string;
  pods: string;
  'ephemeral-storage': string;
  'hugepages-2Mi': string;
  'hugepages-1Gi': string;
  /** Extended resources, e.g. `intel.com/sriov_netdevice: '8'`. */
  [resource: string]: string;
}

/**
 * Capacity of a default node: a 2-socket telco server, 32 cores, 256 GiB with 16 GiB of 1 GiB
 * pages and 1 GiB of 2 MiB pages reserved at boot.
 */
export const DEFAULT_KWOK_NODE_CAPACITY: Readonly<NodeResources> = {
  cpu: '32',
  memory: '256Gi',
  pods: '110',
  'ephemeral-storage': '500Gi',
  'hugepages-2Mi': '1Gi',
  'hugepages-1Gi': '16Gi',
};

/** One fake node. */
export interface KwokNodeSpec {
  /** DNS-1123 name; also the `kubernetes.io/hostname` label. */
  name: string;
  /** Added to the well-known labels (hostname, os, arch, `type: kwok`); these win on conflict. */
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Default: none. */
  taints?: V1Taint[];
  /** Merged over `DEFAULT_KWOK_NODE_CAPACITY`. */
  capacity?: Partial<NodeResources>;
  /**
   * Default: the capacity less what a kubelet would hold back: memory minus the huge pages and
   * 1 GiB system reserve, cpu minus one core (on nodes with more than two).
   */
  allocatable?: Partial<NodeResources>;
}

/** The Node object for `spec` (pure). Status is kept on create for Nodes, as kubelets rely on. */
export function kwokNodeManifest(spec: KwokNodeSpec): V1Node {
  const capacity = { ...DEFAULT_KWOK_NODE_CAPACITY, ...definedValues(spec.capacity) } as NodeResources;
  const allocatable = { ...defaultAllocatable(capacity), ...definedValues(spec.allocatable) };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: spec.name,
      labels: {
        ...spec.labels,
        'kubernetes.io/hostname': spec.name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        type: 'kwok',
      },
      annotations: {
        ...spec.annotations,
        [KWOK_NODE_ANNOTATION]: KWOK_NODE_ANNOTATION_VALUE,
        'node.alpha.kubernetes.io/ttl': '0',
      },
    },
    spec: spec.taints?.length ? { taints: spec.taints } : {},
    status: { capacity, allocatable },
  };
}

/**
 * Specs for `count` nodes named `<prefix>-0` … `<prefix>-<count-1>`, all alike
 * (`template` minus the name).
 */
export function kwokNodeSpecs(count: number, prefix = 'kwok-node', template: Omit<KwokNodeSpec, 'name'> = {}): KwokNodeSpec[] {
  return Array.from({ length: count }, (_, i) => ({ ...template, name: `${prefix}-${i}` }));
}

/** Creates one fake node. */
export async function createKwokNode(kc: KubeConfig, spec: KwokNodeSpec): Promise<V1Node> {
  const core = kc.makeApiClient(CoreV1Api);
  try {
    return await core.createNode({ body: kwokNodeManifest(spec) });
  } catch (err) {
    throw new Error(`cannot create KWOK node ${spec.name}: ${describeApiError(err)}`);
  }
}

/** Options of `createKwokNodes`. */
export interface CreateKwokNodesOptions {
  /** Requests in flight at once; default 16. */
  concurrency?: number;
  /** Resolve only once KWOK has marked every node Ready; default true. */
  waitReady?: boolean;
  /** For the Ready wait; default 60 s. */
  timeoutMs?: number;
}

/** Creates the nodes in parallel (bounded) and, by default, waits until they are all Ready. */
export async function createKwokNodes(kc: KubeConfig, specs: KwokNodeSpec[], opts: CreateKwokNodesOptions = {}): Promise<V1Node[]> {
  const created: V1Node[] = new Array<V1Node>(specs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < specs.length) {
      const i = next++;
      const spec = specs[i];
      if (spec) created[i] = await createKwokNode(kc, spec);
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 16, specs.length) }, worker));
  if (opts.waitReady ?? true) {
    await waitForNodesReady(
      kc,
      specs.map((s) => s.name),
      { timeoutMs: opts.timeoutMs },
    );
  }
  return created;
}

/** Waits until every named node has condition Ready=True. */
export async function waitForNodesReady(kc: KubeConfig, names: string[], opts: { timeoutMs?: number } = {}): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const pending = new Set(names);
  await waitUntil(
    `nodes Ready: ${names.length <= 5 ? names.join(', ') : `${names.length} nodes`}`,
    async () => {
      const list = await core.listNode({ labelSelector: 'type=kwok' });
      for (const node of list.items) {
        const ready = node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
        if (ready && node.metadata?.name) pending.delete(node.metadata.name);
      }
      return pending.size === 0;
    },
    { timeoutMs: opts.timeoutMs ?? 60_000, intervalMs: 200 },
  );
}

/** Deletes the nodes; missing ones are fine. */
export async function deleteKwokNodes(kc: KubeConfig, names: string[]): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  await Promise.all(
    names.map(async (name) => {
      try {
        await core.deleteNode({ name });
      } catch (err) {
        if (apiStatusCode(err) !== 404) throw new Error(`cannot delete KWOK node ${name}: ${describeApiError(err)}`);
      }
    }),
  );
}

function defaultAllocatable(capacity: NodeResources): Record<string, string> {
  const hugepages = toBytes(capacity['hugepages-2Mi']) + toBytes(capacity['hugepages-1Gi']);
  const memory = Math.max(0, toBytes(capacity.memory) - hugepages - GiB);
  const cores = Number(capacity.cpu);
  return {
    ...capacity,
    memory: `${Math.floor(memory / 1024)}Ki`,
    cpu: Number.isInteger(cores) && cores > 2 ? String(cores - 1) : capacity.cpu,
  };
}

const GiB = 1024 ** 3;
const BINARY_SUFFIX: Record<string, number> = { Ki: 1024, Mi: 1024 ** 2, Gi: GiB, Ti: 1024 ** 4 };
const DECIMAL_SUFFIX: Record<string, number> = { '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };

/** Bytes of a memory quantity such as `16Gi`, `512Mi` or `1000000`. */
function toBytes(quantity: string): number {
  const match = /^(\d+)(Ki|Mi|Gi|Ti|k|M|G|T|)$/.exec(quantity);
  const suffix = match?.[2] ?? '';
  const factor = BINARY_SUFFIX[suffix] ?? DECIMAL_SUFFIX[suffix];
  if (!match || factor === undefined) throw new Error(`memory quantity "${quantity}" is not an integer with a Ki/Mi/Gi/Ti or k/M/G/T suffix`);
  return Number(match[1]) * factor;
}

function definedValues(record: Partial<NodeResources> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(record ?? {}).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

function apiStatusCode(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? Number((err as { code: unknown }).code) : undefined;
}

function describeApiError(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'body' in err) {
    const body = (err as { body: unknown }).body;
    return `HTTP ${apiStatusCode(err) ?? '?'}: ${typeof body === 'string' ? body : JSON.stringify(body)}`;
  }
  return err instanceof Error ? err.message : String(err);
}
