import { z } from 'zod';
import type { V1ObjectMeta } from '@kubernetes/client-node';
import { BYTE_QUANTITY_PATTERN } from './quantity.js';

/** Hugepage sizes that x86_64 and arm64 (4k base pages) kernels offer. */
export const PAGE_SIZES = ['2Mi', '1Gi'] as const;
/** A hugepage size as written in specs. */
export type PageSize = (typeof PAGE_SIZES)[number];

/** Bytes of one page of each size. */
export const PAGE_SIZE_BYTES: Record<PageSize, number> = { '2Mi': 2 << 20, '1Gi': 1 << 30 };

/** Schema of a hugepage size field. */
export const pageSizeSchema = z
  .enum(PAGE_SIZES)
  .describe('Hugepage size: 2Mi or 1Gi. 1Gi pages are hard to reserve at runtime once memory is fragmented.');

/** Schema of a binary byte quantity such as 512Mi or 2Gi. */
export function byteQuantitySchema(description: string) {
  return z.string().regex(new RegExp(BYTE_QUANTITY_PATTERN)).describe(description);
}

/** A NUMA node id as the kernel numbers them under /sys/devices/system/node. */
export const numaNodeSchema = z.int().min(0).max(63);

/** A DNS-1123 label: names of interfaces, links and pools that end up in paths and env names. */
export const dnsLabelSchema = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);

/** A Kubernetes-convention condition (metav1.Condition). */
export const conditionSchema = z
  .object({
    type: z.string().min(1).max(316).describe('Type of condition in CamelCase, e.g. Ready.'),
    status: z.enum(['True', 'False', 'Unknown']).describe('Status of the condition: True, False or Unknown.'),
    reason: z.string().min(1).max(1024).describe('Machine-readable reason for the last transition, in CamelCase.'),
    message: z.string().max(32768).describe('Human-readable details of the last transition.'),
    lastTransitionTime: z.string().describe('When the status last changed (RFC 3339).'),
    observedGeneration: z.int().min(0).optional().describe('metadata.generation the condition was computed from.'),
  })
  .describe('One observation of the state of this object.');

/** Schema of a conditions list: a map list keyed by type, so several field managers can own entries. */
export function conditionsSchema(description: string) {
  return z
    .array(conditionSchema)
    .max(32)
    .meta({ description, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] });
}

/** Schema of node-selector labels. */
export const nodeSelectorSchema = z
  .record(z.string(), z.string())
  .describe('Labels a Node must carry to be chosen. Empty means every NFV node.');

/** A kind's object: the usual envelope around a spec and a status. */
export interface KubeObject<Spec, Status> {
  apiVersion: string;
  kind: string;
  metadata: V1ObjectMeta;
  spec: Spec;
  status?: Status;
}
