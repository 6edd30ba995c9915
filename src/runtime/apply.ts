import type { KubeClient } from './kube-client.js';
import { apiVersionOf, type KubeObject, type ResourceRef } from './kube-object.js';
import { controllerReference } from './owner-references.js';

/** Options of a {@link ChildApplier}. */
export interface ChildApplierOptions {
  /** Field manager of this component, e.g. `nfv-operator`. */
  fieldManager: string;
  /** Take over fields other managers hold. Default true: the controller is the authority on its children. */
  force?: boolean;
}

/** Options of {@link ChildApplier.apply}. */
export interface ApplyChildOptions {
  /** The object that owns the child; it becomes the child's controller owner reference. */
  owner?: KubeObject;
  signal?: AbortSignal;
}

/**
 * Server-side applies children with one field manager: fills `apiVersion`/`kind` from the
 * resource, the namespace from the owner, and a controller owner reference so the child is
 * garbage-collected with its owner and its events map back to it.
 */
export class ChildApplier {
  private readonly fieldManager: string;
  private readonly force: boolean;

  constructor(
    private readonly client: Pick<KubeClient, 'apply'>,
    options: ChildApplierOptions,
  ) {
    this.fieldManager = options.fieldManager;
    this.force = options.force ?? true;
  }

  /**
   * Applies `child` (the full intent of this field manager for it) and returns the object the
   * server stored.
   *
   * @throws TypeError if the owner is namespaced and the child is cluster-scoped or in another
   * namespace: Kubernetes ignores such owner references and the child would never be collected.
   */
  async apply<T extends KubeObject>(ref: ResourceRef, child: T, options: ApplyChildOptions = {}): Promise<T> {
    const desired = withOwner(ref, { ...child, apiVersion: apiVersionOf(ref), kind: ref.kind }, options.owner);
    return this.client.apply(ref, desired, { fieldManager: this.fieldManager, force: this.force, signal: options.signal });
  }
}

/** `child` with the owner's namespace (when it has none) and a controller reference to `owner`. */
export function withOwner<T extends KubeObject>(ref: ResourceRef, child: T, owner: KubeObject | undefined): T {
  if (!owner) return child;
  const ownerNamespace = owner.metadata?.namespace;
  const metadata = { ...child.metadata };
  if (ref.namespaced && !metadata.namespace && ownerNamespace) metadata.namespace = ownerNamespace;
  if (ownerNamespace && (!ref.namespaced || metadata.namespace !== ownerNamespace)) {
    throw new TypeError(
      `${ref.kind} ${metadata.name ?? '?'} cannot be owned by ` +
        `${owner.kind ?? '?'} ${ownerNamespace}/${owner.metadata?.name ?? '?'}: ` +
        'a namespaced owner can only own objects in its own namespace',
    );
  }
  const reference = controllerReference(owner);
  const others = (metadata.ownerReferences ?? []).filter((r) => r.uid !== reference.uid);
  metadata.ownerReferences = [...others, reference];
  return { ...child, metadata };
}
