/** API group of every nfv-operator kind. */
export const GROUP = 'nfv.dev';
/** The one served and stored version. */
export const VERSION = 'v1alpha1';
/** `apiVersion` of every nfv-operator object. */
export const API_VERSION = `${GROUP}/${VERSION}`;

/** Server-side apply field manager of the cluster controller. */
export const CONTROLLER_FIELD_MANAGER = 'nfv-operator';
/** Server-side apply field manager of the node agent. */
export const AGENT_FIELD_MANAGER = 'nfv-node-agent';

/** Finalizer that holds a VNF until its node agent has undone every host change. */
export const VNF_FINALIZER = `${GROUP}/node-teardown`;

/** Label on children (pods) naming the VNF that owns them. */
export const VNF_NAME_LABEL = `${GROUP}/vnf`;
/** Label on Nodes that marks them NFV-capable; the agent DaemonSet selects on it. */
export const NFV_NODE_LABEL = `${GROUP}/nfv-node`;
