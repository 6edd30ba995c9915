import { describe, expect, test } from '@jest/globals';
import { PlacementBatcher } from '../../../src/controllers/vnf/placement-batcher.js';

const signal = new AbortController().signal;

describe('PlacementBatcher', () => {
  test('keys submitted while a batch runs go together into the next one', async () => {
    const batches: string[][] = [];
    let release!: () => void;
    const firstBatchBlocked = new Promise<void>((resolve) => (release = resolve));
    const batcher = new PlacementBatcher<string>(async (keys) => {
      batches.push(keys);
      if (batches.length === 1) await firstBatchBlocked;
      return new Map(keys.map((k) => [k, `placed ${k}`]));
    });
    const first = batcher.submit('a', signal);
    const rest = ['b', 'c', 'd'].map((k) => batcher.submit(k, signal));
    release();
    expect(await first).toBe('placed a');
    expect(await Promise.all(rest)).toEqual(['placed b', 'placed c', 'placed d']);
    expect(batches).toEqual([['a'], ['b', 'c', 'd']]);
  });

  test('a key whose commit failed gets its error; the others their result', async () => {
    const batcher = new PlacementBatcher<string>(async () => new Map<string, string | Error>([['a', 'ok'], ['b', new Error('409 Conflict')]]));
    const [a, b] = [batcher.submit('a', signal), batcher.submit('b', signal)];
    expect(await a).toBe('ok');
    await expect(b).rejects.toThrow('409 Conflict');
  });

  test('a batch that throws fails its keys and the next batch still runs', async () => {
    let calls = 0;
    const batcher = new PlacementBatcher<string>(async (keys) => {
      calls++;
      if (calls === 1) throw new Error('API down');
      return new Map(keys.map((k) => [k, k]));
    });
    await expect(batcher.submit('a', signal)).rejects.toThrow('API down');
    expect(await batcher.submit('b', signal)).toBe('b');
  });
});
