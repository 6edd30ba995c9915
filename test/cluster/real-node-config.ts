/**
 * The configuration files of a real node (see `real-node.ts`): containerd's, the kubelet's and the
 * CNI network's. Pure: paths and ports in, file contents out.
 */
import path from 'node:path';
import yaml from 'js-yaml';

/** Where one real node keeps everything it writes; all under `dir`, a temp dir of its own. */
export interface RealNodeLayout {
  dir: string;
  containerdRoot: string;
  containerdState: string;
  containerdSocket: string;
  /** containerd's NRI socket, where NRI plugins (the node agent's) register. */
  nriSocket: string;
  /** Where containerd would look for NRI plugins to launch, and their configuration: empty dirs of its own. */
  nriPluginDir: string;
  nriPluginConfigDir: string;
  /** Shim sockets: at most 42 characters (unix socket paths are short), hence directly under `dir`. */
  shimSocketDir: string;
  runcRoot: string;
  cniConfDir: string;
  cniDataDir: string;
  kubeletRootDir: string;
  /**
   * Where kubelet looks for device plugin sockets: {@link KUBELET_DEVICE_PLUGIN_DIR}, the one
   * directory outside `dir` (kubelet v1.37 fixes it whatever its `--root-dir`).
   */
  devicePluginDir: string;
  podLogsDir: string;
  kubeletConfigFile: string;
  kubeletKubeconfig: string;
  containerdConfigFile: string;
}

/** kubelet's device-plugin directory, shared by every kubelet of the host: one real node at a time. */
export const KUBELET_DEVICE_PLUGIN_DIR = '/var/lib/kubelet/device-plugins';

/** The layout of a real node in `dir`. */
export function realNodeLayout(dir: string): RealNodeLayout {
  const kubeletRootDir = path.join(dir, 'kubelet');
  return {
    dir,
    containerdRoot: path.join(dir, 'containerd', 'root'),
    containerdState: path.join(dir, 'containerd', 'state'),
    containerdSocket: path.join(dir, 'containerd', 'containerd.sock'),
    nriSocket: path.join(dir, 'nri', 'nri.sock'),
    nriPluginDir: path.join(dir, 'nri', 'plugins'),
    nriPluginConfigDir: path.join(dir, 'nri', 'conf.d'),
    shimSocketDir: path.join(dir, 's'),
    runcRoot: path.join(dir, 'containerd', 'runc'),
    cniConfDir: path.join(dir, 'cni', 'net.d'),
    cniDataDir: path.join(dir, 'cni', 'ipam'),
    kubeletRootDir,
    devicePluginDir: KUBELET_DEVICE_PLUGIN_DIR,
    podLogsDir: path.join(dir, 'pod-logs'),
    kubeletConfigFile: path.join(dir, 'kubelet-config.yaml'),
    kubeletKubeconfig: path.join(dir, 'kubelet.kubeconfig'),
    containerdConfigFile: path.join(dir, 'containerd.toml'),
  };
}

/** What containerd needs besides the layout. */
export interface ContainerdSettings {
  /** Image reference of the sandbox, fully qualified as the CRI plugin names it. */
  sandboxImage: string;
  runcBinary: string;
  cniBinDir: string;
  /** True when this process may not lower oom_score_adj (no CAP_SYS_RESOURCE). */
  restrictOomScoreAdj: boolean;
}

/**
 * containerd 2.x configuration (version 3). Everything containerd would otherwise put under
 * /var/lib/containerd, /run/containerd (shim sockets included), /var/run/netns or /var/run/nri
 * goes under the node's own dir, so Docker's containerd is never touched. NRI is on, as in
 * containerd's default configuration, with its socket in the node's dir (the default,
 * /var/run/nri/nri.sock, is shared by every containerd of the host) and no plugin dirs of the host.
 */
export function renderContainerdConfig(layout: RealNodeLayout, settings: ContainerdSettings): string {
  const q = (value: string): string => JSON.stringify(value);
  return `version = 3
root = ${q(layout.containerdRoot)}
state = ${q(layout.containerdState)}
disabled_plugins = ["io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = ${q(layout.containerdSocket)}

[ttrpc]
  address = ${q(`${layout.containerdSocket}.ttrpc`)}

# Otherwise /run/containerd/s, where a shim killed with SIGKILL leaves its socket behind.
[plugins.'io.containerd.shim.v1.manager']
  socket_dir = ${q(layout.shimSocketDir)}

[plugins.'io.containerd.nri.v1.nri']
  disable = false
  socket_path = ${q(layout.nriSocket)}
  plugin_path = ${q(layout.nriPluginDir)}
  plugin_config_path = ${q(layout.nriPluginConfigDir)}

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  # No registry is reachable: the sandbox image is imported, and must never be pulled again.
  disable_pause_image_pull = true
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = ${q(settings.sandboxImage)}

[plugins.'io.containerd.cri.v1.runtime']
  netns_mounts_under_state_dir = true
  # Kubelet asks for negative oom_score_adj (-998 for sandboxes), which needs CAP_SYS_RESOURCE;
  # where the harness lacks it, runc's nsexec dies with "can't get final child's PID from pipe".
  # This clamps the scores to containerd's own instead.
  restrict_oom_score_adj = ${settings.restrictOomScoreAdj}
  enable_cdi = true
  # containerd's default (true) drops every hugetlb limit, kubelet's and NRI plugins' alike, from
  # the containers' OCI specs; kubelet's semantics need them there.
  disable_hugetlb_controller = false
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = ${q(settings.runcBinary)}
        Root = ${q(layout.runcRoot)}
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = [${q(settings.cniBinDir)}]
    conf_dir = ${q(layout.cniConfDir)}

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
`;
}

/** What the kubelet needs besides the layout. */
export interface KubeletSettings {
  /** Address the kubelet serves on: the node's InternalIP (kubelet refuses a loopback node IP). */
  address: string;
  /** Top-level cgroup (in every v1 hierarchy) under which kubelet puts `kubepods`, e.g. `/nfv-real-node`. */
  cgroupRoot: string;
  port: number;
  healthzPort: number;
  /** Taint registered with the node, so that only pods that tolerate it land here. */
  taint: { key: string; value: string; effect: 'NoSchedule' };
}

/**
 * KubeletConfiguration for a node that shares the machine with other tests: reachable only from
 * this host (its address is on the node's own bridge),
 * anonymous read access for the API server's `kubectl logs` (it has no kubelet client
 * certificate), cgroupfs under its own cgroup root, no eviction or image GC that could fire on a
 * busy test machine, and cgroup v1 allowed (this host is hybrid v1 + v2).
 */
export function renderKubeletConfig(layout: RealNodeLayout, settings: KubeletSettings): string {
  return yaml.dump({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    address: settings.address,
    port: settings.port,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: settings.healthzPort,
    authentication: { anonymous: { enabled: true }, webhook: { enabled: false } },
    authorization: { mode: 'AlwaysAllow' },
    containerRuntimeEndpoint: `unix://${layout.containerdSocket}`,
    cgroupDriver: 'cgroupfs',
    cgroupRoot: settings.cgroupRoot,
    cgroupsPerQOS: true,
    failCgroupV1: false,
    failSwapOn: false,
    podLogsDir: layout.podLogsDir,
    // Left "modify", the kubelet would also set these on a host it shares; real-node-host.ts
    // snapshots and restores them instead, because with `true` it refuses to start on a host
    // whose values differ (vm.overcommit_memory, kernel.panic...).
    protectKernelDefaults: false,
    evictionHard: { 'memory.available': '1Mi', 'nodefs.available': '1%', 'nodefs.inodesFree': '1%', 'imagefs.available': '1%' },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    registerWithTaints: [settings.taint],
    serializeImagePulls: false,
    nodeStatusUpdateFrequency: '2s',
    nodeStatusReportFrequency: '10s',
    syncFrequency: '5s',
    fileCheckFrequency: '5s',
    maxPods: 20,
    resolvConf: '/etc/resolv.conf',
    staticPodPath: '',
  });
}

/** Name of the Linux bridge of the node's pod network (never one of the host's interfaces). */
export const REAL_NODE_BRIDGE = 'nfvreal0';

/**
 * The first host address of an IPv4 subnet (`10.250.0.0/24` -> `10.250.0.1`): the bridge's
 * gateway address, which is also the node's InternalIP.
 */
export function gatewayAddress(subnet: string): string {
  const [network = '', bits = ''] = subnet.split('/');
  const octets = network.split('.').map(Number);
  if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255) || !/^\d+$/.test(bits) || Number(bits) > 30) {
    throw new Error(`pod subnet "${subnet}" is not an IPv4 CIDR of at most /30`);
  }
  const value = (octets.reduce((acc, o) => acc * 256 + o, 0) >>> 0) + 1;
  return [24, 16, 8, 0].map((shift) => (value >>> shift) & 255).join('.');
}

/**
 * A CNI network on a bridge of its own with host-local addresses from `subnet`, no masquerading
 * (no iptables rules) and no default route out of the host: enough for containerd to report the
 * network ready and for pods to reach each other and the node.
 */
export function renderCniConfig(layout: RealNodeLayout, subnet: string): string {
  return JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: 'nfv-real-node',
      plugins: [
        {
          type: 'bridge',
          bridge: REAL_NODE_BRIDGE,
          isGateway: true,
          ipMasq: false,
          ipam: { type: 'host-local', ranges: [[{ subnet }]], dataDir: layout.cniDataDir },
        },
      ],
    },
    null,
    2,
  );
}
