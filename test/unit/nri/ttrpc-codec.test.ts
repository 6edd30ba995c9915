import { describe, expect, test } from '@jest/globals';
import { FrameTooLargeError } from '../../../node-agent/nri/frame-reader.js';
import { eventMask, nriMethods, NriEvent } from '../../../node-agent/nri/nri-api.js';
import {
  decodeTtrpcRequest,
  decodeTtrpcResponse,
  encodeTtrpcMessage,
  encodeTtrpcRequest,
  encodeTtrpcResponse,
  MessageType,
  ttrpcMessageReader,
} from '../../../node-agent/nri/ttrpc-codec.js';

// Golden bytes from Go: proto.Marshal of ttrpc v1.2.9's Request and Response and nri v0.12.3's
// CreateContainerResponse, printed by a throwaway program against the module cache.
const GO_REQUEST =
  '0a1b6e72692e706b672e6170692e7631616c706861312e506c7567696e120f437265617465436f6e7461696e65721a030102032080a8d6b9072a1a0a0b7472616365706172656e74120b30302d61622d63642d3031';
const GO_ERROR_RESPONSE = '0a16080c12126d6574686f642058206e6f7420666f756e6412020908';
const GO_OK_RESPONSE = '0a0012021008';
const GO_HUGEPAGE_ADJUSTMENT = '0a10320e120c1a0a0a03324d421080808002';

const request = {
  service: 'nri.pkg.api.v1alpha1.Plugin',
  method: 'CreateContainer',
  payload: Buffer.from([1, 2, 3]),
  timeoutNano: 2_000_000_000,
  metadata: [{ key: 'traceparent', value: '00-ab-cd-01' }],
};

describe('ttrpc envelopes', () => {
  test('a Request encodes as Go encodes it, and decodes back', () => {
    expect(encodeTtrpcRequest(request).toString('hex')).toBe(GO_REQUEST);
    expect(decodeTtrpcRequest(Buffer.from(GO_REQUEST, 'hex'))).toEqual(request);
  });

  test('a Response with an error status, and an OK one with its (always present) status', () => {
    const failed = { status: { code: 12, message: 'method X not found' }, payload: Buffer.from([9, 8]) };
    expect(encodeTtrpcResponse(failed).toString('hex')).toBe(GO_ERROR_RESPONSE);
    expect(decodeTtrpcResponse(Buffer.from(GO_ERROR_RESPONSE, 'hex'))).toEqual(failed);
    const ok = { status: { code: 0, message: '' }, payload: Buffer.from([0x10, 0x08]) };
    expect(encodeTtrpcResponse(ok).toString('hex')).toBe(GO_OK_RESPONSE);
    expect(decodeTtrpcResponse(Buffer.from(GO_OK_RESPONSE, 'hex'))).toEqual(ok);
  });

  test('a Response without a status is OK (ttrpc client.go: a nil status is no error)', () => {
    expect(decodeTtrpcResponse(Buffer.from('12021008', 'hex'))).toEqual({ status: { code: 0, message: '' }, payload: Buffer.from([0x10, 0x08]) });
  });

  test('unknown and fixed-width fields are skipped', () => {
    const withExtras = Buffer.concat([Buffer.from('0a0178', 'hex'), Buffer.from('3d01020304', 'hex'), Buffer.from('4101020304050607', 'hex'), Buffer.from('08', 'hex'), Buffer.from('5005', 'hex')]);
    expect(decodeTtrpcRequest(withExtras).service).toBe('x');
  });
});

describe('ttrpc messages', () => {
  test('the 10-byte header: length, stream id, type, flags', () => {
    expect(encodeTtrpcMessage({ streamId: 3, type: MessageType.Response, flags: 0, data: Buffer.from('ab') }).toString('hex')).toBe('0000000200000003020061' + '62');
  });

  test('messages cut anywhere by the multiplexer are put together again', () => {
    const messages = [
      { streamId: 1, type: MessageType.Request, flags: 0, data: Buffer.alloc(5000, 1) },
      { streamId: 3, type: MessageType.Request, flags: 0, data: Buffer.alloc(0) },
    ];
    const bytes = Buffer.concat(messages.map(encodeTtrpcMessage));
    for (const size of [1, 7, 10, 4096]) {
      const reader = ttrpcMessageReader();
      const read = [];
      for (let offset = 0; offset < bytes.length; offset += size) read.push(...reader.push(bytes.subarray(offset, offset + size)));
      expect(read).toEqual(messages);
    }
  });

  test('more than 4 MiB of data is refused (channel.go messageLengthMax)', () => {
    expect(() => ttrpcMessageReader().push(Buffer.from('00400001000000010100', 'hex'))).toThrow(FrameTooLargeError);
  });
});

describe('NRI messages', () => {
  test('the event mask of CreateContainer only is bit 3 (EventMask.Set), as nri v0.12.3 computes it', () => {
    expect(eventMask([NriEvent.CREATE_CONTAINER])).toBe(8);
  });

  test('a hugepage adjustment encodes as nri v0.12.3 AddLinuxHugepageLimit does', () => {
    const response = { adjust: { linux: { resources: { hugepage_limits: [{ page_size: '2MB', limit: 4 << 20 }] } } } };
    expect(nriMethods.createContainer.response.encode(response).toString('hex')).toBe(GO_HUGEPAGE_ADJUSTMENT);
  });
});
