import type { VirtualNetworkFunction } from '../../api/virtual-network-function.js';

/** What the links of a VNF mean for its placement. */
export type LinkVerdict =
  | { kind: 'free' }
  | { kind: 'colocate'; peer: string; node: string }
  | { kind: 'wait'; reason: 'PeerNotFound' | 'WaitingForPeer' | 'Unschedulable'; message: string }
  | { kind: 'stalled'; reason: 'LinkMismatch'; message: string };

/**
 * Checks every memif link against its peer: the peer must exist and link back with the other
 * role and the same id. Every VNF of a chain (the VNFs connected by links, transitively) must
 * share one node, so the member whose name sorts first is placed first and every other member
 * waits until some member is placed, then joins it. Ordering only direct pairs is not enough:
 * in a chain a-c-b, a and b do not link to each other and could land on different nodes, which
 * c could then never join.
 *
 * `chain` holds the other members of this VNF's chain (missing ones as undefined), as
 * {@link chainOf} finds them.
 */
export function linkVerdict(vnf: VirtualNetworkFunction, chain: ReadonlyMap<string, VirtualNetworkFunction | undefined>): LinkVerdict {
  const name = vnf.metadata.name!;
  for (const link of vnf.spec.links) {
    const peer = chain.get(link.peer);
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
  }
  const nodes = new Map<string, string>();
  for (const [member, other] of chain) {
    const node = other?.status?.placement?.node;
    if (node) nodes.set(member, node);
  }
  const distinct = [...new Set(nodes.values())];
  if (distinct.length > 1) {
    const where = [...nodes].map(([member, node]) => `${member} on ${node}`).join(', ');
    return { kind: 'wait', reason: 'Unschedulable', message: `VNFs of this memif chain run on different nodes (${where}); memif needs one node` };
  }
  if (distinct.length === 1) {
    const [member, node] = [...nodes][0]!;
    return { kind: 'colocate', peer: member, node };
  }
  const first = [...chain.keys()].filter((member) => chain.get(member)).sort()[0];
  if (first !== undefined && first < name) return { kind: 'wait', reason: 'WaitingForPeer', message: `waiting for VNF ${first}, first of this memif chain, to be placed` };
  return { kind: 'free' };
}

/**
 * The other VNFs of `vnf`'s chain: every VNF reachable through links, in either direction, by
 * name in the VNF's namespace; a named peer that does not exist maps to undefined.
 */
export function chainOf(vnf: VirtualNetworkFunction, byName: (name: string) => VirtualNetworkFunction | undefined): Map<string, VirtualNetworkFunction | undefined> {
  const chain = new Map<string, VirtualNetworkFunction | undefined>();
  const queue = [vnf];
  const seen = new Set([vnf.metadata.name!]);
  while (queue.length > 0) {
    for (const link of queue.shift()!.spec.links) {
      if (seen.has(link.peer)) continue;
      seen.add(link.peer);
      const peer = byName(link.peer);
      chain.set(link.peer, peer);
      if (peer) queue.push(peer);
    }
  }
  return chain;
}
