/** The project's images, built by hack/build-images.sh (which names the same tags). */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const BUILD_IMAGES = fileURLToPath(new URL('../../../hack/build-images.sh', import.meta.url));

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
