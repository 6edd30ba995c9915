import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';

/** The NRI version of the vendored api.proto, reported when the plugin registers. */
export const NRI_API_VERSION = 'v0.12.3';

/** Where containerd (`[plugins.'io.containerd.nri.v1.nri'] socket_path`) and CRI-O listen by default. */
export const DEFAULT_NRI_SOCKET = '/var/run/nri/nri.sock';

/** ttrpc service names of api.proto. */
export const PLUGIN_SERVICE = 'nri.pkg.api.v1alpha1.Plugin';
export const RUNTIME_SERVICE = 'nri.pkg.api.v1alpha1.Runtime';

/** `Event` of api.proto: the events a plugin may subscribe to. */
export const NriEvent = { CREATE_CONTAINER: 4 } as const;

/**
 * The `events` of a ConfigureResponse: bit `event - 1` per event (pkg/api/event.go EventMask.Set).
 * 0 is not "nothing": the runtime reads it as every event.
 */
export function eventMask(events: readonly number[]): number {
  return events.reduce((mask, event) => mask | (1 << (event - 1)), 0);
}

// Messages as @grpc/proto-loader hands them over with keepCase and defaults: field names as in
// api.proto, only the fields the plugin reads or writes.
export type Empty = Record<string, never>;
export interface RegisterPluginRequest {
  plugin_name: string;
  plugin_idx: string;
  NRI_version: string;
}
export interface ConfigureRequest {
  config: string;
  runtime_name: string;
  runtime_version: string;
  registration_timeout: number;
  request_timeout: number;
  NRI_version: string;
}
export interface ConfigureResponse {
  events: number;
}
/** `HugepageLimit`: `page_size` as the hugetlb cgroup files name it (`2MB`, `1GB`), `limit` in bytes. */
export interface HugepageLimit {
  page_size: string;
  limit: number;
}
export interface LinuxResources {
  hugepage_limits: HugepageLimit[];
}
export interface PodSandbox {
  id: string;
  name: string;
  uid: string;
  namespace: string;
  labels: Record<string, string>;
}
export interface Container {
  id: string;
  pod_sandbox_id: string;
  name: string;
  linux: { resources: LinuxResources | null } | null;
}
export interface SynchronizeRequest {
  pods: PodSandbox[];
  containers: Container[];
  more: boolean;
}
export interface SynchronizeResponse {
  update: never[];
  more: boolean;
}
export interface CreateContainerRequest {
  pod: PodSandbox | null;
  container: Container | null;
}
export interface ContainerAdjustment {
  linux: { resources: Partial<LinuxResources> };
}
export interface CreateContainerResponse {
  adjust?: ContainerAdjustment;
}

/** Encodes a message to protobuf bytes, or decodes one. */
export interface MessageCodec<T> {
  encode(message: T): Buffer;
  decode(bytes: Buffer): T;
}

/** The request and response codecs of one method. */
export interface MethodCodecs<Req, Res> {
  request: MessageCodec<Req>;
  response: MessageCodec<Res>;
}

/** api.proto sits next to this module (the build copies it into dist). */
const PROTO_PATH = fileURLToPath(new URL('./api.proto', import.meta.url));

const definition = protoLoader.loadSync(PROTO_PATH, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });

function methodCodecs<Req extends object, Res extends object>(service: string, method: string): MethodCodecs<Req, Res> {
  const methods = definition[service] as protoLoader.ServiceDefinition | undefined;
  const found = methods?.[method];
  if (!found) throw new Error(`api.proto has no ${service}.${method}`);
  return {
    request: { encode: (m) => found.requestSerialize(m), decode: (b) => found.requestDeserialize(b) as Req },
    response: { encode: (m) => found.responseSerialize(m), decode: (b) => found.responseDeserialize(b) as Res },
  };
}

/** The methods the plugin serves (the runtime calls them) and the one it calls. */
export const nriMethods = {
  configure: methodCodecs<ConfigureRequest, ConfigureResponse>(PLUGIN_SERVICE, 'Configure'),
  synchronize: methodCodecs<SynchronizeRequest, SynchronizeResponse>(PLUGIN_SERVICE, 'Synchronize'),
  shutdown: methodCodecs<Empty, Empty>(PLUGIN_SERVICE, 'Shutdown'),
  createContainer: methodCodecs<CreateContainerRequest, CreateContainerResponse>(PLUGIN_SERVICE, 'CreateContainer'),
  registerPlugin: methodCodecs<RegisterPluginRequest, Empty>(RUNTIME_SERVICE, 'RegisterPlugin'),
};
