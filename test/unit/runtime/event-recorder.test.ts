import { describe, expect, test } from '@jest/globals';
import { ApiError } from '../../../src/runtime/api-error.js';
import { EventRecorder, type ObjectEvent } from '../../../src/runtime/event-recorder.js';
import { FakeClock } from '../../../src/runtime/fake-clock.js';
import type { CreateOptions } from '../../../src/runtime/kube-client.js';
import type { KubeObject, ResourceRef } from '../../../src/runtime/kube-object.js';
import { recordingLogger, silentLogger } from './test-support.js';

function recordingClient(fail?: Error) {
  const calls: { ref: ResourceRef; obj: KubeObject & Record<string, unknown>; options: CreateOptions | undefined }[] = [];
  const client = {
    create: async <T extends KubeObject>(ref: ResourceRef, obj: T, options?: CreateOptions): Promise<T> => {
      calls.push({ ref, obj: obj as KubeObject & Record<string, unknown>, options });
      if (fail) throw fail;
      return obj;
    },
  };
  return { client, calls };
}

const vnf: KubeObject = {
  apiVersion: 'nfv.dev/v1alpha1',
  kind: 'VirtualNetworkFunction',
  metadata: { name: 'fw-a', namespace: 'edge', uid: 'uid-1', resourceVersion: '42' },
};
const placed: ObjectEvent = { type: 'Normal', reason: 'Placed', message: 'placed on node-1 NUMA 0, CPUs 2-3' };
const clock = new FakeClock(Date.UTC(2026, 10, 29, 10, 0, 0));

describe('EventRecorder', () => {
  test('creates a core/v1 Event about the object, named after it, stamped by the clock', async () => {
    const { client, calls } = recordingClient();
    const recorder = new EventRecorder(client, { component: 'nfv-operator', instance: 'nfv-operator-7d9c-x2', logger: silentLogger(), clock });
    await recorder.record(vnf, placed);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.ref).toMatchObject({ group: '', version: 'v1', plural: 'events' });
    expect(calls[0]!.obj).toEqual({
      metadata: { generateName: 'fw-a.', namespace: 'edge' },
      involvedObject: { apiVersion: 'nfv.dev/v1alpha1', kind: 'VirtualNetworkFunction', name: 'fw-a', namespace: 'edge', uid: 'uid-1', resourceVersion: '42' },
      type: 'Normal',
      reason: 'Placed',
      message: 'placed on node-1 NUMA 0, CPUs 2-3',
      firstTimestamp: '2026-11-29T10:00:00.000Z',
      lastTimestamp: '2026-11-29T10:00:00.000Z',
      count: 1,
      source: { component: 'nfv-operator' },
      reportingComponent: 'nfv-operator',
      reportingInstance: 'nfv-operator-7d9c-x2',
    });
  });

  test.each<{ name: string; object: KubeObject; namespace: string; instance?: string; expectedInstance: string }>([
    { name: 'namespaced object: its namespace', object: vnf, namespace: 'edge', instance: 'pod-1', expectedInstance: 'pod-1' },
    { name: 'cluster-scoped object: default, as kubectl looks there', object: { apiVersion: 'nfv.dev/v1alpha1', kind: 'NfvNode', metadata: { name: 'node-1', uid: 'u' } }, namespace: 'default', expectedInstance: 'nfv-operator' },
  ])('$name; instance defaults to the component', async ({ object, namespace, instance, expectedInstance }) => {
    const { client, calls } = recordingClient();
    await new EventRecorder(client, { component: 'nfv-operator', ...(instance ? { instance } : {}), logger: silentLogger(), clock }).record(object, placed);
    expect(calls[0]!.obj.metadata).toEqual({ generateName: `${object.metadata!.name}.`, namespace });
    expect(calls[0]!.obj.reportingInstance).toBe(expectedInstance);
  });

  test('cuts messages to the 1 KiB the API server accepts', async () => {
    const { client, calls } = recordingClient();
    await new EventRecorder(client, { component: 'nfv-operator', logger: silentLogger(), clock }).record(vnf, { ...placed, message: 'x'.repeat(5000) });
    expect(calls[0]!.obj.message).toBe('x'.repeat(1024));
  });

  test('passes the abort signal to the request', async () => {
    const { client, calls } = recordingClient();
    const signal = new AbortController().signal;
    await new EventRecorder(client, { component: 'nfv-operator', logger: silentLogger(), clock }).record(vnf, placed, signal);
    expect(calls[0]!.options).toEqual({ signal });
  });

  test('a failed write is logged with the reason and object, never thrown', async () => {
    const { client } = recordingClient(new ApiError(403, { reason: 'Forbidden', message: 'events is forbidden' }, 'POST /api/v1/namespaces/edge/events'));
    const { logger, lines } = recordingLogger();
    await expect(new EventRecorder(client, { component: 'nfv-operator', logger, clock }).record(vnf, placed)).resolves.toBeUndefined();
    expect(lines).toEqual([expect.objectContaining({ level: 40, msg: 'could not record event', reason: 'Placed', object: 'fw-a' })]);
    expect((lines[0]!.err as { message: string }).message).toMatch(/events is forbidden/);
  });
});
