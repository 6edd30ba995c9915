import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { unixTarget } from './device-plugin-api.js';

/** kubelet's PodResources socket (`<root-dir>/pod-resources/kubelet.sock`, root dir /var/lib/kubelet). */
export const DEFAULT_POD_RESOURCES_SOCKET = '/var/lib/kubelet/pod-resources/kubelet.sock';

/** Device IDs kubelet has handed to containers, per resource name. */
export type AllocatedDeviceIds = ReadonlyMap<string, ReadonlySet<string>>;

/** Which device IDs of the agent's resources kubelet has given to pods. */
export interface PodResourcesReader {
  allocatedIds(): Promise<AllocatedDeviceIds>;
}

// Messages as @grpc/proto-loader hands them over with keepCase (podresources.proto).
interface ContainerDevices {
  resource_name: string;
  device_ids: string[];
}
export interface ListPodResourcesResponse {
  pod_resources: { name: string; namespace: string; containers: { name: string; devices: ContainerDevices[] }[] }[];
}

type ListerApi = grpc.Client & {
  List(request: object, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, response: ListPodResourcesResponse) => void): void;
};

/** podresources.proto sits next to this module (the build copies it into dist). */
const PROTO_PATH = fileURLToPath(new URL('./podresources.proto', import.meta.url));
const loaded = grpc.loadPackageDefinition(
  protoLoader.loadSync(PROTO_PATH, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true }),
) as unknown as { v1: { PodResourcesLister: grpc.ServiceClientConstructor } };
/** Client constructor and service definition of kubelet's PodResourcesLister (v1). */
export const PodResourcesListerClient = loaded.v1.PodResourcesLister;

/** The device IDs of a List answer, per resource, for the resources `wanted` accepts. */
export function allocatedIdsOf(response: ListPodResourcesResponse, wanted: (resource: string) => boolean): AllocatedDeviceIds {
  const ids = new Map<string, Set<string>>();
  for (const pod of response.pod_resources) {
    for (const container of pod.containers) {
      for (const { resource_name: resource, device_ids: deviceIds } of container.devices) {
        if (!wanted(resource)) continue;
        if (!ids.has(resource)) ids.set(resource, new Set());
        for (const id of deviceIds) ids.get(resource)!.add(id);
      }
    }
  }
  return ids;
}

/**
 * kubelet's PodResources List, through its socket: which device IDs running pods hold. kubelet
 * serves it on a socket of its own (GA since v1.28); a kubelet restart makes a new socket at the
 * same path, and every call dials afresh.
 */
export class KubeletPodResources implements PodResourcesReader {
  constructor(
    private readonly socketPath: string,
    private readonly wanted: (resource: string) => boolean,
    private readonly timeoutMs = 5000,
  ) {}

  async allocatedIds(): Promise<AllocatedDeviceIds> {
    const client = new PodResourcesListerClient(unixTarget(this.socketPath), grpc.credentials.createInsecure()) as unknown as ListerApi;
    try {
      const response = await new Promise<ListPodResourcesResponse>((resolve, reject) =>
        client.List({}, { deadline: Date.now() + this.timeoutMs }, (err, answer) => (err ? reject(err) : resolve(answer))),
      );
      return allocatedIdsOf(response, this.wanted);
    } catch (err) {
      throw new Error(`kubelet's PodResources at ${this.socketPath}: ${(err as Error).message}`, { cause: err });
    } finally {
      client.close();
    }
  }
}
