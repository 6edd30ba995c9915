/**
 * Runs placement batches one at a time; every key submitted while a batch runs goes into the
 * next one. Batches exist because a placement is cheap to plan and expensive to commit: planning
 * the VNFs that are waiting together, against one snapshot, costs one ledger write per node
 * touched instead of one per VNF.
 */
export class PlacementBatcher<R> {
  private pending: { key: string; signal: AbortSignal; resolve: (r: R) => void; reject: (e: unknown) => void }[] = [];
  private running = false;

  /** `run` plans and commits one batch; a key's entry is its result, or the error that failed it. */
  constructor(private readonly run: (keys: string[], signal: AbortSignal) => Promise<Map<string, R | Error>>) {}

  /** Places `key` in the next batch and resolves with its result. */
  submit(key: string, signal: AbortSignal): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ key, signal, resolve, reject });
      void this.drain();
    });
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.pending.length > 0) {
        const batch = this.pending.splice(0);
        try {
          const results = await this.run(
            batch.map((p) => p.key),
            batch[0]!.signal,
          );
          for (const { key, resolve, reject } of batch) {
            const result = results.get(key);
            if (result instanceof Error) reject(result);
            else resolve(result as R);
          }
        } catch (error) {
          for (const { reject } of batch) reject(error);
        }
      }
    } finally {
      this.running = false;
    }
  }
}
