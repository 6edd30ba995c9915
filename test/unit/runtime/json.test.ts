import { jsonEqual } from '../../../src/runtime/json-equal.js';
import { splitLines } from '../../../src/runtime/json-lines.js';

async function* chunks(...parts: (string | Buffer)[]): AsyncGenerator<string | Buffer> {
  for (const part of parts) yield part;
}

async function collect(source: AsyncIterable<string>): Promise<string[]> {
  const lines: string[] = [];
  for await (const line of source) lines.push(line);
  return lines;
}

describe('splitLines', () => {
  const euro = Buffer.from('€'); // three bytes
  it.each([
    { name: 'whole lines', parts: ['{"a":1}\n{"b":2}\n'], expected: ['{"a":1}', '{"b":2}'] },
    { name: 'a line across chunks', parts: ['{"a"', ':1}\n{"b', '":2}\n'], expected: ['{"a":1}', '{"b":2}'] },
    { name: 'last line without newline', parts: ['x\ny'], expected: ['x', 'y'] },
    { name: 'blank lines and CRLF', parts: ['\n\nx\r\n\r\ny\n'], expected: ['x', 'y'] },
    {
      name: 'a multi-byte character split between chunks',
      parts: [Buffer.from('"'), euro.subarray(0, 1), euro.subarray(1), Buffer.from('"\n')],
      expected: ['"€"'],
    },
    { name: 'nothing', parts: [], expected: [] },
  ])('$name', async ({ parts, expected }) => {
    expect(await collect(splitLines(chunks(...parts)))).toEqual(expected);
  });
});

describe('jsonEqual', () => {
  it.each([
    { name: 'equal primitives', a: 1, b: 1, equal: true },
    { name: 'different primitives', a: 1, b: '1', equal: false },
    { name: 'key order ignored', a: { x: 1, y: { z: [1, 2] } }, b: { y: { z: [1, 2] }, x: 1 }, equal: true },
    { name: 'undefined key equals missing key', a: { x: 1, y: undefined }, b: { x: 1 }, equal: true },
    { name: 'null is not missing', a: { x: null }, b: {}, equal: false },
    { name: 'array order matters', a: [1, 2], b: [2, 1], equal: false },
    { name: 'array vs object', a: [], b: {}, equal: false },
    { name: 'nested difference', a: { s: { c: [{ t: 'A' }] } }, b: { s: { c: [{ t: 'B' }] } }, equal: false },
  ])('$name', ({ a, b, equal }) => {
    expect(jsonEqual(a, b)).toBe(equal);
    expect(jsonEqual(b, a)).toBe(equal);
  });
});
