import { ChildApplier, withOwner } from '../../../src/runtime/apply.js';
import type { ApplyOptions } from '../../../src/runtime/kube-client.js';
import { coreResources, type KubeObject, type ResourceRef } from '../../../src/runtime/kube-object.js';
import { controllerKey, controllerOf, controllerReference, ownerReference } from '../../../src/runtime/owner-references.js';

const vnf: KubeObject = {
  apiVersion: 'nfv.dev/v1alpha1',
  kind: 'VirtualNetworkFunction',
  metadata: { name: 'fw', namespace: 'tenant-a', uid: 'uid-fw' },
};
const nodeOwner: KubeObject = { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1', uid: 'uid-n1' } };
const clusterKind: ResourceRef = { group: 'nfv.dev', version: 'v1alpha1', plural: 'nfvnodes', kind: 'NfvNode', namespaced: false };

describe('owner references', () => {
  it.each([
    { name: 'plain reference by default', options: undefined, expected: { apiVersion: 'nfv.dev/v1alpha1', kind: 'VirtualNetworkFunction', name: 'fw', uid: 'uid-fw' } },
    {
      name: 'controller reference',
      options: { controller: true, blockOwnerDeletion: true },
      expected: { apiVersion: 'nfv.dev/v1alpha1', kind: 'VirtualNetworkFunction', name: 'fw', uid: 'uid-fw', controller: true, blockOwnerDeletion: true },
    },
  ])('$name', ({ options, expected }) => {
    expect(ownerReference(vnf, options)).toEqual(expected);
  });

  it('controllerReference sets both flags', () => {
    expect(controllerReference(vnf)).toMatchObject({ controller: true, blockOwnerDeletion: true });
  });

  it.each([
    { name: 'no uid', owner: { ...vnf, metadata: { name: 'fw' } } },
    { name: 'no kind', owner: { apiVersion: 'v1', metadata: { name: 'fw', uid: 'u' } } },
  ])('rejects an owner with $name', ({ owner }) => {
    expect(() => ownerReference(owner)).toThrow(/apiVersion, kind, metadata.name and metadata.uid/);
  });

  it('finds the controller and maps it to a key', () => {
    const pod: KubeObject = {
      metadata: { name: 'fw-pod', namespace: 'tenant-a', ownerReferences: [ownerReference(nodeOwner), controllerReference(vnf)] },
    };
    expect(controllerOf(pod)?.name).toBe('fw');
    expect(controllerKey(pod, 'VirtualNetworkFunction')).toBe('tenant-a/fw');
    expect(controllerKey(pod, 'VirtualNetworkFunction', 'nfv.dev/v1alpha1')).toBe('tenant-a/fw');
    expect(controllerKey(pod, 'VirtualNetworkFunction', 'nfv.dev/v2')).toBeUndefined();
    expect(controllerKey(pod, 'ReplicaSet')).toBeUndefined();
    expect(controllerKey({ metadata: { name: 'x' } }, 'VirtualNetworkFunction')).toBeUndefined();
  });
});

describe('withOwner', () => {
  it('defaults the namespace to the owner and replaces an older reference to the same owner', () => {
    const child = withOwner<KubeObject>(coreResources.pods, { metadata: { name: 'p', ownerReferences: [ownerReference(vnf), ownerReference(nodeOwner)] } }, vnf);
    expect(child.metadata?.namespace).toBe('tenant-a');
    expect(child.metadata?.ownerReferences).toEqual([ownerReference(nodeOwner), controllerReference(vnf)]);
  });

  it.each([
    { name: 'child in another namespace', ref: coreResources.pods, child: { metadata: { name: 'p', namespace: 'other' } }, owner: vnf },
    { name: 'cluster-scoped child of a namespaced owner', ref: clusterKind, child: { metadata: { name: 'n' } }, owner: vnf },
  ])('rejects $name', ({ ref, child, owner }) => {
    expect(() => withOwner(ref, child, owner)).toThrow(/namespaced owner can only own objects in its own namespace/);
  });

  it('lets a cluster-scoped owner own anything', () => {
    expect(withOwner<KubeObject>(coreResources.pods, { metadata: { name: 'p', namespace: 'x' } }, nodeOwner).metadata?.ownerReferences).toHaveLength(1);
  });
});

describe('ChildApplier', () => {
  it('applies with its field manager, force, apiVersion, kind and controller reference', async () => {
    const calls: { ref: ResourceRef; obj: KubeObject; options: ApplyOptions }[] = [];
    const client = {
      apply: async <T extends KubeObject>(ref: ResourceRef, obj: T, options: ApplyOptions) => {
        calls.push({ ref, obj, options });
        return obj;
      },
    };
    const applier = new ChildApplier(client, { fieldManager: 'nfv-operator' });
    await applier.apply(coreResources.configMaps, { metadata: { name: 'fw-config' }, data: { a: '1' } } as KubeObject, { owner: vnf });
    expect(calls).toHaveLength(1);
    expect(calls[0]?.options).toEqual({ fieldManager: 'nfv-operator', force: true, signal: undefined });
    expect(calls[0]?.obj).toEqual({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'fw-config', namespace: 'tenant-a', ownerReferences: [controllerReference(vnf)] },
      data: { a: '1' },
    });
  });
});
