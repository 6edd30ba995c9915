import type { ApplyOptions } from '../../../src/runtime/kube-client.js';
import type { KubeObject, ResourceRef } from '../../../src/runtime/kube-object.js';
import { StatusWriter, type WriteStatusOptions } from '../../../src/runtime/status-writer.js';

const vnfs: ResourceRef = { group: 'nfv.dev', version: 'v1alpha1', plural: 'virtualnetworkfunctions', kind: 'VirtualNetworkFunction', namespaced: true };
const ready = { type: 'Ready', status: 'True', reason: 'Running', message: '', lastTransitionTime: '2024-01-01T00:00:00Z' };

function recordingClient() {
  const calls: { obj: KubeObject; options: ApplyOptions }[] = [];
  const client = {
    apply: async <T extends KubeObject>(_ref: ResourceRef, obj: T, options: ApplyOptions) => {
      calls.push({ obj, options });
      return obj;
    },
  };
  return { client, calls };
}

function vnf(status?: Record<string, unknown>): KubeObject & { status?: unknown } {
  return { apiVersion: 'nfv.dev/v1alpha1', kind: 'VirtualNetworkFunction', metadata: { name: 'fw', namespace: 'ns', generation: 3 }, status };
}

describe('StatusWriter', () => {
  it.each<{ name: string; current?: Record<string, unknown>; desired: Record<string, unknown>; options?: WriteStatusOptions; written: boolean }>([
    { name: 'no status yet', current: undefined, desired: { phase: 'Pending' }, written: true },
    { name: 'identical (observedGeneration included)', current: { phase: 'Running', observedGeneration: 3, conditions: [ready] }, desired: { phase: 'Running', conditions: [ready] }, written: false },
    { name: 'same content, other key order', current: { observedGeneration: 3, conditions: [ready], phase: 'Running' }, desired: { conditions: [ready], phase: 'Running' }, written: false },
    { name: 'observedGeneration behind', current: { phase: 'Running', observedGeneration: 2 }, desired: { phase: 'Running' }, written: true },
    { name: 'condition changed', current: { observedGeneration: 3, conditions: [ready] }, desired: { conditions: [{ ...ready, status: 'False' }] }, written: true },
    { name: 'a field dropped', current: { observedGeneration: 3, phase: 'Running', node: 'n1' }, desired: { phase: 'Running' }, written: true },
    {
      name: 'a field of another manager ignored with desiredKeys',
      current: { observedGeneration: 3, phase: 'Running', hostState: { cpus: '2-3' } },
      desired: { phase: 'Running' },
      options: { compare: 'desiredKeys' },
      written: false,
    },
    { name: 'observedGeneration not asked for', current: { phase: 'Running' }, desired: { phase: 'Running' }, options: { observedGeneration: false }, written: false },
  ])('$name → written: $written', async ({ current, desired, options, written }) => {
    const { client, calls } = recordingClient();
    const writer = new StatusWriter(client, { fieldManager: 'nfv-operator' });
    const result = await writer.write(vnfs, vnf(current), desired, options);
    expect(result.written).toBe(written);
    expect(calls).toHaveLength(written ? 1 : 0);
  });

  it('applies only name, namespace and status to the status subresource with its field manager', async () => {
    const { client, calls } = recordingClient();
    const writer = new StatusWriter(client, { fieldManager: 'nfv-node-agent' });
    const result = await writer.write(vnfs, vnf({ phase: 'Pending' }), { phase: 'Running' });
    expect(result.status).toEqual({ phase: 'Running', observedGeneration: 3 });
    expect(calls[0]).toEqual({
      obj: { metadata: { name: 'fw', namespace: 'ns' }, status: { phase: 'Running', observedGeneration: 3 } },
      options: { fieldManager: 'nfv-node-agent', force: true, subresource: 'status', signal: undefined },
    });
  });
});
