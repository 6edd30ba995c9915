import * as grpc from '@grpc/grpc-js';
import { DEVICE_PLUGIN_API_VERSION, RegistrationClient, unixTarget, type Empty, type RegisterRequest } from './device-plugin-api.js';

type RegistrationApi = grpc.Client & {
  Register(request: RegisterRequest, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, response: Empty) => void): void;
};

/**
 * Registers one plugin with kubelet through its Registration service. kubelet dials the plugin's
 * socket (`endpoint`, relative to the device-plugin directory) before it answers, so the plugin
 * must already be serving.
 */
export async function registerWithKubelet(kubeletSocket: string, endpoint: string, resourceName: string, timeoutMs = 10_000): Promise<void> {
  const client = new RegistrationClient(unixTarget(kubeletSocket), grpc.credentials.createInsecure()) as unknown as RegistrationApi;
  const request: RegisterRequest = {
    version: DEVICE_PLUGIN_API_VERSION,
    endpoint,
    resource_name: resourceName,
    options: { pre_start_required: false, get_preferred_allocation_available: false },
  };
  try {
    await new Promise<Empty>((resolve, reject) =>
      client.Register(request, { deadline: Date.now() + timeoutMs }, (err, response) => (err ? reject(err) : resolve(response))),
    );
  } catch (err) {
    throw new Error(`kubelet at ${kubeletSocket} refused the device plugin of ${resourceName}: ${(err as Error).message}`, { cause: err });
  } finally {
    client.close();
  }
}
