// First process of a sandbox container (run by `unshare --mount --fork --propagation private`,
// with --pid --mount-proc and --net unless the pod shares the host's), playing the low-level
// container runtime for one container of a rendered pod:
//  1. joins the container's cgroups, made by sandbox-runtime.ts under the pod cgroup;
//  2. gives it a /dev of its own (a tmpfs with the usual character devices and the pod's
//     devices) and a fresh /run, as a container has: nothing of the host's /dev or /run leaks in;
//  3. bind-mounts the pod's volumes (read-only where the pod says so);
//  4. runs the container's command with only its capabilities in the bounding set (and
//     no_new_privs when the pod forbids privilege escalation), forwarding SIGINT and SIGTERM.
// It exits with the app's exit code, or 128 + the signal number when a signal killed the app
// (and says which on stderr).
// Usage: node sandbox-init.mjs '<json>' with json { cgroupProcs, devStaging, devices: [{ source,
// target }], mounts: [{ source, target, readOnly }], command, args, env, capabilities: { add, drop },
// noNewPrivileges }.
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname } from 'node:path';
import process from 'node:process';

const spec = JSON.parse(process.argv[2]);
/** Character devices every container gets (runc's default set, less the console). */
const DEFAULT_DEVICES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];
/** The fresh filesystems of the container: a mount target under them may be created. */
const FRESH = ['/dev/', '/run/'];

const mount = (...args) => execFileSync('mount', args);

function touch(path) {
  mkdirSync(dirname(path), { recursive: true });
  closeSync(openSync(path, 'a'));
}

/** Creates a missing mount target inside the container's own /dev or /run, never on the host. */
function ensureTarget(target, isDirectory) {
  if (existsSync(target)) return;
  if (!FRESH.some((root) => target.startsWith(root))) throw new Error(`mount target ${target} does not exist, and the sandbox creates targets only under ${FRESH.join(' and ')}`);
  if (isDirectory) mkdirSync(target, { recursive: true });
  else touch(target);
}

// Pid 1 of the new pid namespace; the kernel resolves it in that namespace.
for (const file of spec.cgroupProcs) writeFileSync(file, String(process.pid));

// /dev: built in a staging directory (mounts in this namespace are invisible outside it), then moved over the host's.
mount('-t', 'tmpfs', '-o', 'mode=0755,nosuid,size=64k', 'tmpfs', spec.devStaging);
for (const { source, target } of [...DEFAULT_DEVICES.map((d) => ({ source: `/dev/${d}`, target: `/dev/${d}` })), ...spec.devices]) {
  const staged = spec.devStaging + target.slice('/dev'.length);
  if (!target.startsWith('/dev/')) throw new Error(`device ${source}: the sandbox gives devices only under /dev, not at ${target}`);
  touch(staged);
  mount('--bind', source, staged);
}
for (const [link, to] of [['fd', '/proc/self/fd'], ['stdin', '/proc/self/fd/0'], ['stdout', '/proc/self/fd/1'], ['stderr', '/proc/self/fd/2']]) symlinkSync(to, `${spec.devStaging}/${link}`);
mkdirSync(`${spec.devStaging}/shm`);
mount('--move', spec.devStaging, '/dev');
mount('-t', 'tmpfs', '-o', 'nosuid,nodev,mode=1777', 'shm', '/dev/shm');
mount('-t', 'tmpfs', '-o', 'nosuid,nodev,mode=0755', 'tmpfs', '/run');

for (const { source, target, readOnly } of spec.mounts) {
  ensureTarget(target, statSync(source).isDirectory());
  mount('--bind', source, target);
  if (readOnly) mount('-o', 'remount,bind,ro', target);
}

// A root process keeps, across exec, exactly the capabilities of its bounding set.
const { add, drop } = spec.capabilities;
const bounding = [...(drop.includes('ALL') ? ['-all'] : drop.map((c) => `-${c}`)), ...add.map((c) => `+${c}`)].map((c) => c.toLowerCase());
const setpriv = [...(bounding.length > 0 ? [`--bounding-set=${bounding.join(',')}`, '--inh-caps=-all'] : []), ...(spec.noNewPrivileges ? ['--no-new-privs'] : [])];
const app = spawn('setpriv', [...setpriv, '--', spec.command, ...spec.args], { stdio: 'inherit', env: spec.env });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => app.kill(signal));
app.on('error', (err) => {
  process.stderr.write(`sandbox: cannot run ${spec.command}: ${err.message}\n`);
  process.exit(127);
});
app.on('exit', (code, signal) => {
  if (signal) process.stderr.write(`sandbox: ${spec.command} was killed by ${signal}\n`);
  process.exit(signal ? 128 + constants.signals[signal] : code);
});
