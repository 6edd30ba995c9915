/** The project's images, built by hack/build-images.sh (which names the same tags). */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const BUILD_IMAGES = fileURLToPath(new URL('../../../hack/build-images.sh', import.meta.url));
const IMAGES_DIR = fileURLToPath(new URL('../../../images', import.meta.url));

/** Image tag by name. */
export const IMAGES = {
  'dpdk-base': 'nfv-operator/dpdk-base:22.11',
  l2fwd: 'nfv-operator/l2fwd:22.11',
  l3fwd: 'nfv-operator/l3fwd:22.11',
  operator: 'nfv-operator/operator:dev',
  'node-agent': 'nfv-operator/node-agent:dev',
} as const;

export type ImageName = keyof typeof IMAGES;

/**
 * Builds `names` with hack/build-images.sh: seconds when Docker's layer cache is warm, minutes
 * cold (debootstrap and apt). Throws with the script's output when a build fails.
 */
export async function buildImages(names: readonly ImageName[]): Promise<void> {
  try {
    await execFileAsync('bash', [BUILD_IMAGES, ...names], { maxBuffer: 64 * 2 ** 20, timeout: 30 * 60_000 });
  } catch (err) {
    const failed = err as Error & { stderr?: string };
    throw new Error(`hack/build-images.sh ${names.join(' ')} failed: ${failed.stderr ?? failed.message}`);
  }
}

/** What an image runs, with the files its Dockerfile copies from images/<name>/ named at their place in the repository. */
export interface ImageOnHost {
  /** The image's ENTRYPOINT, its first word the repository's file when the Dockerfile copied it from there. */
  entrypoint: string[];
  /** The image's ENV, its base image's first. */
  env: Record<string, string>;
}

/**
 * The entrypoint and environment of image `tag`, read from its Dockerfile (and its base's, for
 * ENV): what the namespace sandbox runs on the host in place of the image, so that both runtimes
 * run the same entrypoint script with the same defaults.
 */
export function imageOnHost(tag: string): ImageOnHost {
  const name = (Object.keys(IMAGES) as ImageName[]).find((n) => IMAGES[n] === tag);
  if (!name) throw new Error(`image ${tag} is not one of the project's images (${Object.values(IMAGES).join(', ')})`);
  const dockerfile = readFileSync(posix.join(IMAGES_DIR, name, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ').split('\n');
  const base = dockerfile.find((line) => line.startsWith('FROM '))?.split(/\s+/)[1];
  const inherited = base && Object.values(IMAGES).includes(base as (typeof IMAGES)[ImageName]) ? imageOnHost(base) : { entrypoint: [], env: {} };
  const env = { ...inherited.env };
  let entrypoint = inherited.entrypoint;
  const copied = new Map<string, string>();
  for (const line of dockerfile) {
    const [instruction, ...words] = line.trim().split(/\s+/);
    if (instruction === 'ENV') for (const word of words) env[word.slice(0, word.indexOf('='))] = word.slice(word.indexOf('=') + 1);
    // Only plain copies from the image's directory have a file on the host (not --from=build).
    if (instruction === 'COPY' && words.length === 2 && !words[0]!.startsWith('--')) copied.set(words[1]!, posix.join(IMAGES_DIR, name, words[0]!));
    if (instruction === 'ENTRYPOINT') entrypoint = JSON.parse(words.join(' ')) as string[];
  }
  const [command, ...rest] = entrypoint;
  return { entrypoint: command === undefined ? [] : [copied.get(command) ?? command, ...rest], env };
}
