/**
 * ttrpc (github.com/containerd/ttrpc v1.2.9, channel.go, request.proto, PROTOCOL.md): messages of a
 * 10-byte header (data length uint32 BE, stream id uint32 BE, type, flags) and the data; a
 * unary call is a Request on a new odd stream id, answered by a Response on the same id.
 */
import { FrameReader, type FrameFormat } from './frame-reader.js';
import { ProtoWriter, readFields } from './protobuf-wire.js';

export const TTRPC_HEADER_LENGTH = 10;
/** channel.go messageLengthMax. */
export const MAX_MESSAGE_LENGTH = 4 << 20;

export const MessageType = { Request: 1, Response: 2, Data: 3 } as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** gRPC status codes ttrpc answers with (google.golang.org/grpc/codes). */
export const StatusCode = { OK: 0, Unknown: 2, Unimplemented: 12, Unavailable: 14 } as const;

/** One ttrpc message. */
export interface TtrpcMessage {
  streamId: number;
  type: number;
  flags: number;
  data: Buffer;
}

const MESSAGE_FORMAT: FrameFormat<TtrpcMessage> = {
  headerLength: TTRPC_HEADER_LENGTH,
  payloadLength: (header) => header.readUInt32BE(0),
  maxPayloadLength: MAX_MESSAGE_LENGTH,
  build: (header, data) => ({ streamId: header.readUInt32BE(4), type: header.readUInt8(8), flags: header.readUInt8(9), data }),
};

/** Reads messages from a connection's byte stream, however the multiplexer cut it. */
export function ttrpcMessageReader(): FrameReader<TtrpcMessage> {
  return new FrameReader(MESSAGE_FORMAT);
}

export function encodeTtrpcMessage(message: TtrpcMessage): Buffer {
  const header = Buffer.alloc(TTRPC_HEADER_LENGTH);
  header.writeUInt32BE(message.data.length, 0);
  header.writeUInt32BE(message.streamId, 4);
  header.writeUInt8(message.type, 8);
  header.writeUInt8(message.flags, 9);
  return Buffer.concat([header, message.data]);
}

/** ttrpc.Request: which method, its protobuf-encoded argument, and the caller's deadline. */
export interface TtrpcRequest {
  service: string;
  method: string;
  payload: Buffer;
  /** 0: no deadline. */
  timeoutNano: number;
  metadata: Array<{ key: string; value: string }>;
}

/** ttrpc.Response: a google.rpc.Status and, when it is OK, the protobuf-encoded result. */
export interface TtrpcResponse {
  status: { code: number; message: string };
  payload: Buffer;
}

export function encodeTtrpcRequest(request: TtrpcRequest): Buffer {
  const writer = new ProtoWriter().bytes(1, request.service).bytes(2, request.method).bytes(3, request.payload).varint(4, request.timeoutNano);
  for (const { key, value } of request.metadata) writer.message(5, new ProtoWriter().bytes(1, key).bytes(2, value).finish());
  return writer.finish();
}

export function decodeTtrpcRequest(data: Buffer): TtrpcRequest {
  const request: TtrpcRequest = { service: '', method: '', payload: Buffer.alloc(0), timeoutNano: 0, metadata: [] };
  for (const f of readFields(data)) {
    if ('varint' in f) {
      if (f.field === 4) request.timeoutNano = f.varint;
    } else if (f.field === 1) request.service = f.bytes.toString('utf8');
    else if (f.field === 2) request.method = f.bytes.toString('utf8');
    else if (f.field === 3) request.payload = f.bytes;
    else if (f.field === 5) {
      const entry = { key: '', value: '' };
      for (const kv of readFields(f.bytes)) if ('bytes' in kv) entry[kv.field === 1 ? 'key' : 'value'] = kv.bytes.toString('utf8');
      request.metadata.push(entry);
    }
  }
  return request;
}

export function encodeTtrpcResponse(response: TtrpcResponse): Buffer {
  const status = new ProtoWriter().varint(1, response.status.code).bytes(2, response.status.message).finish();
  return new ProtoWriter().message(1, status).bytes(2, response.payload).finish();
}

export function decodeTtrpcResponse(data: Buffer): TtrpcResponse {
  const response: TtrpcResponse = { status: { code: StatusCode.OK, message: '' }, payload: Buffer.alloc(0) };
  for (const f of readFields(data)) {
    if (!('bytes' in f)) continue;
    if (f.field === 2) response.payload = f.bytes;
    else if (f.field === 1) {
      for (const s of readFields(f.bytes)) {
        if ('varint' in s && s.field === 1) response.status.code = s.varint;
        else if ('bytes' in s && s.field === 2) response.status.message = s.bytes.toString('utf8');
      }
    }
  }
  return response;
}
