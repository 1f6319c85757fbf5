/**
 * Access to the wasm backend's heap for svhn's own kernels. A JS kernel reads its inputs
 * as typed-array views on the wasm heap and writes its output in place, so nothing is
 * copied in or out. Views die when the heap grows (any makeOutput may grow it): allocate
 * every output first, then take views.
 */
import * as tf from '@tensorflow/tfjs';
import { tileAt, tileCount, tileLayout } from './convTiles.js';

export interface WasmTensorRecord {
  id: number;
  memoryOffset: number;
}

/** The part of tfjs-backend-wasm's BackendWasm our kernels use. */
export interface WasmBackendLike {
  wasm: { cwrap(name: string, returnType: null, argTypes: string[]): (...args: number[]) => void };
  dataIdMap: { get(dataId: object): WasmTensorRecord | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: object, force?: boolean): boolean;
}

export function asWasm(backend: unknown): WasmBackendLike {
  return backend as WasmBackendLike;
}

/** The C++ side's id of a tensor (what the compiled `_Conv2D` etc. take). */
export function tensorId(b: WasmBackendLike, t: tf.TensorInfo): number {
  const rec = b.dataIdMap.get(t.dataId);
  if (!rec) throw new Error('wasm kernel: tensor is not on the wasm backend');
  return rec.id;
}

export function f32(b: WasmBackendLike, t: tf.TensorInfo): Float32Array {
  if (t.dtype !== 'float32') throw new Error(`wasm kernel: expected float32, got ${t.dtype}`);
  return b.typedArrayFromHeap(t) as Float32Array;
}

/** Frees intermediates a kernel made (refCount 1, so this releases their heap memory). */
export function release(b: WasmBackendLike, ...infos: tf.TensorInfo[]): void {
  for (const t of infos) b.disposeData(t.dataId);
}

/**
 * Runs `use` with `count` float64 values on the heap, zeroed: the per-channel accumulators
 * the SIMD passes add into (they take heap offsets). `use` must take every other view after
 * this allocation (it may grow the heap); the scratch is freed when it returns or throws.
 */
export function withFloat64Scratch<T>(b: WasmBackendLike, count: number, use: (acc: Float64Array) => T): T {
  const scratch = b.makeOutput([2 * count], 'float32');
  try {
    const s = b.typedArrayFromHeap(scratch);
    return use(new Float64Array(s.buffer, s.byteOffset, count).fill(0));
  } finally {
    release(b, scratch);
  }
}

/**
 * The native kernels as tfjs-backend-wasm registered them, captured before we replace
 * any, so a replacement can still call the original (e.g. BatchMatMul after a transpose).
 */
const natives = new Map<string, tf.KernelConfig>();

export function captureNative(name: string): tf.KernelConfig | undefined {
  if (!natives.has(name)) {
    const k = tf.getKernel(name, 'wasm');
    if (k) natives.set(name, k);
  }
  return natives.get(name);
}

export function runNative(
  name: string,
  b: WasmBackendLike,
  inputs: tf.NamedTensorInfoMap,
  attrs: tf.NamedAttrMap = {},
): tf.TensorInfo {
  const k = captureNative(name);
  if (!k) throw new Error(`wasm kernel: native ${name} is not registered`);
  return k.kernelFunc({ inputs, attrs, backend: b as unknown as tf.KernelBackend }) as tf.TensorInfo;
}

export function transposeNative(b: WasmBackendLike, x: tf.TensorInfo, perm: number[]): tf.TensorInfo {
  return runNative(tf.Transpose, b, { x }, { perm });
}

type Conv2DFn = (...args: number[]) => void;
const conv2dByBackend = new WeakMap<object, Conv2DFn>();

export interface RawConv2D {
  x: tf.TensorInfo;
  batch: number;
  inHeight: number;
  inWidth: number;
  inChannels: number;
  /** [kh, kw, inChannels, outChannels], channels-last like tfjs. */
  filter: tf.TensorInfo;
  filterHeight: number;
  filterWidth: number;
  outChannels: number;
  /** Explicit paddings (never negative), top/right/bottom/left. */
  pad: [number, number, number, number];
  dilation: [number, number];
  stride: [number, number];
  out: tf.TensorInfo;
}

/**
 * The compiled XNNPACK convolution (`_Conv2D`), called with explicit padding and dilation,
 * which lets a backward pass be one forward convolution. The C++ side caches the packed
 * operator per filter id and drops it when that filter tensor is disposed.
 */
export function conv2dRaw(b: WasmBackendLike, c: RawConv2D): void {
  let fn = conv2dByBackend.get(b);
  if (!fn) {
    fn = b.wasm.cwrap('Conv2D', null, new Array<string>(19).fill('number'));
    conv2dByBackend.set(b, fn);
  }
  const [top, right, bottom, left] = c.pad;
  fn(
    tensorId(b, c.x), c.batch, c.inHeight, c.inWidth,
    tensorId(b, c.filter), c.filterHeight, c.filterWidth,
    top, right, bottom, left, 0 /* isSamePad */,
    c.dilation[0], c.dilation[1], c.stride[0], c.stride[1],
    c.inChannels, c.outChannels, tensorId(b, c.out),
  );
}

/** Bytes of the per-pixel data one tile of output pixels holds: small enough to stay in L1. */
export const TILE_BYTES = 16 * 1024;

export type RowTile = ReturnType<typeof tileAt>;

/**
 * The tiles the direct convolution kernels (conv2d.ts, conv2dBackprop.ts) walk: `n` images
 * of `rows` rows of `rowBytes` each, as groups of whole images when several fit in
 * `tileBytes`, else as bands of one image's rows spread evenly (13 rows as 3+3+3+4, not 4+4+4+1);
 * numbered so that threads can share them (convTiles.ts).
 */
export function* rowTiles(n: number, rows: number, rowBytes: number, tileBytes = TILE_BYTES): Generator<RowTile> {
  const layout = tileLayout(n, rows, rowBytes, tileBytes);
  const count = tileCount(n, layout);
  for (let t = 0; t < count; t++) yield tileAt(t, n, rows, layout);
}
