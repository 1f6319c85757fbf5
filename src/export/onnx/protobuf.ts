/**
 * The part of Protocol Buffers' wire format an ONNX file needs, for writing only
 * (https://protobuf.dev/programming-guides/encoding/): a message is a list of fields, each
 * a key (field number << 3 | wire type) and a value. ONNX uses three wire types:
 *
 *   0 varint             int32 / int64 / enum (a negative int64 takes 10 bytes, two's complement)
 *   2 length-delimited   strings, bytes, nested messages, packed repeated numbers
 *   5 32-bit             float
 *
 * Fields are written in the order they are added; readers accept any order. Nothing here
 * knows ONNX: onnxProto.ts names the fields.
 */

const VARINT = 0;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;

const utf8 = new TextEncoder();

/** One message being written, field by field; `encode()` gives its bytes. */
export class ProtoWriter {
  private readonly chunks: Uint8Array[] = [];
  private length = 0;

  private push(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.length += chunk.byteLength;
  }

  private key(field: number, wireType: number): void {
    this.varint(BigInt(field * 8 + wireType));
  }

  /** Little-endian groups of 7 bits, high bit set on every byte but the last; negatives as 64-bit two's complement. */
  private varint(value: bigint): void {
    let v = BigInt.asUintN(64, value);
    const out: number[] = [];
    do {
      const low = Number(v & 0x7fn);
      v >>= 7n;
      out.push(v === 0n ? low : low | 0x80);
    } while (v !== 0n);
    this.push(Uint8Array.from(out));
  }

  /** int32, int64 or enum field. */
  int(field: number, value: number | bigint): this {
    if (typeof value === 'number' && !Number.isSafeInteger(value)) throw new Error(`protobuf: field ${field}: expected an integer, got ${value}`);
    this.key(field, VARINT);
    this.varint(BigInt(value));
    return this;
  }

  /** float field (IEEE 754 single, little endian). */
  float(field: number, value: number): this {
    this.key(field, FIXED32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.push(b);
    return this;
  }

  /** bytes field, or a nested message's encoding. */
  bytes(field: number, value: Uint8Array): this {
    this.key(field, LENGTH_DELIMITED);
    this.varint(BigInt(value.byteLength));
    this.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, utf8.encode(value));
  }

  message(field: number, value: ProtoWriter): this {
    return this.bytes(field, value.encode());
  }

  /** A packed repeated int64 field (proto3's default for repeated scalars). */
  packedInts(field: number, values: readonly number[]): this {
    const inner = new ProtoWriter();
    for (const v of values) inner.varint(BigInt(v));
    return this.bytes(field, inner.encode());
  }

  /** The message's encoding, to embed in another message or write to a file. */
  encode(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.byteLength;
    }
    return out;
  }
}
