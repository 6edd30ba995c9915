/**
 * The node agent process, one per NFV node (DaemonSet). Configuration from the environment:
 *   NODE_NAME             this node (from the downward API, spec.nodeName); required
 *   KUBECONFIG            kubeconfig file; in a pod the service account is used
 *   NFV_STATE_ROOT        host paths and journals (default /var/lib/nfv-operator); same as the controller's
 *   NFV_SYSFS_ROOT        sysfs (default /sys)
 *   NFV_PROC_ROOT         procfs (default /proc)
 *   NFV_CGROUP_ROOT       cgroup mounts (default /sys/fs/cgroup)
 *   NFV_DEV_ROOT          device nodes (default /dev)
 *   NFV_MOUNT_NAMESPACE   mount namespace file to mount in, e.g. /host/proc/1/ns/mnt, as the chart sets it
 *                         (default: the agent's own; Kubernetes allows Bidirectional propagation only to
 *                         privileged containers, so in a pod the agent mounts in the host's namespace)
 *   NFV_NIC_POOLS         JSON list of NIC pool rules: [{"pool":"fast","vendor":"8086","deviceId":"159b"}]
 *   NFV_AGENT_VERSION     reported in NfvNode.status.agentVersion
 *   NFV_DEVICE_PLUGIN_DIR kubelet's device-plugin directory, where its kubelet.sock is (default
 *                         /var/lib/kubelet/device-plugins, which kubelet v1.37 fixes whatever its
 *                         --root-dir); `none` serves no device plugins
 *   NFV_NRI_SOCKET        the container runtime's NRI socket (default /var/run/nri/nri.sock), where the
 *                         agent's NRI plugin sets the VNF containers' hugetlb limits; `none` runs no plugin
 *   NFV_POD_RESOURCES_SOCKET kubelet's PodResources socket (default
 *                         /var/lib/kubelet/pod-resources/kubelet.sock): the page IDs pods hold, kept
 *                         when a pool shrinks; `none` reads none
 *   NFV_METRICS_ADDRESS   [host]:port of /metrics, /healthz and /readyz (default :9101, on the host
 *                         network; 0 turns it off): prepare and teardown durations and failures
 *   LOG_LEVEL             pino level (default info)
 *
 * The DaemonSet (charts/nfv-operator) runs it with hostNetwork and hostPID and three capabilities
 * instead of privileged: SYS_ADMIN (mounts, setns), SYS_CHROOT (setns into
 * a mount namespace) and SYS_PTRACE (opening /proc/1/ns/mnt of the host's init). MKNOD is not
 * needed: the kernel makes the /dev/vfio and /dev/uioN nodes, and the container runtime makes them
 * in the VNF's container from the device plugins' answers.
 */
import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { MetricsServer } from '../src/metrics/http-server.js';
import { MetricsRegistry } from '../src/metrics/prometheus-text.js';
import { NodeAgent } from './agent.js';
import type { NicPoolRule } from './discover/pci-nics.js';
import type { NriPluginStatus } from './nri/nri-plugin.js';

const logger = pino({ level: process.env.LOG_LEVEL ?? 'info', base: { component: 'nfv-node-agent' } });

function nicPools(): NicPoolRule[] {
  const text = process.env.NFV_NIC_POOLS;
  if (!text) return [];
  const parsed = JSON.parse(text) as unknown;
  if (!Array.isArray(parsed) || !parsed.every((rule) => typeof rule === 'object' && rule !== null && typeof (rule as NicPoolRule).pool === 'string')) {
    throw new Error('NFV_NIC_POOLS must be a JSON list of {"pool": name, "pciAddresses": [...]} or {"pool", "vendor", "deviceId"}');
  }
  return parsed as NicPoolRule[];
}

/** Not ready while the NRI plugin is not registered: VNF containers would get kubelet's hugetlb limit 0. */
function nriReadiness(nri: NriPluginStatus | undefined): { ready: boolean; message: string } {
  if (!nri || nri.registered) return { ready: true, message: 'node agent running' };
  return { ready: false, message: `NRI plugin not registered with the container runtime: ${nri.lastError ?? 'not yet (it registers once the VNF and pod caches are loaded)'}` };
}

const kubeConfig = new KubeConfig();
kubeConfig.loadFromDefault();

const agent = new NodeAgent({
  nodeName: process.env.NODE_NAME ?? '',
  kubeConfig,
  logger,
  ...(process.env.NFV_STATE_ROOT ? { stateRoot: process.env.NFV_STATE_ROOT } : {}),
  roots: {
    ...(process.env.NFV_SYSFS_ROOT ? { sysfs: process.env.NFV_SYSFS_ROOT } : {}),
    ...(process.env.NFV_PROC_ROOT ? { proc: process.env.NFV_PROC_ROOT } : {}),
    ...(process.env.NFV_CGROUP_ROOT ? { cgroup: process.env.NFV_CGROUP_ROOT } : {}),
    ...(process.env.NFV_DEV_ROOT ? { dev: process.env.NFV_DEV_ROOT } : {}),
  },
  hostOptions: process.env.NFV_MOUNT_NAMESPACE ? { mountNamespace: process.env.NFV_MOUNT_NAMESPACE } : {},
  nicPools: nicPools(),
  ...(process.env.NFV_AGENT_VERSION ? { agentVersion: process.env.NFV_AGENT_VERSION } : {}),
  signalSource: process,
  ...(process.env.NFV_DEVICE_PLUGIN_DIR ? { devicePluginDir: process.env.NFV_DEVICE_PLUGIN_DIR === 'none' ? false : process.env.NFV_DEVICE_PLUGIN_DIR } : {}),
  ...(process.env.NFV_NRI_SOCKET ? { nriSocket: process.env.NFV_NRI_SOCKET === 'none' ? false : process.env.NFV_NRI_SOCKET } : {}),
  ...(process.env.NFV_POD_RESOURCES_SOCKET ? { podResourcesSocket: process.env.NFV_POD_RESOURCES_SOCKET === 'none' ? false : process.env.NFV_POD_RESOURCES_SOCKET } : {}),
});

const metricsAddress = process.env.NFV_METRICS_ADDRESS ?? ':9101';
const metricsServer =
  metricsAddress === '0'
    ? undefined
    : new MetricsServer({
        address: metricsAddress,
        registry: new MetricsRegistry().register(() => agent.metrics.families()).register(() => agent.nri?.families() ?? []),
        readiness: () => nriReadiness(agent.nri?.status()),
        logger,
      });
try {
  await metricsServer?.start();
  await agent.start();
} catch (err) {
  logger.fatal({ err }, 'node agent failed to start');
  process.exit(1);
}
const reason = await agent.done();
await agent.stop();
await metricsServer?.stop();
logger.info({ reason }, 'node agent stopped');
process.exit(0);
