/**
 * The few object fields the runtime reads. Deliberately loose (no timestamps, every field optional)
 * so that both raw JSON and `@kubernetes/client-node` model types such as `V1ObjectMeta` fit.
 */
export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
}

/** A `metadata.ownerReferences` entry. */
export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** Any Kubernetes object as it travels over the wire. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
}

/** The `metav1.Status` body the API server returns with errors and some deletes. */
export interface StatusBody {
  kind?: 'Status';
  apiVersion?: string;
  status?: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  code?: number;
  details?: {
    name?: string;
    group?: string;
    kind?: string;
    causes?: { reason?: string; message?: string; field?: string }[];
  };
}

/**
 * Which REST resource to talk to. Group `''` is the core (legacy) group served under `/api`.
 *
 * @example
 * { group: 'nfv.dev', version: 'v1alpha1', plural: 'virtualnetworkfunctions',
 *   kind: 'VirtualNetworkFunction', namespaced: true }
 */
export interface ResourceRef {
  /** API group; `''` for core kinds (Pod, Node, ConfigMap...). */
  group: string;
  version: string;
  /** Lower-case plural resource name used in URLs. */
  plural: string;
  /** Kind name, used to fill `kind` on applied objects and on list items (which lack it). */
  kind: string;
  /** Whether objects live in a namespace. */
  namespaced: boolean;
}

/** Built-in resources the runtime itself needs, plus the ones operators commonly watch. */
export const coreResources = {
  pods: { group: '', version: 'v1', plural: 'pods', kind: 'Pod', namespaced: true },
  nodes: { group: '', version: 'v1', plural: 'nodes', kind: 'Node', namespaced: false },
  configMaps: { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap', namespaced: true },
  events: { group: '', version: 'v1', plural: 'events', kind: 'Event', namespaced: true },
  leases: { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', kind: 'Lease', namespaced: true },
} as const satisfies Record<string, ResourceRef>;

/** `apiVersion` of a resource: `version` for the core group, `group/version` otherwise. */
export function apiVersionOf(ref: ResourceRef): string {
  return ref.group === '' ? ref.version : `${ref.group}/${ref.version}`;
}

/**
 * URL path of a collection, an object or an object's subresource.
 * `namespace` is ignored for cluster-scoped resources; omitted for a namespaced one it addresses
 * all namespaces (valid for list and watch only).
 */
export function resourcePath(ref: ResourceRef, namespace?: string, name?: string, subresource?: string): string {
  let path = ref.group === '' ? `/api/${ref.version}` : `/apis/${ref.group}/${ref.version}`;
  if (ref.namespaced && namespace) path += `/namespaces/${encodeURIComponent(namespace)}`;
  path += `/${ref.plural}`;
  if (name !== undefined) path += `/${encodeURIComponent(name)}`;
  if (subresource !== undefined) path += `/${subresource}`;
  return path;
}

/** Cache and queue key of an object: `namespace/name`, or `name` when it has no namespace. */
export function objectKey(obj: KubeObject): string {
  const name = obj.metadata?.name ?? '';
  const namespace = obj.metadata?.namespace;
  return namespace ? `${namespace}/${name}` : name;
}

/** Splits a key made by {@link objectKey}; `namespace` is `undefined` for cluster-scoped keys. */
export function parseObjectKey(key: string): { namespace?: string; name: string } {
  const slash = key.indexOf('/');
  return slash < 0 ? { name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}
