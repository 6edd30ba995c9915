import type { VnfSpec } from '../../api/virtual-network-function.js';
import type { CandidateNode, Taint } from './candidate-node.js';

/** True when every label of `selector` is on the node with the same value. */
export function matchesSelector(labels: Record<string, string>, selector: Record<string, string> | undefined): boolean {
  return Object.entries(selector ?? {}).every(([key, value]) => labels[key] === value);
}

function tolerates(tolerations: VnfSpec['tolerations'], taint: Taint): boolean {
  return (tolerations ?? []).some((t) => {
    if (t.effect && t.effect !== taint.effect) return false;
    if (t.operator === 'Exists') return !t.key || t.key === taint.key;
    return t.key === taint.key && (t.value ?? '') === (taint.value ?? '');
  });
}

/**
 * Why the VNF may not go to this node at all, independent of free resources; undefined when it
 * may. The wording completes "N nodes were skipped: ...".
 */
export function ineligibility(node: CandidateNode, spec: VnfSpec, poolSelector: Record<string, string> | undefined): string | undefined {
  if (!node.ready) return 'not Ready';
  if (node.unschedulable) return 'cordoned';
  if (!matchesSelector(node.labels, spec.nodeSelector)) return 'not matching spec.nodeSelector';
  if (!matchesSelector(node.labels, poolSelector)) return `outside HugepagePool ${spec.hugepages.pool}`;
  const taint = node.taints.find((t) => t.effect !== 'PreferNoSchedule' && !tolerates(spec.tolerations, t));
  if (taint) return `tainted ${taint.key}:${taint.effect}`;
  return undefined;
}
