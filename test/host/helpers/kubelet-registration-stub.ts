/**
 * kubelet's side of the device plugin protocol, for protocol tests: it serves Registration on
 * `<dir>/kubelet.sock` and, like kubelet's device manager, dials each plugin that registers, asks
 * its options and keeps its ListAndWatch stream open, recording every device list it receives.
 * Built from the agent's vendored api.proto, so both ends speak the same messages.
 */
import { rm } from 'node:fs/promises';
import { posix } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  DevicePluginClient,
  KUBELET_SOCKET,
  RegistrationClient,
  unixTarget,
  type AllocateRequest,
  type AllocateResponse,
  type Device,
  type DevicePluginOptions,
  type Empty,
  type ListAndWatchResponse,
  type RegisterRequest,
} from '../../../node-agent/device-plugin/device-plugin-api.js';

type PluginApi = grpc.Client & {
  GetDevicePluginOptions(request: Empty, callback: (err: grpc.ServiceError | null, response: DevicePluginOptions) => void): void;
  ListAndWatch(request: Empty): grpc.ClientReadableStream<ListAndWatchResponse>;
  Allocate(request: AllocateRequest, callback: (err: grpc.ServiceError | null, response: AllocateResponse) => void): void;
};

/** One registered plugin as the stub sees it. */
export interface StubPlugin {
  request: RegisterRequest;
  options: DevicePluginOptions;
  /** Every device list received on ListAndWatch, oldest first. */
  lists: Device[][];
  client: PluginApi;
  stream: grpc.ClientReadableStream<ListAndWatchResponse>;
}

export class KubeletRegistrationStub {
  readonly socketPath: string;
  /** Registered plugins by resource name (a later registration replaces an earlier one, as in kubelet). */
  readonly plugins = new Map<string, StubPlugin>();
  /** Resource names in the order they registered. */
  readonly registrations: string[] = [];
  private readonly server = new grpc.Server();

  /** Registrations refused so far, by resource name (see `refuse`). */
  readonly refused: string[] = [];

  /** `refuse` answers a registration with an error, as kubelet does e.g. for a resource name it rejects. */
  constructor(
    readonly pluginDir: string,
    private readonly refuse: (request: RegisterRequest) => string | undefined = () => undefined,
  ) {
    this.socketPath = posix.join(pluginDir, KUBELET_SOCKET);
    this.server.addService(RegistrationClient.service, {
      Register: (call: grpc.ServerUnaryCall<RegisterRequest, Empty>, callback: grpc.sendUnaryData<Empty>) => {
        const refusal = this.refuse(call.request);
        if (refusal) {
          this.refused.push(call.request.resource_name);
          callback({ code: grpc.status.UNKNOWN, details: refusal });
          return;
        }
        this.connect(call.request).then(
          () => callback(null, {}),
          (err: Error) => callback({ code: grpc.status.UNAVAILABLE, details: err.message }),
        );
      },
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) =>
      this.server.bindAsync(unixTarget(this.socketPath), grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
    );
  }

  /** Stops serving and drops every plugin connection, as a dying kubelet does; the socket file goes too. */
  async stop(): Promise<void> {
    for (const plugin of this.plugins.values()) {
      plugin.stream.cancel();
      plugin.client.close();
    }
    this.plugins.clear();
    this.server.forceShutdown();
    await rm(this.socketPath, { force: true });
  }

  /** The latest device list of a resource's plugin. */
  latest(resource: string): Device[] | undefined {
    return this.plugins.get(resource)?.lists.at(-1);
  }

  /** Allocate on a registered plugin, as kubelet does at pod admission. */
  allocate(resource: string, ids: string[]): Promise<AllocateResponse> {
    const plugin = this.plugins.get(resource);
    if (!plugin) return Promise.reject(new Error(`${resource} is not registered`));
    return new Promise((resolve, reject) => plugin.client.Allocate({ container_requests: [{ devices_ids: ids }] }, (err, response) => (err ? reject(err) : resolve(response))));
  }

  private async connect(request: RegisterRequest): Promise<void> {
    const client = new DevicePluginClient(unixTarget(posix.join(this.pluginDir, request.endpoint)), grpc.credentials.createInsecure()) as unknown as PluginApi;
    const options = await new Promise<DevicePluginOptions>((resolve, reject) => client.GetDevicePluginOptions({}, (err, response) => (err ? reject(err) : resolve(response))));
    const stream = client.ListAndWatch({});
    const plugin: StubPlugin = { request, options, lists: [], client, stream };
    stream.on('data', (response: ListAndWatchResponse) => plugin.lists.push(response.devices));
    // A plugin that goes away ends the stream; kubelet would mark its devices unhealthy.
    stream.on('error', () => undefined);
    const previous = this.plugins.get(request.resource_name);
    previous?.stream.cancel();
    previous?.client.close();
    this.plugins.set(request.resource_name, plugin);
    this.registrations.push(request.resource_name);
  }
}
