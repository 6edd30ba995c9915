/** The nfv.dev/v1alpha1 API: every kind, its zod schema and its CRD definition. */
import { hugepagePoolCrd } from './hugepage-pool.js';
import { nfvNodeCrd } from './nfv-node.js';
import { vnfCrd } from './virtual-network-function.js';
import type { CrdDefinition } from './crd.js';

export * from './common.js';
export * from './group.js';
export * from './hugepage-pool.js';
export * from './nfv-node.js';
export * from './virtual-network-function.js';

/** Every CRD the operator serves, in install order. */
export const CRD_DEFINITIONS: readonly CrdDefinition[] = [vnfCrd, hugepagePoolCrd, nfvNodeCrd];
