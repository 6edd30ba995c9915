import { z } from 'zod';
import { conditionsSchema, nodeSelectorSchema, numaNodeSchema, pageSizeSchema, type KubeObject } from './common.js';
import type { CrdDefinition } from './crd.js';

/** Kind name. */
export const HUGEPAGE_POOL_KIND = 'HugepagePool';

/** Schema of HugepagePool.spec. */
export const hugepagePoolSpecSchema = z
  .object({
    nodeSelector: nodeSelectorSchema.optional(),
    pageSize: pageSizeSchema,
    pagesPerNumaNode: z
      .int()
      .min(0)
      .max(1048576)
      .optional()
      .describe('Pages to reserve on every NUMA node of every selected node.'),
    totalPages: z
      .int()
      .min(0)
      .max(1048576)
      .optional()
      .describe('Pages to reserve on every selected node, spread evenly over its NUMA nodes (lower ids take the remainder).'),
  })
  .meta({
    description: 'Hugepages the node agents reserve at runtime (no reboot) on the selected nodes.',
    'x-kubernetes-validations': [
      {
        rule: 'has(self.pagesPerNumaNode) != has(self.totalPages)',
        message: 'set exactly one of pagesPerNumaNode or totalPages',
      },
    ],
  });

const pageCountsShape = {
  requested: z.int().min(0).describe('Pages the pool asks for.'),
  allocated: z.int().min(0).describe('Pages the kernel actually gave.'),
  claimed: z.int().min(0).describe('Pages held by placed VNFs.'),
  free: z.int().min(0).describe('Allocated pages not claimed by any VNF.'),
};

/** Page counts of a pool on one NUMA node of one node. */
export const numaPageCountsSchema = z
  .object({ numaNode: numaNodeSchema.describe('NUMA node id.'), ...pageCountsShape })
  .describe('Pages of the pool on one NUMA node.');

/** Schema of HugepagePool.status. */
export const hugepagePoolStatusSchema = z
  .object({
    observedGeneration: z.int().optional().describe('metadata.generation the status reflects.'),
    requested: z.int().min(0).optional().describe('Pages requested over all nodes.'),
    allocated: z.int().min(0).optional().describe('Pages the kernels gave over all nodes.'),
    claimed: z.int().min(0).optional().describe('Pages held by VNFs over all nodes.'),
    free: z.int().min(0).optional().describe('Pages free for new VNFs over all nodes.'),
    nodes: z
      .array(
        z
          .object({
            node: z.string().describe('Node name.'),
            ...pageCountsShape,
            numaNodes: z.array(numaPageCountsSchema).default([]).describe('The same per NUMA node.'),
            reason: z.string().optional().describe('Why the node has fewer pages than requested, in CamelCase.'),
            message: z.string().optional().describe('Details of reason.'),
          })
          .describe('Pages of the pool on one node, as its agent reports them.'),
      )
      .optional()
      .meta({
        description: 'Per-node page counts.',
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['node'],
      }),
    conditions: conditionsSchema(
      'Ready; Degraded (the kernel gave fewer pages than requested); KubeletAdvertised: False (WaitingForNodeStatus) while ' +
        "a node's allocatable nfv.dev/hugepages-<size> has fewer pages than its node agent's device plugin offers (seconds " +
        'after a pool change, or as long as the plugin is not registered with kubelet), True (PagesAdvertised) once kubelet ' +
        'advertises them; no kubelet restart is needed, and Ready does not wait for it.',
    ).optional(),
  })
  .describe('Observed state of the pool, aggregated from the node agents.');

/** HugepagePool.spec. */
export type HugepagePoolSpec = z.output<typeof hugepagePoolSpecSchema>;
/** HugepagePool.status. */
export type HugepagePoolStatus = z.output<typeof hugepagePoolStatusSchema>;
/** A HugepagePool object. */
export type HugepagePool = KubeObject<HugepagePoolSpec, HugepagePoolStatus>;

/**
 * Pages a pool asks for on each NUMA node of one node. totalPages is spread evenly and the
 * remainder goes to the lowest NUMA ids, so every agent and the controller agree on the split.
 */
export function poolPagesPerNumaNode(spec: HugepagePoolSpec, numaNodes: readonly number[]): Map<number, number> {
  const ids = [...numaNodes].sort((a, b) => a - b);
  const pages = new Map<number, number>();
  if (spec.pagesPerNumaNode !== undefined) {
    for (const id of ids) pages.set(id, spec.pagesPerNumaNode);
    return pages;
  }
  const total = spec.totalPages ?? 0;
  ids.forEach((id, index) => {
    pages.set(id, Math.floor(total / ids.length) + (index < total % ids.length ? 1 : 0));
  });
  return pages;
}

/** The HugepagePool CRD. */
export const hugepagePoolCrd: CrdDefinition = {
  kind: HUGEPAGE_POOL_KIND,
  plural: 'hugepagepools',
  singular: 'hugepagepool',
  shortNames: ['hpp'],
  categories: ['nfv'],
  scope: 'Cluster',
  description: 'Hugepages reserved at runtime on a set of nodes, from which VNFs draw theirs.',
  spec: hugepagePoolSpecSchema,
  status: hugepagePoolStatusSchema,
  printerColumns: [
    { name: 'Page Size', type: 'string', jsonPath: '.spec.pageSize' },
    { name: 'Requested', type: 'integer', jsonPath: '.status.requested' },
    { name: 'Allocated', type: 'integer', jsonPath: '.status.allocated' },
    { name: 'Claimed', type: 'integer', jsonPath: '.status.claimed' },
    { name: 'Free', type: 'integer', jsonPath: '.status.free' },
    { name: 'Degraded', type: 'string', jsonPath: '.status.conditions[?(@.type=="Degraded")].status' },
    { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status', priority: 1 },
    { name: 'Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].reason', priority: 1 },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ],
};
