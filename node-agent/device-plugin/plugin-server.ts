import { rm } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { jsonEqual } from '../../src/runtime/json-equal.js';
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
import { AllocationError, type DeviceNodeView, type DeviceNodes } from './plugin-devices.js';
import { allocateContainer, listedDevices, nicDevices, type PluginResource } from './plugin-resources.js';

/**
 * The DevicePlugin service of one resource on its own unix socket in kubelet's device-plugin
 * directory. kubelet keeps one ListAndWatch stream open per plugin; {@link update} pushes a new
 * device list on it whenever the list changes: a device's health, or the number of pages.
 */
export class DevicePluginServer {
  private readonly server = new grpc.Server();
  private readonly watchers = new Set<grpc.ServerWritableStream<Empty, ListAndWatchResponse>>();
  private listed: Device[];

  constructor(
    private resource: PluginResource,
    readonly socketPath: string,
    view: DeviceNodeView,
    private readonly nodes: DeviceNodes,
    private readonly logger: Logger,
  ) {
    this.listed = listedDevices(resource, view);
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

  /** The devices as last listed to kubelet. */
  get current(): readonly Device[] {
    return this.listed;
  }

  /** Listens on the socket, replacing a stale socket file a previous run left. */
  async start(): Promise<void> {
    await rm(this.socketPath, { force: true });
    await new Promise<void>((resolve, reject) =>
      this.server.bindAsync(unixTarget(this.socketPath), grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
    );
  }

  /** Re-lists `resource` (same name, maybe other pages) from `view`; sends the list to kubelet only when it changed. */
  update(resource: PluginResource, view: DeviceNodeView): boolean {
    this.resource = resource;
    const next = listedDevices(resource, view);
    if (jsonEqual(next, this.listed)) return false;
    this.listed = next;
    this.logger.info({ resource: resource.resource, ...listSummary(next) }, 'device list changed');
    for (const watcher of this.watchers) watcher.write({ devices: next });
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
    call.write({ devices: this.listed });
  }

  private async allocate(request: AllocateRequest): Promise<AllocateResponse> {
    const resource = this.resource;
    // Read the nodes again: kubelet allocates at admission, which may be long after the last listing.
    const view = await this.nodes.view(nicDevices([resource]));
    try {
      return { container_responses: request.container_requests.map((container) => allocateContainer(resource, container.devices_ids, view)) };
    } catch (err) {
      if (!(err instanceof AllocationError)) throw err;
      this.logger.warn({ resource: resource.resource, err: err.message }, 'refused an allocation');
      throw Object.assign(err, { code: grpc.status.FAILED_PRECONDITION, details: err.message });
    }
  }
}

/** A device list in the log: how many devices, how many of them Healthy. */
export function listSummary(devices: readonly Device[]): { devices: number; healthy: number } {
  return { devices: devices.length, healthy: devices.filter((device) => device.health === 'Healthy').length };
}
