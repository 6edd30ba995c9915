import { describe, expect, test } from '@jest/globals';
import { FakeClock } from '../../../src/runtime/fake-clock.js';
import { StatusCode } from '../../../node-agent/nri/ttrpc-codec.js';
import { TtrpcClient, TtrpcServer, TtrpcStatusError, type ByteConnection, type UnaryHandler } from '../../../node-agent/nri/ttrpc-endpoint.js';

/** Two ends of an in-memory byte stream that delivers each write in chunks of `chunk` bytes. */
function pipe(chunk = 3): [ByteConnection, ByteConnection] {
  const listeners: Array<(data: Buffer) => void> = [() => undefined, () => undefined];
  const end = (self: number): ByteConnection => ({
    onData: (listener) => (listeners[self] = listener),
    write: (data) => {
      for (let offset = 0; offset < data.length; offset += chunk) listeners[1 - self]!(data.subarray(offset, offset + chunk));
    },
  });
  return [end(0), end(1)];
}

function serverAndClient(handlers: Record<string, UnaryHandler>, clock = new FakeClock()) {
  const [serverEnd, clientEnd] = pipe();
  const errors: Error[] = [];
  new TtrpcServer(serverEnd, new Map(Object.entries(handlers)), (err) => errors.push(err));
  const client = new TtrpcClient(clientEnd, clock, (err) => errors.push(err));
  return { client, errors, clock };
}

describe('ttrpc server and client', () => {
  test('a call reaches its handler and returns its result', async () => {
    const { client, errors } = serverAndClient({ 'svc/Echo': (payload) => Buffer.concat([payload, payload]) });
    await expect(client.call('svc', 'Echo', Buffer.from('ab'), 1000)).resolves.toEqual(Buffer.from('abab'));
    expect(errors).toEqual([]);
  });

  test('concurrent calls get their own answers, whatever order the handlers finish in', async () => {
    let releaseSlow = (): void => undefined;
    const slow = new Promise<void>((resolve) => (releaseSlow = resolve));
    const { client } = serverAndClient({
      'svc/Slow': async () => {
        await slow;
        return Buffer.from('slow');
      },
      'svc/Fast': () => Buffer.from('fast'),
    });
    const first = client.call('svc', 'Slow', Buffer.alloc(0), 1000);
    await expect(client.call('svc', 'Fast', Buffer.alloc(0), 1000)).resolves.toEqual(Buffer.from('fast'));
    releaseSlow();
    await expect(first).resolves.toEqual(Buffer.from('slow'));
  });

  test('a method not served answers Unimplemented; a failing handler Unknown with its message', async () => {
    const { client } = serverAndClient({
      'svc/Fail': () => {
        throw new Error('broken');
      },
    });
    await expect(client.call('svc', 'Other', Buffer.alloc(0), 1000)).rejects.toMatchObject({ code: StatusCode.Unimplemented });
    const failed = client.call('svc', 'Fail', Buffer.alloc(0), 1000);
    await expect(failed).rejects.toBeInstanceOf(TtrpcStatusError);
    await expect(failed).rejects.toMatchObject({ code: StatusCode.Unknown, message: 'broken' });
  });

  test('a call without an answer times out; a failed connection rejects what is in flight and what comes after', async () => {
    const [, clientEnd] = pipe();
    const clock = new FakeClock();
    const client = new TtrpcClient(clientEnd, clock, () => undefined);
    const unanswered = client.call('svc', 'Lost', Buffer.alloc(0), 500);
    const expectation = expect(unanswered).rejects.toThrow('svc/Lost got no answer within 500 ms');
    await clock.advance(500);
    await expectation;

    const inFlight = client.call('svc', 'Lost', Buffer.alloc(0), 500);
    client.fail(new Error('connection closed'));
    await expect(inFlight).rejects.toThrow('connection closed');
    await expect(client.call('svc', 'Later', Buffer.alloc(0), 500)).rejects.toThrow('connection closed');
    expect(clock.pendingTimers()).toBe(0);
  });
});
