import type { VirtualNetworkFunction } from '../../api/virtual-network-function.js';

/** What the links of a VNF mean for its placement. */
export type LinkVerdict =
  | { kind: 'free' }
  | { kind: 'colocate'; peer: string; node: string }
  | { kind: 'wait'; reason: 'PeerNotFound' | 'WaitingForPeer' | 'Unschedulable'; message: string }
  | { kind: 'stalled'; reason: 'LinkMismatch'; message: string };

/**
 * Checks every memif link against its peer: the peer must exist and link back with the other
 * role and the same id. Both ends must share a node, so when neither is placed yet the end whose
 * name sorts first goes first and the other waits: two linked VNFs planned at the same time can
 * never land on different nodes.
 */
export function linkVerdict(vnf: VirtualNetworkFunction, peers: ReadonlyMap<string, VirtualNetworkFunction | undefined>): LinkVerdict {
  const name = vnf.metadata.name!;
  const nodes = new Map<string, string>();
  let waitFor: string | undefined;
  for (const link of vnf.spec.links) {
    const peer = peers.get(link.peer);
    if (!peer) {
      return { kind: 'wait', reason: 'PeerNotFound', message: `spec.links[${link.name}].peer: VNF ${link.peer} does not exist in this namespace` };
    }
    const back = peer.spec.links.find((l) => l.peer === name);
    const fix = `add to VNF ${link.peer} spec.links an entry {peer: ${name}, role: ${link.role === 'server' ? 'client' : 'server'}, id: ${link.id}}`;
    if (!back) return { kind: 'stalled', reason: 'LinkMismatch', message: `spec.links[${link.name}]: VNF ${link.peer} has no link back; ${fix}` };
    if (back.role === link.role || back.id !== link.id) {
      return {
        kind: 'stalled',
        reason: 'LinkMismatch',
        message: `spec.links[${link.name}]: VNF ${link.peer} links back as ${back.role} id ${back.id}; one end must be server and the other client, with equal ids`,
      };
    }
    const peerNode = peer.status?.placement?.node;
    if (peerNode) nodes.set(link.peer, peerNode);
    else if (link.peer < name) waitFor ??= link.peer;
  }
  const distinct = [...new Set(nodes.values())];
  if (distinct.length > 1) {
    const where = [...nodes].map(([peer, node]) => `${peer} on ${node}`).join(', ');
    return { kind: 'wait', reason: 'Unschedulable', message: `linked VNFs run on different nodes (${where}); memif needs one node` };
  }
  if (distinct.length === 1) {
    const [peer, node] = [...nodes][0]!;
    return { kind: 'colocate', peer, node };
  }
  if (waitFor) return { kind: 'wait', reason: 'WaitingForPeer', message: `waiting for linked VNF ${waitFor} to be placed first` };
  return { kind: 'free' };
}
