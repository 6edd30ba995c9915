import { GROUP, VERSION } from '../api/group.js';
import { coreResources, type ResourceRef } from '../runtime/kube-object.js';

/** REST coordinates of every kind the controllers read or write. */
export const resources = {
  ...coreResources,
  namespaces: { group: '', version: 'v1', plural: 'namespaces', kind: 'Namespace', namespaced: false },
  vnfs: { group: GROUP, version: VERSION, plural: 'virtualnetworkfunctions', kind: 'VirtualNetworkFunction', namespaced: true },
  hugepagePools: { group: GROUP, version: VERSION, plural: 'hugepagepools', kind: 'HugepagePool', namespaced: false },
  nfvNodes: { group: GROUP, version: VERSION, plural: 'nfvnodes', kind: 'NfvNode', namespaced: false },
} as const satisfies Record<string, ResourceRef>;
