import { ApiError } from '../../../src/runtime/api-error.js';
import { decideRetry, StalledError, WaitingError, type ReconcileEnd, type RetryDecision } from '../../../src/runtime/errors.js';

describe('decideRetry', () => {
  it.each<{ name: string; end: ReconcileEnd; expected: RetryDecision }>([
    { name: 'success without result', end: { ok: true }, expected: { outcome: 'success' } },
    { name: 'success returning void', end: { ok: true, result: undefined }, expected: { outcome: 'success' } },
    { name: 'success with requeueAfterMs 0', end: { ok: true, result: { requeueAfterMs: 0 } }, expected: { outcome: 'success' } },
    {
      name: 'success with requeueAfterMs',
      end: { ok: true, result: { requeueAfterMs: 30_000 } },
      expected: { outcome: 'requeueAfter', delayMs: 30_000 },
    },
    {
      name: 'StalledError: no retry',
      end: { ok: false, error: new StalledError('InvalidSpec', 'spec.cpus.count is 3 but cores have 2 threads') },
      expected: { outcome: 'stalled', reason: 'InvalidSpec' },
    },
    {
      name: 'WaitingError: requeue after its delay',
      end: { ok: false, error: new WaitingError('PodStarting', 'waiting for pod', 5_000) },
      expected: { outcome: 'waiting', delayMs: 5_000 },
    },
    { name: 'plain Error: backoff', end: { ok: false, error: new Error('boom') }, expected: { outcome: 'error' } },
    { name: 'API conflict: backoff', end: { ok: false, error: new ApiError(409, { reason: 'Conflict' }) }, expected: { outcome: 'error' } },
    { name: 'thrown non-Error: backoff', end: { ok: false, error: 'string' }, expected: { outcome: 'error' } },
  ])('$name', ({ end, expected }) => {
    expect(decideRetry(end)).toEqual(expected);
  });
});

describe('reconcile error types', () => {
  it('carry reason, message and cause', () => {
    const cause = new Error('root');
    const stalled = new StalledError('HugepagesTooLarge', 'asks 64Gi, node has 32Gi', { cause });
    expect(stalled).toBeInstanceOf(Error);
    expect(stalled.name).toBe('StalledError');
    expect(stalled.reason).toBe('HugepagesTooLarge');
    expect(stalled.message).toBe('asks 64Gi, node has 32Gi');
    expect(stalled.cause).toBe(cause);
    const waiting = new WaitingError('NodeAgentPreparing', 'agent busy', 2_000);
    expect(waiting.requeueAfterMs).toBe(2_000);
  });

  it.each(['snake_case', 'lowerCamel', 'Has Space', ''])('reject non-CamelCase reason %p', (reason) => {
    expect(() => new StalledError(reason, 'x')).toThrow(TypeError);
    expect(() => new WaitingError(reason, 'x', 1)).toThrow(TypeError);
  });

  it.each([-1, Number.NaN, Number.POSITIVE_INFINITY])('WaitingError rejects requeueAfterMs %p', (ms) => {
    expect(() => new WaitingError('Waiting', 'x', ms)).toThrow(TypeError);
  });
});
