/**
 * What a test of the node agent on the real node (`real-node.ts`) needs besides the built host
 * tree of `real-agent-fixture.ts`:
 *
 * - {@link VfioGroupNodes}: the part of vfio-pci the fake PCI kernel lacks, the group's device
 *   node, made when the tree's NIC is bound to vfio-pci and removed when it is unbound, so the
 *   agent's device plugin turns Healthy and Unhealthy as on a real host.
 * - {@link HostVfioDir}: the tree's `dev/vfio` bind-mounted at the host's `/dev/vfio`, because the
 *   device plugin hands kubelet the host's paths (`/dev/vfio/<N>`), which containerd opens to
 *   read the device numbers. Only on a host without the vfio module (no `/dev/vfio` of its own).
 * - {@link UioNodes} and {@link HostUioNode}: the same for uio_pci_generic, whose single node
 *   `/dev/uio<N>` is made on the host itself, with a number no real uio device has.
 */
import { existsSync, lstatSync, mkdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { posix } from 'node:path';
import { API_VERSION } from '../../src/api/group.js';
import type { HugepagePool } from '../../src/api/hugepage-pool.js';
import { resources } from '../../src/controllers/resources.js';
import type { KubeClient } from '../../src/runtime/kube-client.js';
import type { NfvHostTree } from './real-agent-fixture.js';
import { execFileAsync } from '../host/helpers/host-fixtures.js';

/** A character device's numbers. */
export interface DeviceNumbers {
  major: number;
  minor: number;
}

/** The numbers of a character device on this host; throws if `path` is none. */
export function charDeviceNumbers(path: string): DeviceNumbers {
  const stat = statSync(path);
  if (!stat.isCharacterDevice()) throw new Error(`${path} is not a character device`);
  // Linux's dev_t encoding: major in bits 8-19 (and 32-43), minor in bits 0-7 and 20-31.
  return { major: (stat.rdev >> 8) & 0xfff, minor: (stat.rdev & 0xff) | ((stat.rdev >> 12) & 0xfff00) };
}

/** The numbers as `stat -c '%t:%T'` prints them: hexadecimal. */
export function statHex(numbers: DeviceNumbers): string {
  return `${numbers.major.toString(16)}:${numbers.minor.toString(16)}`;
}

/** Makes a character device node. */
export async function mknod(path: string, numbers: DeviceNumbers): Promise<void> {
  await execFileAsync('mknod', [path, 'c', String(numbers.major), String(numbers.minor)]);
}

/**
 * Device nodes a driver makes while the tree's NIC is bound to it and removes when it is unbound,
 * which the fake PCI kernel lacks: checked every 50 ms, as the kernel makes them within the bind.
 * `events` records when they came and went.
 */
abstract class BoundDriverNodes {
  readonly events: Array<{ at: number; event: 'made' | 'removed' }> = [];
  private readonly timer: NodeJS.Timeout;
  private syncing = false;

  constructor(
    protected readonly tree: NfvHostTree,
    protected readonly address: string,
    private readonly driver: string,
  ) {
    // The first check runs after the subclass's constructor has set its fields.
    this.timer = setInterval(() => void this.sync().catch(() => undefined), 50);
  }

  /** Whether the nodes exist now. */
  protected abstract exist(): boolean;
  protected abstract make(): Promise<void>;
  protected abstract remove(): void;

  private async sync(): Promise<void> {
    if (this.syncing) return;
    this.syncing = true;
    try {
      const bound = this.tree.kernel.driverOf(this.address) === this.driver;
      if (bound && !this.exist()) {
        await this.make();
        this.events.push({ at: Date.now(), event: 'made' });
      } else if (!bound && this.exist()) {
        this.remove();
        this.events.push({ at: Date.now(), event: 'removed' });
      }
    } finally {
      this.syncing = false;
    }
  }

  /** Stops following the driver; the nodes, if any, go with the tree. */
  stop(): void {
    clearInterval(this.timer);
  }
}

/** The group node vfio-pci makes, `<tree>/dev/vfio/<group>`, while the NIC is bound to it. */
export class VfioGroupNodes extends BoundDriverNodes {
  constructor(
    tree: NfvHostTree,
    private readonly nic: { address: string; iommuGroup: number },
    private readonly numbers: DeviceNumbers,
  ) {
    super(tree, nic.address, 'vfio-pci');
  }

  /** Where the node is in the tree. */
  get path(): string {
    return this.tree.path('dev/vfio', String(this.nic.iommuGroup));
  }

  protected exist(): boolean {
    return existsSync(this.path);
  }

  protected make(): Promise<void> {
    return mknod(this.path, this.numbers);
  }

  protected remove(): void {
    rmSync(this.path);
  }
}

/**
 * What uio_pci_generic makes while the NIC is bound to it: the uio class device
 * `<tree sysfs>/bus/pci/devices/<address>/uio/uio<N>`, whose name tells the agent which node is the
 * device's, and the node `<tree>/dev/uio<N>`. The kernel numbers uio devices from 0; a test picks
 * a high `index` so that {@link HostUioNode} never meets a real one.
 */
export class UioNodes extends BoundDriverNodes {
  constructor(
    tree: NfvHostTree,
    nic: { address: string },
    private readonly index: number,
    readonly numbers: DeviceNumbers,
  ) {
    super(tree, nic.address, 'uio_pci_generic');
  }

  /** `uio<N>`: the class device's name, and the node's in the tree's dev and on the host. */
  get name(): string {
    return `uio${this.index}`;
  }

  /** Where the node is in the tree. */
  get path(): string {
    return this.tree.path('dev', this.name);
  }

  /** The device's `uio` directory in the tree's sysfs, which the kernel removes with the class device. */
  get classDir(): string {
    return posix.join(this.tree.roots.sysfs, 'bus/pci/devices', this.address, 'uio');
  }

  protected exist(): boolean {
    return existsSync(this.path);
  }

  protected async make(): Promise<void> {
    const device = posix.join(this.classDir, this.name);
    mkdirSync(device, { recursive: true });
    // As the kernel's class device shows them.
    writeFileSync(posix.join(device, 'name'), 'uio_pci_generic\n');
    writeFileSync(posix.join(device, 'dev'), `${this.numbers.major}:${this.numbers.minor}\n`);
    await mknod(this.path, this.numbers);
  }

  protected remove(): void {
    rmSync(this.classDir, { recursive: true });
    rmSync(this.path);
  }
}

/**
 * The host's `/dev/uio<N>` for {@link UioNodes}: the device plugin hands kubelet `/dev/uio<N>`,
 * which containerd stats on the host to build the container's device. Refuses to make one that
 * exists: the host then has a real uio device (or a run of this test was killed before its cleanup).
 */
export class HostUioNode {
  private constructor(readonly path: string) {}

  static async make(nodes: UioNodes): Promise<HostUioNode> {
    const path = posix.join('/dev', nodes.name);
    if (lstatSync(path, { throwIfNoEntry: false })) {
      throw new Error(
        `${path} exists: this host has a uio device ${nodes.name} (see /sys/class/uio/${nodes.name}) and the test must not replace it; ` +
          `if it has none, ${path} was left by a killed run of this test: remove it by hand`,
      );
    }
    await mknod(path, nodes.numbers);
    return new HostUioNode(path);
  }

  /** Removes the node; nothing if it is gone already. */
  remove(): void {
    rmSync(this.path, { force: true });
  }
}

/** See the file comment. */
export class HostVfioDir {
  static readonly PATH = '/dev/vfio';

  private constructor(private mounted: boolean) {}

  /** Bind-mounts `<tree>/dev/vfio` at /dev/vfio; refuses when the host has a /dev/vfio of its own. */
  static async mount(tree: NfvHostTree): Promise<HostVfioDir> {
    if (existsSync(HostVfioDir.PATH)) throw new Error(`${HostVfioDir.PATH} exists: this host has the vfio module loaded, and the test must not shadow its real groups`);
    mkdirSync(HostVfioDir.PATH);
    try {
      await execFileAsync('mount', ['--bind', '--', tree.path('dev/vfio'), HostVfioDir.PATH]);
    } catch (err) {
      rmdirSync(HostVfioDir.PATH);
      throw err;
    }
    return new HostVfioDir(true);
  }

  /** Unmounts and removes /dev/vfio. */
  async unmount(): Promise<void> {
    if (!this.mounted) return;
    await execFileAsync('umount', ['--', HostVfioDir.PATH]);
    rmdirSync(HostVfioDir.PATH);
    this.mounted = false;
  }
}

/**
 * Shared mount propagation where a test needs it and the host lacks it: containerd refuses a
 * HostToContainer (rslave) volume whose source is on a private mount ("is mounted on / but it is
 * not a shared or slave mount"), and a host without systemd, like this one, keeps / and
 * /sys/fs/cgroup private. {@link restore} undoes every change, last first.
 */
export class SharedMounts {
  private readonly undo: string[][] = [];

  /** Bind-mounts `dir` onto itself, shared: a volume source of its own. */
  async bindShared(dir: string): Promise<void> {
    await execFileAsync('mount', ['--bind', '--', dir, dir]);
    this.undo.push(['umount', '--', dir]);
    await execFileAsync('mount', ['--make-shared', '--', dir]);
  }

  /** Makes the mount at `mountPoint` shared unless it already is shared or a slave. */
  async makeShared(mountPoint: string): Promise<void> {
    // mountinfo: id parent dev root mountpoint options [optional fields...] - fstype source superoptions
    const fields = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((line) => line.split(' '))
      .findLast((line) => line[4] === mountPoint);
    if (!fields) throw new Error(`${mountPoint} is not a mount point`);
    const propagation = fields.slice(6, fields.indexOf('-'));
    if (propagation.some((field) => field.startsWith('shared:') || field.startsWith('master:'))) return;
    await execFileAsync('mount', ['--make-shared', '--', mountPoint]);
    this.undo.push(['mount', '--make-private', '--', mountPoint]);
  }

  async restore(): Promise<void> {
    for (const command of this.undo.splice(0).reverse()) await execFileAsync(command[0]!, command.slice(1));
  }
}

/** Applies a HugepagePool of `pagesPerNumaNode` 2Mi pages on the node `nodeName` only. */
export async function applyNodeHugepagePool(client: KubeClient, name: string, nodeName: string, pagesPerNumaNode: number): Promise<HugepagePool> {
  return client.apply<HugepagePool>(
    resources.hugepagePools,
    {
      apiVersion: API_VERSION,
      kind: 'HugepagePool',
      metadata: { name },
      spec: { nodeSelector: { 'kubernetes.io/hostname': nodeName }, pageSize: '2Mi', pagesPerNumaNode },
    },
    { fieldManager: 'nfv-e2e', force: true },
  );
}
