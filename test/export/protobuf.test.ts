/** The protobuf writer against encodings worked out by hand from the wire-format spec. */
import { describe, expect, it } from 'vitest';
import { ProtoWriter } from '../../src/export/onnx/protobuf.js';

const bytes = (w: ProtoWriter) => Array.from(w.encode());

describe('ProtoWriter', () => {
  it('varints: 1, 300 (the spec\'s example), and -1 as ten bytes', () => {
    expect(bytes(new ProtoWriter().int(1, 1))).toEqual([0x08, 0x01]);
    expect(bytes(new ProtoWriter().int(1, 300))).toEqual([0x08, 0xac, 0x02]);
    expect(bytes(new ProtoWriter().int(2, -1))).toEqual([0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
  });

  it('strings, nested messages, packed ints and floats', () => {
    expect(bytes(new ProtoWriter().string(2, 'testing'))).toEqual([0x12, 0x07, ...Buffer.from('testing')]);
    expect(bytes(new ProtoWriter().message(3, new ProtoWriter().int(1, 150)))).toEqual([0x1a, 0x03, 0x08, 0x96, 0x01]);
    expect(bytes(new ProtoWriter().packedInts(4, [3, 270, 86942]))).toEqual([0x22, 0x06, 0x03, 0x8e, 0x02, 0x9e, 0xa7, 0x05]);
    expect(bytes(new ProtoWriter().float(2, 1))).toEqual([0x15, 0x00, 0x00, 0x80, 0x3f]);
  });

  it('refuses a number that is not an integer', () => {
    expect(() => new ProtoWriter().int(1, 1.5)).toThrow(/expected an integer/);
  });
});
