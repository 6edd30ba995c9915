import { describe, expect, test } from '@jest/globals';
import { allocatedIdsOf, type ListPodResourcesResponse } from '../../../node-agent/device-plugin/pod-resources.js';

const container = (name: string, devices: [string, string[]][]) => ({ name, devices: devices.map(([resource_name, device_ids]) => ({ resource_name, device_ids })) });

describe('allocatedIdsOf: the IDs kubelet handed out, per resource', () => {
  test('collects every container of every pod, only for the wanted resources', () => {
    const response: ListPodResourcesResponse = {
      pod_resources: [
        { name: 'a', namespace: 'edge', containers: [container('vnf', [['nfv.dev/hugepages-2Mi', ['numa0-0', 'numa0-1']], ['nfv.dev/vfio-group-40', ['40']]]), container('sidecar', [])] },
        { name: 'b', namespace: 'core', containers: [container('vnf', [['nfv.dev/hugepages-2Mi', ['numa0-5']], ['nfv.dev/hugepages-1Gi', ['numa1-0']]])] },
        { name: 'gpu', namespace: 'ml', containers: [container('train', [['example.com/gpu', ['gpu-0']]])] },
      ],
    };
    const ids = allocatedIdsOf(response, (resource) => resource.startsWith('nfv.dev/hugepages-'));
    expect(Object.fromEntries([...ids].map(([resource, set]) => [resource, [...set].sort()]))).toEqual({
      'nfv.dev/hugepages-2Mi': ['numa0-0', 'numa0-1', 'numa0-5'],
      'nfv.dev/hugepages-1Gi': ['numa1-0'],
    });
  });

  test('no pods: nothing in use', () => {
    expect(allocatedIdsOf({ pod_resources: [] }, () => true).size).toBe(0);
  });
});
