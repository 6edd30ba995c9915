/**
 * The cleanup of a test file as a list of steps that all run: a failing step is recorded and the
 * next one still runs, so one leftover never hides (or causes) others; {@link throwIfFailed} then
 * fails the hook with every problem at once.
 */
export class CleanupSteps {
  readonly problems: string[] = [];

  /** Runs `action`, recording its failure under `what`. */
  async run(what: string, action: () => unknown): Promise<void> {
    try {
      await action();
    } catch (err) {
      this.problems.push(`${what}: ${(err as Error).message}`);
    }
  }

  /** Throws, listing every failed step and `detail`, if any step failed. */
  throwIfFailed(detail = ''): void {
    if (this.problems.length > 0) throw new Error(`cleanup failed:\n${this.problems.join('\n')}${detail}`);
  }
}
