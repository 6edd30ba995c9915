/**
 * The little of the protobuf wire format that ttrpc's envelopes need (varints and length-delimited
 * fields), written by hand: their .proto (ttrpc request.proto, google/rpc/status.proto) has no
 * service, so @grpc/proto-loader offers no codec for them.
 */

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;

/** A malformed protobuf message. */
export class ProtobufWireError extends Error {}

/** Builds a message field by field. */
export class ProtoWriter {
  private readonly parts: Buffer[] = [];

  /** A non-negative integer field (int32, int64, uint32...); 0, the default, is not written. */
  varint(field: number, value: number): this {
    if (value !== 0) this.parts.push(encodeVarint(field * 8 + WIRE_VARINT), encodeVarint(value));
    return this;
  }

  /** A string, bytes or embedded message field; empty, the default, is not written. */
  bytes(field: number, value: Buffer | string): this {
    const data = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    if (data.length > 0) this.parts.push(encodeVarint(field * 8 + WIRE_LENGTH_DELIMITED), encodeVarint(data.length), data);
    return this;
  }

  /** An embedded message field: written even when empty, since a message is present or absent. */
  message(field: number, value: Buffer): this {
    this.parts.push(encodeVarint(field * 8 + WIRE_LENGTH_DELIMITED), encodeVarint(value.length), value);
    return this;
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function encodeVarint(value: number): Buffer {
  if (!Number.isSafeInteger(value) || value < 0) throw new ProtobufWireError(`cannot encode ${value} as a varint`);
  const bytes: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    bytes.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

/** One field as read: a varint's value, or a length-delimited field's bytes. */
export type WireField = { field: number; varint: number } | { field: number; bytes: Buffer };

/** The varint and length-delimited fields of a message, in order; fixed-width fields are skipped. */
export function readFields(message: Buffer): WireField[] {
  const fields: WireField[] = [];
  let offset = 0;
  const varint = (): number => {
    let value = 0;
    for (let scale = 1; ; scale *= 0x80) {
      if (offset >= message.length) throw new ProtobufWireError('a varint runs past the end of the message');
      const byte = message[offset++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
    }
  };
  while (offset < message.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wireType = key % 8;
    if (wireType === WIRE_VARINT) {
      fields.push({ field, varint: varint() });
    } else if (wireType === WIRE_LENGTH_DELIMITED) {
      const length = varint();
      if (offset + length > message.length) throw new ProtobufWireError(`field ${field} runs past the end of the message`);
      fields.push({ field, bytes: message.subarray(offset, offset + length) });
      offset += length;
    } else if (wireType === WIRE_FIXED64 || wireType === WIRE_FIXED32) {
      offset += wireType === WIRE_FIXED64 ? 8 : 4;
    } else {
      throw new ProtobufWireError(`field ${field} has wire type ${wireType}, which no ttrpc envelope uses`);
    }
  }
  return fields;
}
