/** How a length-prefixed framing reads: the multiplexer's frames and ttrpc's messages are both one. */
export interface FrameFormat<T> {
  /** Bytes of the fixed header. */
  headerLength: number;
  /** Payload bytes that follow `header`. */
  payloadLength(header: Buffer): number;
  /** Larger payloads are a protocol error, not a reason to buffer without bound. */
  maxPayloadLength: number;
  build(header: Buffer, payload: Buffer): T;
}

/** A payload longer than the framing allows; the stream cannot be trusted after it. */
export class FrameTooLargeError extends Error {}

/**
 * Cuts a byte stream into frames whatever its chunking: a chunk may end inside a header or a
 * payload, or carry several frames.
 */
export class FrameReader<T> {
  private buffered: Buffer = Buffer.alloc(0);

  constructor(private readonly format: FrameFormat<T>) {}

  /** The frames completed by `chunk`, in order. */
  push(chunk: Buffer): T[] {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const frames: T[] = [];
    const { headerLength } = this.format;
    while (this.buffered.length >= headerLength) {
      const header = this.buffered.subarray(0, headerLength);
      const length = this.format.payloadLength(header);
      if (length > this.format.maxPayloadLength) {
        throw new FrameTooLargeError(`a frame announces ${length} bytes, more than the ${this.format.maxPayloadLength} allowed`);
      }
      if (this.buffered.length < headerLength + length) break;
      frames.push(this.format.build(header, this.buffered.subarray(headerLength, headerLength + length)));
      this.buffered = this.buffered.subarray(headerLength + length);
    }
    return frames;
  }
}
