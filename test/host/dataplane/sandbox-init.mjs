// First process of a VNF sandbox (run by `unshare --mount --pid --net --fork --mount-proc
// --propagation private`), playing the container runtime: joins the VNF's cgroups, makes the
// pod's bind mounts read-only, puts a private tmpfs on EAL's runtime directory, then runs the
// VNF's app and forwards SIGINT and SIGTERM to it. It exits with the app's exit code, or
// 128 + the signal number when a signal killed the app (and says which on stderr).
// Usage: node sandbox-init.mjs '<json>' with json { cgroupProcs, mounts: [{ source, target }],
// tmpfs: [target], command, args }.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import process from 'node:process';

const spec = JSON.parse(process.argv[2]);
// Pid 1 of the new pid namespace; the kernel resolves it in that namespace.
for (const file of spec.cgroupProcs) writeFileSync(file, String(process.pid));
for (const { source, target } of spec.mounts) {
  execFileSync('mount', ['--bind', source, target]);
  execFileSync('mount', ['-o', 'remount,bind,ro', target]);
}
for (const target of spec.tmpfs) {
  mkdirSync(target, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'mode=0755,size=64m', 'tmpfs', target]);
}
const app = spawn(spec.command, spec.args, { stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => app.kill(signal));
app.on('error', (err) => {
  process.stderr.write(`sandbox: cannot run ${spec.command}: ${err.message}\n`);
  process.exit(127);
});
app.on('exit', (code, signal) => {
  if (signal) process.stderr.write(`sandbox: ${spec.command} was killed by ${signal}\n`);
  process.exit(signal ? 128 + constants.signals[signal] : code);
});
