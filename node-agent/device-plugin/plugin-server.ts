import { rm } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  DevicePluginClient,
  unixTarget,
  type AllocateRequest,
  type AllocateResponse,
  type Device,
  type DevicePluginOptions,
  type Empty,
  type ListAndWatchResponse,
} from './device-plugin-api.js';
import { AllocationError, containerAllocation, listedDevice, type DeviceNodeView, type DeviceNodes, type PluginDevice } from './plugin-devices.js';

/**
 * The DevicePlugin service of one resource on its own unix socket in kubelet's device-plugin
 * directory. kubelet keeps one ListAndWatch stream open per plugin; {@link update} pushes a new
 * device list on it whenever the device's health changes.
 */
export class DevicePluginServer {
  private readonly server = new grpc.Server();
  private readonly watchers = new Set<grpc.ServerWritableStream<Empty, ListAndWatchResponse>>();
  private listed: Device;

  constructor(
    readonly device: PluginDevice,
    readonly socketPath: string,
    view: DeviceNodeView,
    private readonly nodes: DeviceNodes,
    private readonly logger: Logger,
  ) {
    this.listed = listedDevice(device, view);
    this.server.addService(DevicePluginClient.service, {
      GetDevicePluginOptions: (_call: unknown, callback: grpc.sendUnaryData<DevicePluginOptions>) =>
        callback(null, { pre_start_required: false, get_preferred_allocation_available: false }),
      ListAndWatch: (call: grpc.ServerWritableStream<Empty, ListAndWatchResponse>) => this.listAndWatch(call),
      Allocate: (call: grpc.ServerUnaryCall<AllocateRequest, AllocateResponse>, callback: grpc.sendUnaryData<AllocateResponse>) => {
        this.allocate(call.request).then((response) => callback(null, response), callback);
      },
      // Not advertised in the options, so kubelet never calls them; answered for completeness.
      GetPreferredAllocation: (_call: unknown, callback: grpc.sendUnaryData<{ container_responses: [] }>) => callback(null, { container_responses: [] }),
      PreStartContainer: (_call: unknown, callback: grpc.sendUnaryData<Empty>) => callback(null, {}),
    });
  }

  /** The device as last listed to kubelet. */
  get current(): Device {
    return this.listed;
  }

  /** Listens on the socket, replacing a stale socket file a previous run left. */
  async start(): Promise<void> {
    await rm(this.socketPath, { force: true });
    await new Promise<void>((resolve, reject) =>
      this.server.bindAsync(unixTarget(this.socketPath), grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
    );
  }

  /** Re-lists the device from `view`; sends it to kubelet only when its health changed. */
  update(view: DeviceNodeView): boolean {
    const next = listedDevice(this.device, view);
    if (next.health === this.listed.health) return false;
    this.listed = next;
    this.logger.info({ resource: this.device.resource, health: next.health }, 'device health changed');
    for (const watcher of this.watchers) watcher.write({ devices: [next] });
    return true;
  }

  /** Ends kubelet's streams, stops serving and removes the socket. */
  async stop(): Promise<void> {
    for (const watcher of this.watchers) watcher.end();
    this.watchers.clear();
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    await rm(this.socketPath, { force: true });
  }

  private listAndWatch(call: grpc.ServerWritableStream<Empty, ListAndWatchResponse>): void {
    this.watchers.add(call);
    const forget = () => this.watchers.delete(call);
    call.on('cancelled', forget);
    call.on('close', forget);
    call.on('error', forget);
    call.write({ devices: [this.listed] });
  }

  private async allocate(request: AllocateRequest): Promise<AllocateResponse> {
    // Read the nodes again: kubelet allocates at admission, which may be long after the last listing.
    const view = await this.nodes.view([this.device]);
    try {
      return { container_responses: request.container_requests.map((container) => containerAllocation(this.device, container.devices_ids, view)) };
    } catch (err) {
      if (!(err instanceof AllocationError)) throw err;
      this.logger.warn({ resource: this.device.resource, err: err.message }, 'refused an allocation');
      throw Object.assign(err, { code: grpc.status.FAILED_PRECONDITION, details: err.message });
    }
  }
}
