/**
 * KWOK's default lifecycle stages, the ones `kwokctl` installs when a cluster defines none.
 *
 * The standalone `kwok` binary refuses to start without stages, so the local cluster hands it the
 * same files `kwokctl` embeds, read from the pinned KWOK module (`go mod download` puts it in the
 * module cache, where building the binary already left it) so they always match the binary.
 * The result is cached beside the binaries, so later starts need no Go toolchain.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { cacheRoot } from './tools.js';

const execFileAsync = promisify(execFile);

/**
 * The stages, relative to the module root: nodes become Ready at once and renew a Lease (so the
 * node lifecycle controller keeps them Ready); pods become Running/Ready at once, complete when
 * their restart policy says so, and are removed when deleted.
 */
const DEFAULT_STAGE_FILES = [
  'kustomize/stage/node/fast/node-initialize.yaml',
  'kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml',
  'kustomize/stage/pod/fast/pod-ready.yaml',
  'kustomize/stage/pod/fast/pod-complete.yaml',
  'kustomize/stage/pod/fast/pod-delete.yaml',
];

/** Returns KWOK's default stages for `version` as one multi-document YAML string. */
export async function kwokDefaultStages(version: string): Promise<string> {
  const cached = path.join(cacheRoot(), 'kwok-stages', `default-stages-${version}.yaml`);
  try {
    return await readFile(cached, 'utf8');
  } catch {
    const stages = await readFromModule(version);
    await mkdir(path.dirname(cached), { recursive: true });
    await writeFile(`${cached}.${process.pid}`, stages);
    await rename(`${cached}.${process.pid}`, cached);
    return stages;
  }
}

async function readFromModule(version: string): Promise<string> {
  const module = `sigs.k8s.io/kwok@${version}`;
  let dir: string;
  try {
    // Outside any module, so the caller's GOFLAGS (e.g. -mod=mod) must not apply.
    const { stdout } = await execFileAsync('go', ['mod', 'download', '-json', module], {
      cwd: path.parse(process.cwd()).root,
      env: { ...process.env, GOFLAGS: '' },
    });
    const info = JSON.parse(stdout) as { Dir?: string; Error?: string };
    if (!info.Dir) throw new Error(info.Error ?? 'no Dir in the answer');
    dir = info.Dir;
  } catch (err) {
    throw new Error(`cannot locate the ${module} module for its default stages (is Go on PATH?): ${String(err)}`);
  }
  const docs = await Promise.all(DEFAULT_STAGE_FILES.map((file) => readFile(path.join(dir, file), 'utf8')));
  return docs.map((doc) => doc.trim()).join('\n---\n') + '\n';
}
