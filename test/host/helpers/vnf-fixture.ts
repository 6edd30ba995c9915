/** A placed VNF as the controller writes it, for agent tests. */
import { randomUUID } from 'node:crypto';
import { vnfHostPaths } from '../../../src/api/host-paths.js';
import type { Placement, VirtualNetworkFunction } from '../../../src/api/virtual-network-function.js';

/** What varies between test VNFs. */
export interface PlacedVnfOptions {
  stateRoot: string;
  name?: string;
  namespace?: string;
  uid?: string;
  node?: string;
  cpus?: string;
  hugepageBytes?: number;
  devices?: Placement['devices'];
  links?: VirtualNetworkFunction['spec']['links'];
}

export function placedVnf(options: PlacedVnfOptions): VirtualNetworkFunction {
  const uid = options.uid ?? randomUUID();
  const bytes = options.hugepageBytes ?? 4 << 20;
  return {
    apiVersion: 'nfv.dev/v1alpha1',
    kind: 'VirtualNetworkFunction',
    metadata: { name: options.name ?? 'fw', namespace: options.namespace ?? 'edge', uid, generation: 1 },
    spec: {
      image: 'registry.example/fw:1',
      cpus: { count: 1, fullCores: false },
      hugepages: { pageSize: '2Mi', amount: `${bytes >> 20}Mi`, pool: 'default' },
      interfaces: [],
      links: options.links ?? [],
    },
    status: {
      podName: `${options.name ?? 'fw'}-pod`,
      placement: {
        node: options.node ?? 'worker-1',
        numaNode: 0,
        cpus: options.cpus ?? '1',
        hugepages: { pool: 'default', pageSize: '2Mi', bytes },
        devices: options.devices ?? [],
        hostPaths: vnfHostPaths(options.stateRoot, uid),
      },
    },
  };
}
