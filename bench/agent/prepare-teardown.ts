/**
 * Prepare and teardown latency of the node agent's host side on the real kernel, over 100 VNFs:
 * hugetlbfs mount, sysfs masks, memif directory, driver binding (on a fake PCI sysfs tree: real
 * devices are never rebound), cgroup limits on a pod cgroup laid out as kubelet does, and the
 * ready signal; then teardown of all of it. Every step is journaled (fsync) as in production.
 * Prints p50/p99/max per phase and leaves nothing behind. Needs root.
 *
 * Usage: node --import tsx bench/agent/prepare-teardown.ts [vnfs=100]
 */
import { mkdirSync } from 'node:fs';
import { posix } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createNodeHost } from '../../node-agent/host/node-host.js';
import { JournalStore } from '../../node-agent/journal.js';
import { prepareVnf } from '../../node-agent/prepare.js';
import { journalStepContext } from '../../node-agent/recover.js';
import { teardownVnf } from '../../node-agent/teardown.js';
import { planVnfHost, type VnfHostPlan } from '../../node-agent/validate.js';
import { FakePciKernel } from '../../test/host/helpers/fake-pci-kernel.js';
import { execFileAsync, FakeKubeletPod, mountPointsUnder, requireRoot, TempTree } from '../../test/host/helpers/host-fixtures.js';
import { placedVnf } from '../../test/host/helpers/vnf-fixture.js';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function summary(name: string, samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  return `${name.padEnd(22)} n=${sorted.length}  p50=${percentile(sorted, 50).toFixed(2)} ms  p99=${percentile(sorted, 99).toFixed(2)} ms  max=${sorted.at(-1)!.toFixed(2)} ms`;
}

async function main(): Promise<void> {
  requireRoot();
  const count = Number(process.argv[2] ?? 100);
  const tree = new TempTree('nfv-bench-agent');
  const kernel = new FakePciKernel(tree.path('sys'));
  const pods: FakeKubeletPod[] = [];
  const plans: VnfHostPlan[] = [];
  try {
    kernel.addDriver('vfio-pci');
    const dev = tree.path('dev');
    mkdirSync(posix.join(dev, 'vfio'), { recursive: true });
    await execFileAsync('mknod', [posix.join(dev, 'vfio/vfio'), 'c', '10', '196']);
    const host = createNodeHost({ sysfs: kernel.sysfs, dev }, { hostMountInfo: '/dev/null' });
    const stateRoot = tree.path('state');
    const store = new JournalStore(stateRoot);
    const cpu = (await import('node:fs')).readFileSync('/sys/devices/system/cpu/online', 'utf8').trim() === '0' ? '0' : '1';
    for (let i = 0; i < count; i++) {
      const bus = (0x10 + Math.floor(i / 8)).toString(16).padStart(2, '0');
      const address = `0000:${bus}:00.${i % 8}`;
      kernel.addDevice({ address, vendor: '8086', device: '154c', pciClass: '0x020000', numaNode: 0, iommuGroup: 100 + i, driver: 'iavf' });
      await execFileAsync('mknod', [posix.join(dev, 'vfio', String(100 + i)), 'c', '242', String(100 + i)]);
      const vnf = placedVnf({
        stateRoot,
        name: `vnf-${i}`,
        cpus: cpu,
        devices: [{ interface: 'uplink', pciAddress: address, iommuGroup: 100 + i, driver: 'vfio-pci' }],
        links: [{ name: 'chain', peer: `vnf-${i}-peer`, role: 'server', id: 0 }],
      });
      plans.push(planVnfHost(vnf, { stateRoot, nodeName: 'worker-1' }));
      pods.push(await FakeKubeletPod.create(i % 2 === 0 ? 'cgroupfs' : 'systemd'));
    }

    const prepare: number[] = [];
    for (const [i, plan] of plans.entries()) {
      const started = performance.now();
      await prepareVnf(plan, store.journal(plan.uid), host, journalStepContext(store, plan.uid), { podUid: pods[i]!.podUid });
      prepare.push(performance.now() - started);
    }
    const teardown: number[] = [];
    for (const [i, plan] of plans.entries()) {
      await pods[i]!.destroy();
      const started = performance.now();
      await teardownVnf(store.journal(plan.uid), host, journalStepContext(store, plan.uid));
      teardown.push(performance.now() - started);
    }
    const leftMounts = mountPointsUnder(stateRoot);
    if (leftMounts.length > 0) throw new Error(`mounts left behind: ${leftMounts.join(', ')}`);
    console.log(`node agent host side, ${count} VNFs, each: hugetlbfs + masks + memif dir + 1 vfio-pci binding + cgroup limits + ready signal`);
    console.log(summary('prepare (host + pod)', prepare));
    console.log(summary('teardown', teardown));
  } finally {
    for (const pod of pods) await pod.destroy().catch(() => undefined);
    kernel.destroy();
    await tree.cleanup();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
