/**
 * Running helm and kubeconform on charts/nfv-operator from tests: the exit code and both streams,
 * never a throw on a non-zero exit, so a test can assert on a refusal as easily as on a success.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { repoRoot, resolveClusterTools, type ClusterTools } from '../../cluster/tools.js';

/** The chart directory. */
export const CHART_DIR = join(repoRoot(), 'charts', 'nfv-operator');

/** How a command ended. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `file` with `args`, feeding `input` on stdin, with `env` added to this process's
 * environment; resolves with the outcome whatever the exit code.
 */
export function runCommand(file: string, args: readonly string[], input?: string, env: Record<string, string> = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, [...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

/** Options of {@link helmTemplate}. */
export interface RenderOptions {
  release?: string;
  namespace?: string;
  /** `--set key=value` pairs. */
  set?: readonly string[];
  /** `--set-string key=value` pairs (values that look like numbers, such as PCI ids). */
  setString?: readonly string[];
  /** Render crds/ too. */
  includeCrds?: boolean;
}

/**
 * `helm template` of the chart against the pinned Kubernetes version (the chart declares a
 * kubeVersion, and helm's offline default is far older).
 */
export async function helmTemplate(options: RenderOptions = {}, tools?: ClusterTools): Promise<CommandResult> {
  const { helm, versions } = tools ?? (await resolveClusterTools());
  const args = ['template', options.release ?? 'nfv', CHART_DIR, '--namespace', options.namespace ?? 'nfv-system', '--kube-version', versions.kubernetes];
  if (options.includeCrds) args.push('--include-crds');
  for (const pair of options.set ?? []) args.push('--set', pair);
  for (const pair of options.setString ?? []) args.push('--set-string', pair);
  return runCommand(helm, args);
}

/** A rendered object. */
export type RenderedObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> } } & Record<string, unknown>;

/** The objects of a multi-document YAML stream, empty documents left out. */
export function parseManifests(text: string): RenderedObject[] {
  return yaml.loadAll(text).filter((doc): doc is RenderedObject => doc !== null && typeof doc === 'object');
}

/** Renders and parses, failing with helm's own message when it refuses. */
export async function renderChart(options: RenderOptions = {}): Promise<RenderedObject[]> {
  const result = await helmTemplate(options);
  if (result.code !== 0) throw new Error(`helm template failed (${result.code}): ${result.stderr}`);
  return parseManifests(result.stdout);
}
