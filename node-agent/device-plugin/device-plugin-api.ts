import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** The device plugin API version kubelet v1.37 speaks (`pluginapi.Version`). */
export const DEVICE_PLUGIN_API_VERSION = 'v1beta1';

/**
 * kubelet's device-plugin directory (`pluginapi.DevicePluginPath`; kubelet v1.37 serves kubelet.sock
 * there whatever its --root-dir), and its registration socket in it.
 */
export const DEFAULT_DEVICE_PLUGIN_DIR = '/var/lib/kubelet/device-plugins';
export const KUBELET_SOCKET = 'kubelet.sock';

/** `pluginapi.Healthy` / `pluginapi.Unhealthy`. */
export type DeviceHealth = 'Healthy' | 'Unhealthy';

// Messages as @grpc/proto-loader hands them over with keepCase: field names as in api.proto.
export type Empty = Record<string, never>;
export interface DevicePluginOptions {
  pre_start_required: boolean;
  get_preferred_allocation_available: boolean;
}
export interface RegisterRequest {
  version: string;
  endpoint: string;
  resource_name: string;
  options: DevicePluginOptions;
}
export interface Device {
  ID: string;
  health: DeviceHealth;
  topology?: { nodes: { ID: number }[] };
}
export interface ListAndWatchResponse {
  devices: Device[];
}
export interface DeviceSpec {
  container_path: string;
  host_path: string;
  permissions: string;
}
export interface ContainerAllocateResponse {
  envs: Record<string, string>;
  mounts: { container_path: string; host_path: string; read_only: boolean }[];
  devices: DeviceSpec[];
  annotations: Record<string, string>;
  cdi_devices: { name: string }[];
}
export interface AllocateRequest {
  container_requests: { devices_ids: string[] }[];
}
export interface AllocateResponse {
  container_responses: ContainerAllocateResponse[];
}

/** api.proto sits next to this module (the build copies it into dist). */
const PROTO_PATH = fileURLToPath(new URL('./api.proto', import.meta.url));

interface LoadedApi {
  v1beta1: {
    Registration: grpc.ServiceClientConstructor;
    DevicePlugin: grpc.ServiceClientConstructor;
  };
}

const loaded = grpc.loadPackageDefinition(
  protoLoader.loadSync(PROTO_PATH, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true }),
) as unknown as LoadedApi;

/** Client constructor and service definition of kubelet's Registration service. */
export const RegistrationClient = loaded.v1beta1.Registration;
/** Client constructor and service definition of the DevicePlugin service a plugin serves. */
export const DevicePluginClient = loaded.v1beta1.DevicePlugin;

/** `unix://` target of a socket path, as grpc-js spells it. */
export function unixTarget(socketPath: string): string {
  return `unix://${socketPath}`;
}
