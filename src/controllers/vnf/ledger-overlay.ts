import type { NfvNode } from '../../api/nfv-node.js';

/**
 * The NfvNode objects this process wrote most recently, kept until the informer has caught up
 * with them: like kube-scheduler's assume cache. Without it, the next placement would plan from
 * the ledger as it was before our own write, collide with it on the resourceVersion precondition
 * and retry until the watch event arrives. resourceVersions are compared as integers, as the
 * scheduler's assume cache does; the precondition stays the safety net if that ever misleads.
 */
export class LedgerOverlay {
  private readonly written = new Map<string, NfvNode>();

  /** Remembers an NfvNode as the API server returned it after our write. */
  remember(node: NfvNode): void {
    this.written.set(node.metadata.name!, node);
  }

  /** The newer of the cached object and the one we wrote. */
  latest(name: string, cached: NfvNode | undefined): NfvNode | undefined {
    const ours = this.written.get(name);
    if (!ours) return cached;
    if (cached && revision(cached) >= revision(ours)) {
      this.written.delete(name);
      return cached;
    }
    return ours;
  }
}

function revision(node: NfvNode): bigint {
  try {
    return BigInt(node.metadata.resourceVersion ?? '0');
  } catch {
    return 0n;
  }
}
