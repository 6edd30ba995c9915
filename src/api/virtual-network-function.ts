import { z } from 'zod';
import {
  byteQuantitySchema,
  conditionsSchema,
  dnsLabelSchema,
  nodeSelectorSchema,
  numaNodeSchema,
  pageSizeSchema,
  type KubeObject,
} from './common.js';
import { PCI_ADDRESS_PATTERN, PCI_ID_PATTERN } from './pci-address.js';
import { celPattern, type CrdDefinition } from './crd.js';

/** Kind name. */
export const VNF_KIND = 'VirtualNetworkFunction';

/** Drivers a VNF interface can be bound to on the host before its container starts. */
export const NIC_DRIVERS = ['vfio-pci', 'uio_pci_generic', 'igb_uio', 'kernel'] as const;
/** One of {@link NIC_DRIVERS}. */
export type NicDriver = (typeof NIC_DRIVERS)[number];

// The placement is computed from these fields once; changing them would silently disagree with
// what the VNF holds, so the API server refuses the change instead.
function immutable(field: string) {
  return { rule: 'self == oldSelf', message: `spec.${field} cannot change once set: delete and recreate the VNF` };
}

const objectName = dnsLabelSchema.describe('Name of an object in the same namespace.');

const cpusSchema = z
  .object({
    count: z
      .int()
      .min(1)
      .max(512)
      .describe('Number of exclusive, isolated CPUs (DPDK lcores) the VNF gets. At least 1.'),
    fullCores: z
      .boolean()
      .default(true)
      .describe(
        'Take whole physical cores: every hyperthread sibling of a chosen core goes to this VNF, so no other ' +
          "workload shares its core's caches and pipelines. count must then be a multiple of the node's threads " +
          'per core. Default true.',
      ),
    numaNode: numaNodeSchema
      .optional()
      .describe('Pin the VNF to this NUMA node. Default: any NUMA node that holds all of its CPUs, hugepages and NICs.'),
  })
  .meta({
    description: 'Exclusive CPUs. They come from the isolated CPUs of one NUMA node. Immutable.',
    'x-kubernetes-validations': [immutable('cpus')],
  });

const hugepagesSchema = z
  .object({
    pageSize: pageSizeSchema,
    amount: byteQuantitySchema(
      'Hugepage memory for the VNF, a multiple of pageSize, e.g. 2Gi. It is the size= of its hugetlbfs mount ' +
        'and its hugetlb cgroup limit.',
    ),
    pool: dnsLabelSchema.describe('Name of the HugepagePool to draw the pages from; its pageSize must match.'),
  })
  .meta({
    description: 'Hugepages, taken from a HugepagePool on the NUMA node of the CPUs. Immutable.',
    'x-kubernetes-validations': [
      immutable('hugepages'),
      {
        rule: '!isQuantity(self.amount) || quantity(self.amount).asInteger() % quantity(self.pageSize).asInteger() == 0',
        message: 'amount must be a whole number of pages: a multiple of pageSize (e.g. 2Gi with 1Gi pages)',
        fieldPath: '.amount',
      },
    ],
  });

const deviceSelectorSchema = z
  .object({
    pciAddress: celPattern(
      PCI_ADDRESS_PATTERN,
      'must be a full PCI address such as 0000:3b:00.1 (domain:bus:device.function, lower-case hex)',
    )
      .optional()
      .describe('Exactly this device, by full PCI address (e.g. 0000:3b:00.1).'),
    vendor: celPattern(PCI_ID_PATTERN, 'must be a PCI vendor id of four lower-case hex digits, e.g. 8086')
      .optional()
      .describe('Any free device with this PCI vendor id (e.g. 8086); needs deviceId.'),
    deviceId: celPattern(PCI_ID_PATTERN, 'must be a PCI device id of four lower-case hex digits, e.g. 159b')
      .optional()
      .describe('PCI device id (e.g. 159b), together with vendor.'),
    pool: dnsLabelSchema.optional().describe('Any free device of this NIC pool, as the node agent names them.'),
  })
  .meta({
    description: 'Which NIC to take: one of pciAddress, vendor+deviceId, or pool.',
    'x-kubernetes-validations': [
      {
        rule: '[has(self.pciAddress), has(self.vendor), has(self.pool)].filter(x, x).size() == 1',
        message: 'set exactly one of pciAddress, vendor (with deviceId) or pool',
      },
      {
        rule: 'has(self.vendor) == has(self.deviceId)',
        message: 'vendor and deviceId go together: set both or neither',
      },
    ],
  });

const interfaceSchema = z
  .object({
    name: dnsLabelSchema.describe('Interface name inside the VNF, e.g. uplink.'),
    device: deviceSelectorSchema,
    driver: z
      .enum(NIC_DRIVERS)
      .default('vfio-pci')
      .describe('Driver the host binds the device to: vfio-pci (default), uio_pci_generic, igb_uio, or kernel.'),
  })
  .describe('A NIC handed to the VNF.');

const linkSchema = z
  .object({
    name: dnsLabelSchema.describe('Link name, unique in this VNF; the memif socket is named after the server side.'),
    peer: objectName.describe('Name of the VNF at the other end, in the same namespace.'),
    role: z
      .enum(['server', 'client'])
      .describe('memif role: the server creates the socket and the shared memory, the client connects.'),
    id: z.int().min(0).max(65535).default(0).describe('memif interface id, equal on both ends. Default 0.'),
  })
  .describe('A shared-memory (memif) link to another VNF on the same node, for chains.');

const configSchema = z
  .object({
    inline: z.string().max(262144).optional().describe('Configuration text, written to mountPath/config.'),
    configMapRef: z
      .object({
        name: objectName.describe('ConfigMap name.'),
        key: z.string().min(1).max(253).describe('Key in the ConfigMap.'),
      })
      .optional()
      .describe('A key of a ConfigMap in the same namespace, mounted as mountPath/config.'),
    mountPath: z
      .string()
      .regex(/^\/[^\0]*$/)
      .max(4096)
      .default('/etc/vnf')
      .describe('Directory in the container that holds the file "config". Default /etc/vnf.'),
  })
  .meta({
    description: 'Configuration handed to the application as a file.',
    'x-kubernetes-validations': [
      { rule: 'has(self.inline) != has(self.configMapRef)', message: 'set exactly one of inline or configMapRef' },
    ],
  });

const tolerationSchema = z
  .object({
    key: z.string().max(316).optional().describe('Taint key; empty with operator Exists matches every taint.'),
    operator: z.enum(['Exists', 'Equal']).optional().describe('Exists or Equal (default Equal).'),
    value: z.string().max(63).optional().describe('Taint value for operator Equal.'),
    effect: z
      .enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute'])
      .optional()
      .describe('Taint effect to tolerate; empty matches all effects.'),
    tolerationSeconds: z.int().optional().describe('For NoExecute: how long the pod stays bound after the taint.'),
  })
  .describe('A toleration, as in a pod spec.');

/** Schema of VirtualNetworkFunction.spec. */
export const vnfSpecSchema = z
  .object({
    image: z.string().min(1).max(1024).describe('Container image of the DPDK application.'),
    command: z.array(z.string()).max(256).optional().describe("Entrypoint; the image's when empty."),
    args: z.array(z.string()).max(1024).optional().describe('Arguments; the EAL options come in the NFV_EAL_ARGS env var.'),
    config: configSchema.optional(),
    cpus: cpusSchema,
    hugepages: hugepagesSchema,
    interfaces: z
      .array(interfaceSchema)
      .max(16)
      .default([])
      .meta({
        description: 'NICs handed to the VNF, all on the NUMA node of its CPUs. Immutable.',
        'x-kubernetes-validations': [immutable('interfaces')],
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['name'],
      }),
    links: z
      .array(linkSchema)
      .max(16)
      .default([])
      .meta({
        description: 'memif links to other VNFs; linked VNFs are placed on the same node. Immutable.',
        'x-kubernetes-validations': [immutable('links')],
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['name'],
      }),
    nodeSelector: nodeSelectorSchema.optional(),
    tolerations: z.array(tolerationSchema).max(32).optional().describe('Tolerations of the VNF pod.'),
  })
  .describe('Desired VNF: its application and the isolated resources it needs.');

/** VNF lifecycle phase; conditions carry the details. */
export const VNF_PHASES = ['Pending', 'Placed', 'Starting', 'Running', 'Terminating', 'Failed'] as const;
/** One of {@link VNF_PHASES}. */
export type VnfPhase = (typeof VNF_PHASES)[number];

const allocatedDeviceSchema = z
  .object({
    interface: dnsLabelSchema.describe('Interface name from spec.interfaces.'),
    pciAddress: z.string().describe('PCI address of the device.'),
    iommuGroup: z.int().min(-1).describe('IOMMU group of the device; -1 when the node has no IOMMU.'),
    driver: z.enum(NIC_DRIVERS).describe('Driver the device is bound to for the VNF.'),
  })
  .describe('A NIC allocated to the VNF.');

/** Schema of the host paths the agent prepares for a VNF; deterministic, see host-paths.ts. */
export const hostPathsSchema = z
  .object({
    root: z.string().describe('Directory of everything the agent prepared for this VNF.'),
    hugepages: z.string().describe('hugetlbfs mount, size= the allocation; mounted at /dev/hugepages.'),
    pciDevices: z.string().describe('Symlinks to the allowed PCI devices only; mounted over /sys/bus/pci/devices.'),
    cpuMask: z.string().describe('online/present/possible files listing only the VNF CPUs.'),
    emptyDir: z.string().describe('Empty directory mounted over /sys/devices/system/cpu/cpuN of foreign CPUs.'),
    readySignal: z.string().describe('Directory where the agent writes "ready" (the pod UID) when preparation is done.'),
    memif: z.string().optional().describe('Directory of the memif sockets of the VNF links.'),
  })
  .describe('Host paths the agent prepares, mounted into the pod.');

/** Schema of VirtualNetworkFunction.status.placement. */
export const placementSchema = z
  .object({
    node: z.string().describe('Node the VNF runs on.'),
    numaNode: z.int().describe('NUMA node of its CPUs, hugepages and NICs.'),
    cpus: z.string().describe('Exclusive CPUs in Linux list form, e.g. 4-7; the EAL core list.'),
    hugepages: z
      .object({
        pool: z.string().describe('HugepagePool the pages come from.'),
        pageSize: pageSizeSchema,
        bytes: z.int().min(0).describe('Bytes of hugepages.'),
      })
      .describe('Hugepages held.'),
    devices: z.array(allocatedDeviceSchema).default([]).describe('NICs held, with their IOMMU groups.'),
    hostPaths: hostPathsSchema,
  })
  .describe('Where the VNF runs and what it holds; written once when it is placed.');

/** Schema of VirtualNetworkFunction.status. */
export const vnfStatusSchema = z
  .object({
    phase: z.enum(VNF_PHASES).optional().describe('Pending, Placed, Starting, Running, Terminating or Failed.'),
    observedGeneration: z.int().optional().describe('metadata.generation the controller last acted on.'),
    podName: z.string().optional().describe('Name of the pod running the VNF.'),
    placement: placementSchema.optional(),
    conditions: conditionsSchema('Ready, Placed, NodePrepared, Reconciling and Stalled.').optional(),
  })
  .describe('Observed state of the VNF.');

/** VirtualNetworkFunction.spec after defaults. */
export type VnfSpec = z.output<typeof vnfSpecSchema>;
/** VirtualNetworkFunction.status. */
export type VnfStatus = z.output<typeof vnfStatusSchema>;
/** VirtualNetworkFunction.status.placement. */
export type Placement = z.output<typeof placementSchema>;
/** The host paths of a placement. */
export type HostPaths = z.output<typeof hostPathsSchema>;
/** One VNF interface. */
export type VnfInterface = VnfSpec['interfaces'][number];
/** A VirtualNetworkFunction object. */
export type VirtualNetworkFunction = KubeObject<VnfSpec, VnfStatus>;

/** The VirtualNetworkFunction CRD. */
export const vnfCrd: CrdDefinition = {
  kind: VNF_KIND,
  plural: 'virtualnetworkfunctions',
  singular: 'virtualnetworkfunction',
  shortNames: ['vnf', 'vnfs'],
  categories: ['nfv'],
  scope: 'Namespaced',
  description:
    'A DPDK virtualized network function run in a container with exclusive CPUs, hugepages and NICs on one NUMA node, isolated by the node agent.',
  spec: vnfSpecSchema,
  status: vnfStatusSchema,
  rootValidations: [
    {
      rule: '!has(self.spec.links) || self.spec.links.all(l, l.peer != self.metadata.name)',
      message: 'spec.links[].peer must name another VNF, not this one',
    },
  ],
  // Each node agent lists and watches only the VNFs placed on its node.
  selectableFields: ['.status.placement.node'],
  printerColumns: [
    { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
    { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
    { name: 'Node', type: 'string', jsonPath: '.status.placement.node' },
    { name: 'NUMA', type: 'integer', jsonPath: '.status.placement.numaNode' },
    { name: 'CPUs', type: 'string', jsonPath: '.status.placement.cpus' },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ],
};
