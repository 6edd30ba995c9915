/* global process, console */
// Joins the given cgroups, then runs a command in them (what a container runtime does for a
// container's first process). Usage: node in-cgroup.mjs --cgroup DIR [--cgroup DIR ...] -- CMD ARGS...
import { writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const separator = args.indexOf('--');
const options = args.slice(0, separator);
const command = args.slice(separator + 1);
for (let i = 0; i < options.length; i += 2) {
  if (options[i] !== '--cgroup') throw new Error(`unknown option ${options[i]}`);
  writeFileSync(`${options[i + 1]}/cgroup.procs`, `${process.pid}\n`);
}
const result = spawnSync(command[0], command.slice(1), { stdio: 'inherit' });
if (result.error) {
  console.error(String(result.error));
  process.exit(127);
}
process.exit(result.status ?? 128);
