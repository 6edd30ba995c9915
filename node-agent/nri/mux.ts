/**
 * NRI's connection multiplexer (github.com/containerd/nri v0.12.3, pkg/net/multiplex): several
 * logical byte streams over one unix socket, each write sent as frames of an 8-byte header
 * (connection id, payload length; both uint32 big-endian) and the payload. Opening a connection
 * sends nothing; both ends simply use the same ids.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { FrameReader, type FrameFormat } from './frame-reader.js';
import { MAX_MESSAGE_LENGTH, TTRPC_HEADER_LENGTH } from './ttrpc-codec.js';

/** The connection on which the plugin serves the Plugin service (multiplex.PluginServiceConn). */
export const PLUGIN_SERVICE_CONN = 1;
/** The connection on which the runtime serves the Runtime service (multiplex.RuntimeServiceConn). */
export const RUNTIME_SERVICE_CONN = 2;

export const MUX_HEADER_LENGTH = 8;
/** mux.go maxPayloadSize: one whole ttrpc message. */
const MAX_FRAME_PAYLOAD = TTRPC_HEADER_LENGTH + MAX_MESSAGE_LENGTH;
/**
 * Payload of the frames this end writes. The runtime's ttrpc reads each connection through a
 * 4096-byte bufio.Reader, and a mux connection's Read fails with ENOMEM when a frame does not fit
 * the buffer it is given: frames of at most 4096 bytes always fit.
 */
export const MAX_WRITTEN_FRAME_PAYLOAD = 4096;

/** One frame: which connection, and its bytes. */
export interface MuxFrame {
  connId: number;
  payload: Buffer;
}

const FRAME_FORMAT: FrameFormat<MuxFrame> = {
  headerLength: MUX_HEADER_LENGTH,
  payloadLength: (header) => header.readUInt32BE(4),
  maxPayloadLength: MAX_FRAME_PAYLOAD,
  build: (header, payload) => ({ connId: header.readUInt32BE(0), payload }),
};

/** Reads frames from the trunk's byte stream, however it is chunked. */
export function muxFrameReader(): FrameReader<MuxFrame> {
  return new FrameReader(FRAME_FORMAT);
}

/** `data` on connection `connId` as frames of at most `maxPayload` bytes each, in one buffer. */
export function encodeMuxFrames(connId: number, data: Buffer, maxPayload = MAX_WRITTEN_FRAME_PAYLOAD): Buffer {
  const frames: Buffer[] = [];
  for (let offset = 0; offset < data.length; offset += maxPayload) {
    const payload = data.subarray(offset, offset + maxPayload);
    const header = Buffer.alloc(MUX_HEADER_LENGTH);
    header.writeUInt32BE(connId, 0);
    header.writeUInt32BE(payload.length, 4);
    frames.push(header, payload);
  }
  return Buffer.concat(frames);
}

/** A logical connection of a {@link Multiplexer}: a byte stream in each direction. */
export class MuxConnection {
  private listener: (data: Buffer) => void = () => undefined;

  constructor(
    readonly id: number,
    private readonly send: (data: Buffer) => void,
  ) {}

  /** Where the bytes that arrive on this connection go. */
  onData(listener: (data: Buffer) => void): void {
    this.listener = listener;
  }

  write(data: Buffer): void {
    this.send(data);
  }

  /** Called by the multiplexer. */
  deliver(data: Buffer): void {
    this.listener(data);
  }
}

/**
 * Multiplexes {@link MuxConnection}s over a trunk socket. Emits `close` once, with the error if
 * there was one, when the trunk ends, fails or carries a malformed frame.
 */
export class Multiplexer extends EventEmitter<{ close: [Error | undefined] }> {
  private readonly connections = new Map<number, MuxConnection>();
  private readonly reader = muxFrameReader();
  private closed = false;

  constructor(private readonly trunk: Duplex) {
    super();
    trunk.on('data', (chunk: Buffer) => this.receive(chunk));
    trunk.on('error', (err) => this.finish(err));
    trunk.on('close', () => this.finish(undefined));
  }

  /** The connection `id`; frames for ids never opened are dropped, as mux.go drops them. */
  open(id: number): MuxConnection {
    let connection = this.connections.get(id);
    if (!connection) {
      connection = new MuxConnection(id, (data) => {
        if (!this.closed) this.trunk.write(encodeMuxFrames(id, data));
      });
      this.connections.set(id, connection);
    }
    return connection;
  }

  /** Closes the trunk, and with it every connection. */
  close(): void {
    this.trunk.destroy();
    this.finish(undefined);
  }

  private receive(chunk: Buffer): void {
    let frames: MuxFrame[];
    try {
      frames = this.reader.push(chunk);
    } catch (err) {
      this.trunk.destroy();
      this.finish(err as Error);
      return;
    }
    for (const frame of frames) this.connections.get(frame.connId)?.deliver(frame.payload);
  }

  private finish(err: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.emit('close', err);
  }
}
