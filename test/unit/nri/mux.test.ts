import { PassThrough } from 'node:stream';
import { describe, expect, test } from '@jest/globals';
import { FrameTooLargeError } from '../../../node-agent/nri/frame-reader.js';
import { encodeMuxFrames, MAX_WRITTEN_FRAME_PAYLOAD, Multiplexer, muxFrameReader, PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN } from '../../../node-agent/nri/mux.js';

/** A frame as mux.go writes it: conn id and length, uint32 big-endian, then the payload. */
const frame = (connId: number, payload: string): Buffer => Buffer.concat([Buffer.from([0, 0, 0, connId, 0, 0, 0, payload.length]), Buffer.from(payload)]);

describe('mux frames', () => {
  test('the header is the connection id and the payload length, big-endian', () => {
    expect(encodeMuxFrames(RUNTIME_SERVICE_CONN, Buffer.from('abc')).toString('hex')).toBe('0000000200000003616263');
  });

  test(`writes of more than ${MAX_WRITTEN_FRAME_PAYLOAD} bytes go out as frames of at most that much, in order`, () => {
    const data = Buffer.alloc(MAX_WRITTEN_FRAME_PAYLOAD * 2 + 10, 7);
    const frames = muxFrameReader().push(encodeMuxFrames(PLUGIN_SERVICE_CONN, data));
    expect(frames.map((f) => [f.connId, f.payload.length])).toEqual([
      [1, MAX_WRITTEN_FRAME_PAYLOAD],
      [1, MAX_WRITTEN_FRAME_PAYLOAD],
      [1, 10],
    ]);
    expect(Buffer.concat(frames.map((f) => f.payload))).toEqual(data);
  });

  test('a frame split anywhere, even inside its header, comes out whole once its last byte arrives', () => {
    const bytes = Buffer.concat([frame(1, 'hello'), frame(2, 'world!')]);
    for (let cut = 1; cut < bytes.length; cut++) {
      const reader = muxFrameReader();
      const frames = [...reader.push(bytes.subarray(0, cut)), ...reader.push(bytes.subarray(cut))];
      expect(frames.map((f) => [f.connId, f.payload.toString()])).toEqual([
        [1, 'hello'],
        [2, 'world!'],
      ]);
    }
  });

  test('a chunk may carry several frames and the start of the next', () => {
    const reader = muxFrameReader();
    const next = frame(2, 'later');
    const first = reader.push(Buffer.concat([frame(1, 'a'), frame(2, 'bc'), frame(1, ''), next.subarray(0, 9)]));
    expect(first.map((f) => [f.connId, f.payload.toString()])).toEqual([
      [1, 'a'],
      [2, 'bc'],
      [1, ''],
    ]);
    expect(reader.push(next.subarray(9)).map((f) => f.payload.toString())).toEqual(['later']);
  });

  test('a frame longer than a whole ttrpc message is refused', () => {
    const header = Buffer.from([0, 0, 0, 1, 0x01, 0, 0, 0]); // 16 MiB
    expect(() => muxFrameReader().push(header)).toThrow(FrameTooLargeError);
  });
});

describe('Multiplexer', () => {
  test('delivers each connection its own bytes, drops frames of connections never opened, and writes framed', () => {
    const trunk = new PassThrough();
    const mux = new Multiplexer(trunk);
    const received: Record<number, string> = { 1: '', 2: '' };
    mux.open(1).onData((data) => (received[1] += data.toString()));
    mux.open(2).onData((data) => (received[2] += data.toString()));
    const written: Buffer[] = [];
    const write = trunk.write.bind(trunk);
    trunk.write = ((chunk: Buffer) => written.push(chunk) > 0) as typeof trunk.write;

    trunk.emit('data', Buffer.concat([frame(2, 'to runtime conn'), frame(5, 'nobody'), frame(1, 'to plugin')]));
    mux.open(2).write(Buffer.from('out'));

    expect(received).toEqual({ 1: 'to plugin', 2: 'to runtime conn' });
    expect(Buffer.concat(written)).toEqual(frame(2, 'out'));
    trunk.write = write;
    mux.close();
  });

  test('emits close once, with the error of a malformed frame', () => {
    const trunk = new PassThrough();
    const mux = new Multiplexer(trunk);
    const closes: Array<Error | undefined> = [];
    mux.on('close', (err) => closes.push(err));
    trunk.emit('data', Buffer.from([0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]));
    mux.close();
    expect(closes).toHaveLength(1);
    expect(closes[0]).toBeInstanceOf(FrameTooLargeError);
  });
});
