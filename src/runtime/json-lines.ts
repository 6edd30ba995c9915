import { StringDecoder } from 'node:string_decoder';

/**
 * Splits a byte stream into non-empty lines. Watch responses carry one JSON document per line,
 * and chunk boundaries fall anywhere, even inside a multi-byte UTF-8 character, so bytes are
 * decoded with a {@link StringDecoder} and a partial last line is held back.
 */
export async function* splitLines(chunks: AsyncIterable<Buffer | string>): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  for await (const chunk of chunks) {
    pending += typeof chunk === 'string' ? chunk : decoder.write(chunk);
    let newline = pending.indexOf('\n');
    while (newline >= 0) {
      const line = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (line) yield line;
      newline = pending.indexOf('\n');
    }
  }
  const last = (pending + decoder.end()).trim();
  if (last) yield last;
}
