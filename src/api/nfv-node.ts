import { z } from 'zod';
import { conditionsSchema, numaNodeSchema, pageSizeSchema, type KubeObject } from './common.js';
import { NIC_DRIVERS } from './virtual-network-function.js';
import type { CrdDefinition } from './crd.js';

/** Kind name. */
export const NFV_NODE_KIND = 'NfvNode';

const cpuSchema = z
  .object({
    id: z.int().min(0).describe('Logical CPU id.'),
    numaNode: numaNodeSchema.describe('NUMA node of the CPU.'),
    socket: z.int().min(0).describe('Physical package id.'),
    core: z.int().min(0).describe('Core id within the package; CPUs with the same socket and core are hyperthread siblings.'),
    isolated: z.boolean().describe('Isolated from the kernel scheduler (isolcpus, nohz_full or cpu/isolated): VNFs take only these.'),
  })
  .describe('One logical CPU.');

const hugepageCountsSchema = z
  .object({
    pageSize: pageSizeSchema,
    total: z.int().min(0).describe('Pages the kernel holds (nr_hugepages).'),
    free: z.int().min(0).describe('Pages not mapped by any process (free_hugepages).'),
  })
  .describe('Hugepages of one size on one NUMA node.');

const nicSchema = z
  .object({
    pciAddress: z.string().describe('Full PCI address, e.g. 0000:3b:00.0.'),
    vendor: z.string().describe('PCI vendor id, e.g. 8086.'),
    deviceId: z.string().describe('PCI device id, e.g. 159b.'),
    numaNode: z.int().min(-1).describe('NUMA node the device is attached to; -1 when the platform does not say.'),
    iommuGroup: z.int().min(-1).describe('IOMMU group; -1 without an IOMMU.'),
    driver: z.string().describe('Driver bound now; empty when none.'),
    interface: z.string().optional().describe('Kernel interface name while a kernel driver holds it.'),
    pool: z.string().optional().describe('NIC pool the agent configuration puts it in.'),
    sriovTotalVfs: z.int().min(0).optional().describe('SR-IOV virtual functions the device supports.'),
    hostUse: z
      .string()
      .optional()
      .describe('Why the host needs this device (interface up with addresses or routes, a mounted disk); never handed out.'),
  })
  .describe('One PCI network device.');

/** What the node agent discovered on its node. */
export const inventorySchema = z
  .object({
    threadsPerCore: z.int().min(1).describe('Hyperthreads per physical core.'),
    cpus: z.array(cpuSchema).describe('Every logical CPU.'),
    numaNodes: z
      .array(
        z
          .object({
            id: numaNodeSchema.describe('NUMA node id.'),
            cpus: z.string().describe('Its CPUs in Linux list form.'),
            hugepages: z.array(hugepageCountsSchema).default([]).describe('Hugepages per size.'),
          })
          .describe('One NUMA node.'),
      )
      .describe('NUMA nodes with their hugepages.'),
    nics: z.array(nicSchema).default([]).describe('PCI network devices.'),
  })
  .describe('Hardware inventory, published by the node agent and kept current.');

/** A pool's pages on one NUMA node, as the agent reserved them. */
export const poolReservationSchema = z
  .object({
    pool: z.string().describe('HugepagePool name.'),
    pageSize: pageSizeSchema,
    numaNode: numaNodeSchema.describe('NUMA node id.'),
    requested: z.int().min(0).describe('Pages the pool asks for here.'),
    allocated: z.int().min(0).describe('Pages the kernel gave for it here.'),
    reason: z.string().optional().describe('Why allocated < requested, in CamelCase (e.g. KernelFragmentation).'),
    message: z.string().optional().describe('Details of reason.'),
  })
  .describe('A HugepagePool reservation on one NUMA node.');

/** The controller's record of what a VNF holds on this node (the allocation ledger). */
export const nodeAllocationSchema = z
  .object({
    uid: z.string().describe('UID of the VNF.'),
    vnf: z.string().describe('namespace/name of the VNF.'),
    numaNode: numaNodeSchema.describe('NUMA node of the allocation.'),
    cpus: z.string().describe('CPUs in Linux list form.'),
    hugepages: z
      .object({
        pool: z.string().describe('HugepagePool name.'),
        pageSize: pageSizeSchema,
        bytes: z.int().min(0).describe('Bytes held.'),
      })
      .describe('Hugepages: pool, page size and bytes.'),
    devices: z
      .array(
        z
          .object({
            pciAddress: z.string().describe('PCI address.'),
            iommuGroup: z.int().min(-1).describe('IOMMU group; -1 without an IOMMU.'),
            driver: z.enum(NIC_DRIVERS).describe('Driver the VNF uses.'),
          })
          .describe('A device held.'),
      )
      .default([])
      .describe('NICs held.'),
  })
  .describe('Resources one VNF holds on this node.');

/** Schema of NfvNode.status. */
export const nfvNodeStatusSchema = z
  .object({
    inventory: inventorySchema.optional(),
    hugepagePools: z
      .array(poolReservationSchema)
      .optional()
      .meta({
        description: 'HugepagePool reservations, written by the agent.',
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['pool', 'numaNode'],
      }),
    allocations: z
      .array(nodeAllocationSchema)
      .optional()
      .meta({
        description:
          'What placed VNFs hold, written by the controller with a resourceVersion precondition, so two writers ' +
          'can never hand out the same CPU, device or hugepages.',
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['uid'],
      }),
    agentVersion: z.string().optional().describe('Version of the node agent.'),
    conditions: conditionsSchema('Ready: the agent is running and the inventory is current.').optional(),
  })
  .describe('Inventory and allocations of an NFV node.');

/** NfvNode.status. */
export type NfvNodeStatus = z.output<typeof nfvNodeStatusSchema>;
/** NfvNode.status.inventory. */
export type Inventory = z.output<typeof inventorySchema>;
/** One NIC of the inventory. */
export type InventoryNic = Inventory['nics'][number];
/** One CPU of the inventory. */
export type InventoryCpu = Inventory['cpus'][number];
/** One ledger entry. */
export type NodeAllocation = z.output<typeof nodeAllocationSchema>;
/** One pool reservation. */
export type PoolReservation = z.output<typeof poolReservationSchema>;
/** An NfvNode object: named like its Node, no spec. */
export type NfvNode = KubeObject<Record<string, never> | undefined, NfvNodeStatus>;

/** The NfvNode CRD. */
export const nfvNodeCrd: CrdDefinition = {
  kind: NFV_NODE_KIND,
  plural: 'nfvnodes',
  singular: 'nfvnode',
  shortNames: ['nfvn'],
  categories: ['nfv'],
  scope: 'Cluster',
  description:
    'The NFV view of one Node, named like it: CPUs, NUMA nodes, hugepages and NICs found by the node agent, and what VNFs hold.',
  status: nfvNodeStatusSchema,
  printerColumns: [
    { name: 'Threads/Core', type: 'integer', jsonPath: '.status.inventory.threadsPerCore' },
    { name: 'Agent', type: 'string', jsonPath: '.status.agentVersion' },
    { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ],
};
