import { execFile } from 'node:child_process';

/** Output of a finished command. */
export interface CommandOutput {
  stdout: string;
  stderr: string;
}

/** A command that exited non-zero, timed out or could not start. */
export class CommandError extends Error {
  override readonly name = 'CommandError';

  constructor(
    readonly file: string,
    readonly args: readonly string[],
    readonly exitCode: number | string | null,
    readonly stderr: string,
    cause?: unknown,
  ) {
    super(`${[file, ...args].join(' ')} failed (${exitCode ?? 'signal'}): ${stderr.trim() || (cause as Error | undefined)?.message || 'no output'}`, { cause });
  }
}

/** Options of {@link runCommand}. */
export interface RunCommandOptions {
  /** Kill the command after this many ms. Default 30000. */
  timeoutMs?: number;
}

/**
 * Runs a program with an argument vector: no shell ever parses anything, so values that came from
 * a custom resource cannot inject commands however they are spelled.
 */
export function runCommand(file: string, args: readonly string[], options: RunCommandOptions = {}): Promise<CommandOutput> {
  return new Promise((resolve, reject) => {
    execFile(file, [...args], { timeout: options.timeoutMs ?? 30_000, encoding: 'utf8', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) {
        const code = (err as NodeJS.ErrnoException & { code?: number | string }).code ?? null;
        reject(new CommandError(file, args, code, stderr, err));
        return;
      }
      resolve({ stdout, stderr });
    });
  });
}
