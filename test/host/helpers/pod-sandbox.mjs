/* global process */
// Plays the container runtime inside a private mount namespace (run under `unshare -m
// --propagation private`): makes the pod's mounts of a VNF, then looks around from inside and
// prints what it sees as JSON. Usage: node pod-sandbox.mjs '<json>' where json is
// { mounts: [{ source, target, subPathFile? }], checks: { ... } }.
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const spec = JSON.parse(process.argv[2]);
for (const mount of spec.mounts) {
  execFileSync('mount', ['--bind', mount.source, mount.target]);
  execFileSync('mount', ['-o', 'remount,bind,ro', mount.target]);
}
const run = (file, args) => {
  const result = spawnSync(file, args, { encoding: 'utf8' });
  return { status: result.status, stdout: (result.stdout ?? '').trim(), stderr: (result.stderr ?? '').trim() };
};
const read = (path) => {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (err) {
    return `error ${err.code}`;
  }
};
const list = (path) => {
  try {
    return readdirSync(path).sort();
  } catch (err) {
    return [`error ${err.code}`];
  }
};
const seen = {
  pciDevices: list('/sys/bus/pci/devices'),
  pciVendors: Object.fromEntries(list('/sys/bus/pci/devices').map((d) => [d, read(`/sys/bus/pci/devices/${d}/vendor`)])),
  online: read('/sys/devices/system/cpu/online'),
  present: read('/sys/devices/system/cpu/present'),
  possible: read('/sys/devices/system/cpu/possible'),
  cpuDirs: Object.fromEntries(list('/sys/devices/system/cpu').filter((e) => /^cpu\d+$/.test(e)).map((e) => [e, list(`/sys/devices/system/cpu/${e}`).length])),
  nproc: run('nproc', []).stdout,
  nprocAll: run('nproc', ['--all']).stdout,
  affinity: read('/proc/self/status').split('\n').find((l) => l.startsWith('Cpus_allowed_list'))?.split(':')[1]?.trim(),
  commands: (spec.commands ?? []).map(([file, ...args]) => ({ command: [file, ...args].join(' '), ...run(file, args) })),
};
process.stdout.write(JSON.stringify(seen));
