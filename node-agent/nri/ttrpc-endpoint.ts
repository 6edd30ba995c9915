/**
 * The two ends of unary ttrpc over one byte stream each: {@link TtrpcServer} answers the calls of
 * the peer, {@link TtrpcClient} makes calls and waits for their answers. NRI uses one of each,
 * on two connections of its multiplexer; it has no streaming calls.
 */
import type { Clock, Timer } from '../../src/runtime/clock.js';
import {
  decodeTtrpcRequest,
  decodeTtrpcResponse,
  encodeTtrpcMessage,
  encodeTtrpcRequest,
  encodeTtrpcResponse,
  MessageType,
  StatusCode,
  ttrpcMessageReader,
  type TtrpcMessage,
} from './ttrpc-codec.js';

/** A byte stream in each direction, such as a {@link MuxConnection}. */
export interface ByteConnection {
  write(data: Buffer): void;
  onData(listener: (data: Buffer) => void): void;
}

/** A call that ended with a status other than OK. */
export class TtrpcStatusError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** Serves one method: protobuf-encoded argument in, protobuf-encoded result out. */
export type UnaryHandler = (payload: Buffer) => Buffer | Promise<Buffer>;

/** Reads messages off `connection`; a malformed stream goes to `onProtocolError`. */
function readMessages(connection: ByteConnection, onMessage: (message: TtrpcMessage) => void, onProtocolError: (err: Error) => void): void {
  const reader = ttrpcMessageReader();
  connection.onData((chunk) => {
    let messages: TtrpcMessage[];
    try {
      messages = reader.push(chunk);
    } catch (err) {
      onProtocolError(err as Error);
      return;
    }
    messages.forEach(onMessage);
  });
}

/** Answers unary requests with the handler registered for `<service>/<method>`. */
export class TtrpcServer {
  constructor(
    private readonly connection: ByteConnection,
    private readonly handlers: ReadonlyMap<string, UnaryHandler>,
    onProtocolError: (err: Error) => void,
  ) {
    readMessages(connection, (message) => void this.serve(message), onProtocolError);
  }

  private async serve(message: TtrpcMessage): Promise<void> {
    if (message.type !== MessageType.Request) return;
    let status: { code: number; message: string } = { code: StatusCode.OK, message: '' };
    let payload: Buffer = Buffer.alloc(0);
    try {
      const request = decodeTtrpcRequest(message.data);
      const handler = this.handlers.get(`${request.service}/${request.method}`);
      if (!handler) throw new TtrpcStatusError(StatusCode.Unimplemented, `method ${request.service}/${request.method} is not served`);
      // Flags mark a streaming request; unary requests carry none (PROTOCOL.md).
      if (message.flags !== 0) throw new TtrpcStatusError(StatusCode.Unimplemented, `streaming ${request.method} is not served`);
      payload = await handler(request.payload);
    } catch (err) {
      status = { code: err instanceof TtrpcStatusError ? err.code : StatusCode.Unknown, message: (err as Error).message };
    }
    this.connection.write(encodeTtrpcMessage({ streamId: message.streamId, type: MessageType.Response, flags: 0, data: encodeTtrpcResponse({ status, payload }) }));
  }
}

interface PendingCall {
  resolve(payload: Buffer): void;
  reject(err: Error): void;
  timer: Timer;
}

/** Makes unary calls; each waits for the Response on its stream id or for its timeout. */
export class TtrpcClient {
  private nextStreamId = 1;
  private readonly pending = new Map<number, PendingCall>();
  private failure?: Error;

  constructor(
    private readonly connection: ByteConnection,
    private readonly clock: Clock,
    onProtocolError: (err: Error) => void,
  ) {
    readMessages(connection, (message) => this.receive(message), onProtocolError);
  }

  /** Calls `service/method`; rejects with {@link TtrpcStatusError} on a status other than OK. */
  call(service: string, method: string, payload: Buffer, timeoutMs: number): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    // Client-initiated streams have odd ids.
    const streamId = this.nextStreamId;
    this.nextStreamId += 2;
    return new Promise((resolve, reject) => {
      const timer = this.clock.setTimer(() => {
        this.pending.delete(streamId);
        reject(new Error(`${service}/${method} got no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(streamId, { resolve, reject, timer });
      const request = encodeTtrpcRequest({ service, method, payload, timeoutNano: timeoutMs * 1e6, metadata: [] });
      this.connection.write(encodeTtrpcMessage({ streamId, type: MessageType.Request, flags: 0, data: request }));
    });
  }

  /** Rejects every call in flight and every later one with `err` (the connection is gone). */
  fail(err: Error): void {
    this.failure ??= err;
    for (const call of this.pending.values()) {
      call.timer.cancel();
      call.reject(err);
    }
    this.pending.clear();
  }

  private receive(message: TtrpcMessage): void {
    const call = this.pending.get(message.streamId);
    if (!call || message.type !== MessageType.Response) return;
    this.pending.delete(message.streamId);
    call.timer.cancel();
    try {
      const { status, payload } = decodeTtrpcResponse(message.data);
      if (status.code === StatusCode.OK) call.resolve(payload);
      else call.reject(new TtrpcStatusError(status.code, status.message));
    } catch (err) {
      call.reject(err as Error);
    }
  }
}
