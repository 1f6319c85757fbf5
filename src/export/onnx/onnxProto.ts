/**
 * ONNX's messages, as far as a float32 inference graph needs them, with their field numbers
 * from onnx/onnx.proto (IR version 7, the one opset 13 came with). The numbers are the
 * format: a wrong one is a file ONNX Runtime and onnx.checker refuse, and the export tests
 * run both on every architecture.
 */
import { ProtoWriter } from './protobuf.js';

/** IR version of the file; opset 13 needs at least 7. */
export const ONNX_IR_VERSION = 7;
/** The default (ai.onnx) operator set the graph is written against. */
export const ONNX_OPSET = 13;

/** TensorProto.DataType */
const FLOAT = 1;
const INT64 = 7;

/** AttributeProto.AttributeType */
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_INTS = 7;

export type AttributeValue = number | number[] | { float: number };

export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  name: string;
  /** Integers and integer lists as INT / INTS; `{ float }` as FLOAT. */
  attributes?: Record<string, AttributeValue>;
}

export interface OnnxInitializer {
  name: string;
  dims: number[];
  /** float32 values, or int64 ones (shapes) */
  data: Float32Array | BigInt64Array;
}

/** A graph input or output: float32, each dimension a size or a symbolic name ('N'). */
export interface OnnxValueInfo {
  name: string;
  dims: Array<number | string>;
  doc?: string;
}

export interface OnnxModel {
  graphName: string;
  nodes: OnnxNode[];
  initializers: OnnxInitializer[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  producerName: string;
  producerVersion: string;
  doc: string;
  /** metadata_props: what the file is, for whoever loads it. */
  metadata: Record<string, string>;
}

function attribute(name: string, value: AttributeValue): ProtoWriter {
  const a = new ProtoWriter().string(1, name);
  if (typeof value === 'number') return a.int(20, ATTR_INT).int(3, value);
  if (Array.isArray(value)) return a.int(20, ATTR_INTS).packedInts(8, value);
  return a.int(20, ATTR_FLOAT).float(2, value.float);
}

function node(n: OnnxNode): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name).string(4, n.op);
  for (const [k, v] of Object.entries(n.attributes ?? {})) w.message(5, attribute(k, v));
  return w;
}

/** The values as raw little-endian bytes (raw_data), the compact form ONNX readers all take. */
function tensor(t: OnnxInitializer): ProtoWriter {
  const count = t.dims.reduce((a, b) => a * b, 1);
  if (t.data.length !== count) throw new Error(`onnx: initializer ${t.name}: ${t.data.length} values for dims [${t.dims.join(', ')}]`);
  const raw = new Uint8Array(t.data.byteLength);
  const view = new DataView(raw.buffer);
  if (t.data instanceof Float32Array) t.data.forEach((v, i) => view.setFloat32(4 * i, v, true));
  else t.data.forEach((v, i) => view.setBigInt64(8 * i, v, true));
  return new ProtoWriter()
    .packedInts(1, t.dims)
    .int(2, t.data instanceof Float32Array ? FLOAT : INT64)
    .string(8, t.name)
    .bytes(9, raw);
}

function valueInfo(v: OnnxValueInfo): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of v.dims) shape.message(1, typeof d === 'number' ? new ProtoWriter().int(1, d) : new ProtoWriter().string(2, d));
  const tensorType = new ProtoWriter().int(1, FLOAT).message(2, shape);
  const w = new ProtoWriter().string(1, v.name).message(2, new ProtoWriter().message(1, tensorType));
  return v.doc ? w.string(3, v.doc) : w;
}

/** The ModelProto's bytes: an .onnx file. */
export function encodeOnnxModel(m: OnnxModel): Uint8Array {
  const graph = new ProtoWriter();
  for (const n of m.nodes) graph.message(1, node(n));
  graph.string(2, m.graphName);
  for (const t of m.initializers) graph.message(5, tensor(t));
  for (const i of m.inputs) graph.message(11, valueInfo(i));
  for (const o of m.outputs) graph.message(12, valueInfo(o));

  const model = new ProtoWriter()
    .int(1, ONNX_IR_VERSION)
    .string(2, m.producerName)
    .string(3, m.producerVersion)
    .string(6, m.doc)
    .message(7, graph)
    .message(8, new ProtoWriter().string(1, '').int(2, ONNX_OPSET));
  for (const [key, value] of Object.entries(m.metadata)) model.message(14, new ProtoWriter().string(1, key).string(2, value));
  return model.encode();
}
