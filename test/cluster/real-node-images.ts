/**
 * Images for a real node's containerd, taken from the local Docker engine: no registry is
 * reachable, so `docker save` streams them into `ctr images import` in the CRI namespace.
 */
import { spawn } from 'node:child_process';

/** Docker's client from Debian, the one hack/build-images.sh uses. */
const DOCKER = process.env['DOCKER'] ?? '/usr/bin/docker';

/**
 * The name the CRI plugin gives a Docker short name: `nfv-operator/pause:local` is
 * `docker.io/nfv-operator/pause:local`, which is also what `ctr images import` records.
 */
export function criImageName(image: string): string {
  const first = image.split('/')[0] ?? '';
  const hasRegistry = image.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (hasRegistry) return image;
  return image.includes('/') ? `docker.io/${image}` : `docker.io/library/${image}`;
}

/** Throws, naming the build step, when an image is missing from Docker. */
export async function requireDockerImages(images: readonly string[]): Promise<void> {
  const missing: string[] = [];
  for (const image of images) {
    const { code } = await run(DOCKER, ['image', 'inspect', '--format', '{{.Id}}', image]);
    if (code !== 0) missing.push(image);
  }
  if (missing.length > 0) {
    throw new Error(`the real node needs the Docker images ${missing.join(', ')}: build them with hack/build-images.sh (see its --print)`);
  }
}

/** `docker save <images> | ctr --address <socket> -n k8s.io images import -`. */
export async function importDockerImages(ctr: string, socket: string, images: readonly string[]): Promise<void> {
  const save = spawn(DOCKER, ['save', ...images], { stdio: ['ignore', 'pipe', 'pipe'] });
  const load = spawn(ctr, ['--address', socket, '--namespace', 'k8s.io', 'images', 'import', '-'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  save.stdout.pipe(load.stdin);
  const [saved, loaded] = await Promise.all([finished(save), finished(load)]);
  if (saved.code !== 0 || loaded.code !== 0) {
    throw new Error(
      `importing ${images.join(', ')} into the real node's containerd failed: docker save (exit ${saved.code}): ${saved.stderr.trim()}; ` +
        `ctr images import (exit ${loaded.code}): ${loaded.stderr.trim()}`,
    );
  }
}

interface Finished {
  code: number | null;
  stderr: string;
}

function run(command: string, args: string[]): Promise<Finished> {
  return finished(spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] }));
}

function finished(child: ReturnType<typeof spawn>): Promise<Finished> {
  return new Promise((resolve) => {
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
    child.on('error', (err) => resolve({ code: null, stderr: err.message }));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}
