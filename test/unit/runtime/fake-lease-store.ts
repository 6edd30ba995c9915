import { ApiError } from '../../../src/runtime/api-error.js';
import type { KubeClient } from '../../../src/runtime/kube-client.js';
import type { KubeObject } from '../../../src/runtime/kube-object.js';
import type { Lease } from '../../../src/runtime/leader-election.js';

type LeaseClient = Pick<KubeClient, 'get' | 'create' | 'update'>;

/**
 * An in-memory API server for Leases with resourceVersion preconditions. Every call yields to the
 * event loop first, so concurrent replicas interleave as they would over the network.
 */
export class FakeLeaseStore {
  private leases = new Map<string, Lease>();
  private version = 0;
  /** Replicas whose requests fail (a partitioned or hung replica). */
  readonly unreachable = new Set<string>();
  readonly writes: { by: string; holder: string }[] = [];

  lease(namespace: string, name: string): Lease | undefined {
    const lease = this.leases.get(`${namespace}/${name}`);
    return lease && structuredClone(lease);
  }

  /** Writes a lease directly, as another actor would. */
  put(lease: Lease): void {
    const key = `${lease.metadata?.namespace}/${lease.metadata?.name}`;
    this.leases.set(key, { ...structuredClone(lease), metadata: { ...lease.metadata, resourceVersion: String(++this.version) } });
  }

  clientFor(identity: string): LeaseClient {
    const reach = async () => {
      await Promise.resolve();
      if (this.unreachable.has(identity)) throw new Error(`${identity}: connection refused`);
    };
    const client = {
      get: async (_ref: unknown, name: string, options: { namespace?: string } = {}) => {
        await reach();
        const lease = this.lease(options.namespace ?? '', name);
        if (!lease) throw new ApiError(404, { reason: 'NotFound' });
        return lease;
      },
      create: async (_ref: unknown, obj: Lease) => {
        await reach();
        const key = `${obj.metadata?.namespace}/${obj.metadata?.name}`;
        if (this.leases.has(key)) throw new ApiError(409, { reason: 'AlreadyExists' });
        this.put(obj);
        this.writes.push({ by: identity, holder: obj.spec?.holderIdentity ?? '' });
        return this.lease(obj.metadata?.namespace ?? '', obj.metadata?.name ?? '');
      },
      update: async (_ref: unknown, obj: Lease) => {
        await reach();
        const current = this.lease(obj.metadata?.namespace ?? '', obj.metadata?.name ?? '');
        if (!current) throw new ApiError(404, { reason: 'NotFound' });
        if (current.metadata?.resourceVersion !== obj.metadata?.resourceVersion) {
          throw new ApiError(409, { reason: 'Conflict', message: 'the object has been modified' });
        }
        this.put(obj);
        this.writes.push({ by: identity, holder: obj.spec?.holderIdentity ?? '' });
        return this.lease(obj.metadata?.namespace ?? '', obj.metadata?.name ?? '');
      },
    };
    return client as unknown as LeaseClient & Record<string, (...args: never[]) => Promise<KubeObject>>;
  }
}
