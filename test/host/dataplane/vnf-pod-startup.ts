/**
 * What happens on the node between the controller creating a VNF's pod and the VNF container
 * starting, in the order a real node goes through it:
 *
 * 1. the node agent prepares the host (hugetlbfs, masks, memif directories);
 * 2. kubelet creates the pod cgroup and starts the init gate, which waits for the ready signal;
 * 3. the agent finds the pod's cgroup, applies the VNF's limits to it and writes the ready
 *    signal with this pod's UID;
 * 4. the gate exits 0, and kubelet may start the VNF container.
 */
import type { VirtualNetworkFunction } from '../../../src/api/virtual-network-function.js';
import type { V1Pod } from '@kubernetes/client-node';
import type { ContainerRuntime } from './container-process.js';
import { KubeletPod } from './kubelet-pod.js';
import type { OneNodeCluster } from './one-node-cluster.js';
import type { ExtraBindMount } from './pod-container-spec.js';

/** Name of the init gate in the rendered pod (src/controllers/vnf/render-pod.ts). */
export const GATE_CONTAINER = 'wait-for-node-agent';
/** Name of the VNF container in the rendered pod. */
export const VNF_CONTAINER = 'vnf';

/** How long the gate must still be waiting before the agent signals: more than one of its 0.5 s polls. */
const GATE_HOLD_MS = 700;

/** Where and how the node runs a VNF's pod. */
export interface PodStartOptions {
  /** The test run's directory at each cgroup hierarchy's root, above kubepods. */
  cgroupTop: string;
  /** The container runtime that runs the pod's containers. */
  runtime: ContainerRuntime;
  /** Mounts that depart from the rendered pod, each saying why. */
  extraMounts?: readonly ExtraBindMount[];
}

/**
 * Runs steps 1 to 4 for a placed VNF and returns its pod, ready for {@link KubeletPod.start} of
 * the VNF container. Fails if the gate opened before the agent's signal or did not open after it.
 * The pod is deleted again when a step fails.
 */
export async function startVnfPod(cluster: OneNodeCluster, vnf: VirtualNetworkFunction, renderedPod: V1Pod, options: PodStartOptions): Promise<KubeletPod> {
  await cluster.prepareHost(vnf);
  const pod = KubeletPod.create(renderedPod, options.cgroupTop, options.runtime, options.extraMounts);
  try {
    const gate = pod.start(GATE_CONTAINER);
    const deadline = Date.now() + 15_000;
    while (!(await gate.isRunning())) {
      if (gate.hasEnded || Date.now() > deadline) throw new Error(`${gate.name} did not start; output:\n${gate.output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await new Promise((resolve) => setTimeout(resolve, GATE_HOLD_MS));
    if (!(await gate.isRunning())) throw new Error(`the init gate of VNF ${vnf.metadata.name} ended before the node agent signalled; output:\n${gate.output}`);
    await cluster.preparePod(vnf, pod.uid);
    const code = await gate.exitCode(15_000);
    if (code !== 0) throw new Error(`the init gate of VNF ${vnf.metadata.name} exited with ${code}; output:\n${gate.output}`);
    return pod;
  } catch (err) {
    await pod.delete();
    throw err;
  }
}
