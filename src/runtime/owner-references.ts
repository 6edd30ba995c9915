import type { KubeObject, OwnerReference } from './kube-object.js';

/** Options of {@link ownerReference}. */
export interface OwnerReferenceOptions {
  /** Mark the owner as the managing controller (at most one per object). Default false. */
  controller?: boolean;
  /** Foreground deletion of the owner waits for this child. Default false. */
  blockOwnerDeletion?: boolean;
}

/**
 * An owner reference to `owner`, for a child's `metadata.ownerReferences`.
 *
 * @throws TypeError if `owner` lacks apiVersion, kind, name or uid (objects from a cache have all four).
 */
export function ownerReference(owner: KubeObject, options: OwnerReferenceOptions = {}): OwnerReference {
  const { apiVersion, kind } = owner;
  const name = owner.metadata?.name;
  const uid = owner.metadata?.uid;
  if (!apiVersion || !kind || !name || !uid) {
    throw new TypeError(
      `cannot reference owner ${kind ?? '?'} ${name ?? '?'}: apiVersion, kind, metadata.name and metadata.uid are all needed; ` +
        'pass the object as read from the API server or an informer',
    );
  }
  const reference: OwnerReference = { apiVersion, kind, name, uid };
  if (options.controller) reference.controller = true;
  if (options.blockOwnerDeletion) reference.blockOwnerDeletion = true;
  return reference;
}

/** The reference a controller puts on what it creates: `controller` and `blockOwnerDeletion` both true. */
export function controllerReference(owner: KubeObject): OwnerReference {
  return ownerReference(owner, { controller: true, blockOwnerDeletion: true });
}

/** The owner reference marked `controller: true`, if any. */
export function controllerOf(obj: KubeObject): OwnerReference | undefined {
  return obj.metadata?.ownerReferences?.find((reference) => reference.controller === true);
}

/**
 * Queue key of the controller owning `obj` if it is of `ownerKind` (in `obj`'s namespace, since
 * owners of namespaced objects live beside them). Handy in a `KeyMapper`: a Pod to its VNF.
 */
export function controllerKey(obj: KubeObject, ownerKind: string, ownerApiVersion?: string): string | undefined {
  const reference = controllerOf(obj);
  if (!reference || reference.kind !== ownerKind) return undefined;
  if (ownerApiVersion && reference.apiVersion !== ownerApiVersion) return undefined;
  const namespace = obj.metadata?.namespace;
  return namespace ? `${namespace}/${reference.name}` : reference.name;
}
