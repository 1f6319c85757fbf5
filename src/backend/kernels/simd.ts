/**
 * A few loops in wasm SIMD that run on the wasm backend's own heap (the module imports the
 * backend's WebAssembly.Memory, so pointers are the byte offsets of tensors on that heap).
 * JS ran them at 1-3 ns per element (MaxPoolGrad's data-dependent branches: ~20 ns per
 * window); 4 float32 lanes with no branches take a fraction of that. Per training step of
 * the optimized model they replaced ~45 ms of JS loops with ~12 ms.
 *
 * The loops are C with wasm_simd128.h intrinsics in ./simd/, one file per kind, each loop
 * documented there with what it computes:
 *
 *   pool.c         pool2x2Row, pool2x2ReluRow, anyNaNRuns   MaxPoolGrad, 2x2 windows, stride 2,
 *                  plain and with a ReLU's gradient and bias sum folded in (maxPoolGrad.ts)
 *   channels.c     bnGradRows (BatchNorm's backward, float64 sums), sumRows (Sum / Mean),
 *                  sumSqRows, affineRows, addAffineRows (FusedBatchNorm, SyncBatchNorm),
 *                  biasReluRows, reluBiasGradRows (Conv2D + bias + ReLU forward epilogue and
 *                  backward)    (gradients.ts, reduce.ts, batchNorm.ts, syncBn.ts, conv2d.ts)
 *   elementwise.c  reluGrad, squareGrad                                     (gradients.ts)
 *   im2col.c       gatherRuns, addRun: im2col / col2im                  (conv2dBackprop.ts)
 *   adam.c         adamUpdate, adamUpdate2: Adam's step for one variable (with two
 *                  replicas' gradients)                                          (adam.ts)
 *   conv.c         convRows16x2/4x2 (Conv2D), filterGrad16x2/16x1/4x2/4x1
 *                  (Conv2DBackpropFilter), inputGrad16x2/4x2 (Conv2DBackpropInput), all
 *                  without im2col                           (conv2d.ts, conv2dBackprop.ts)
 *   gemm.c         gemm16x2, gemm4x4: BatchMatMul, A read through strides  (batchMatMul.ts)
 *
 * `npm run build:kernels` (scripts/build-kernels.js; clang-19 and lld-19) compiles them into
 * the committed modules beside them, so installing svhn needs no compiler: with and without
 * relaxed SIMD's fused multiply-add, each importing the memory plain or shared (the threaded
 * build). test/backend/kernelsBuild.test.ts rebuilds them where clang-19 is installed and
 * checks the bytes match; each caller is tested against the cpu backend
 * (test/backend/simd.test.ts and others). The loops run on the calling thread. Where the
 * runtime lacks wasm SIMD, `simdKernels()` returns undefined and callers keep their JS loops.
 * Where the optional native addon is built (native.ts), the 16-channel conv and gemm loops
 * run natively, 512 or 256 bits wide, with the same results.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { ioError } from '../../errors.js';
import type { WasmBackendLike } from './heap.js';
import { bindNativeKernels, nativeKernels } from './native.js';

/** WebAssembly.validate (the global, which the ES2022 lib this project compiles with does not declare). */
export function wasmValidates(bytes: Uint8Array): boolean {
  return (globalThis as unknown as { WebAssembly: { validate(b: Uint8Array): boolean } }).WebAssembly.validate(bytes);
}

/**
 * A module of one function, f32x4.relaxed_madd of its three v128 parameters: it validates
 * where the V8 running us has relaxed SIMD on.
 */
const RELAXED_SIMD_PROBE = Uint8Array.from([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // \0asm, version 1
  0x01, 0x08, 0x01, 0x60, 0x03, 0x7b, 0x7b, 0x7b, 0x01, 0x7b, // types: (v128, v128, v128) -> v128
  0x03, 0x02, 0x01, 0x00, // one function of that type
  0x0a, 0x0d, 0x01, 0x0b, 0x00, 0x20, 0x00, 0x20, 0x01, 0x20, 0x02, 0xfd, 0x85, 0x02, 0x0b, // local.get 0 1 2, f32x4.relaxed_madd, end
]);

/**
 * Fused multiply-add for the convolution and matrix loops: relaxed SIMD's f32x4.relaxed_madd.
 * Node 20's V8 (11.3) has it behind a flag, set here before the module compiles; Node 22's
 * and 24's ship it on and print an error for the flag, so it is set only where the probe
 * does not validate without it. A V8 without relaxed SIMD at all keeps a separate multiply
 * and add, as SVHN_WASM_FMA=0 does.
 */
function useFma(): boolean {
  if (process.env['SVHN_WASM_FMA'] === '0') return false;
  return enableRelaxedSimd();
}

/** Turns relaxed SIMD on where this V8 has it behind a flag; true when modules may use it. */
export function enableRelaxedSimd(): boolean {
  if (wasmValidates(RELAXED_SIMD_PROBE)) return true;
  v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  return wasmValidates(RELAXED_SIMD_PROBE);
}

/** The modules' folder: the same from src/backend/kernels (tests) and dist/backend/kernels (the CLI). */
const MODULE_DIR = new URL('../../../src/backend/kernels/simd/', import.meta.url);

const moduleCache = new Map<string, Uint8Array>();

/** The compiled module (scripts/build-kernels.js names them), read once per process. */
function moduleBytes(shared: boolean, fma: boolean): Uint8Array {
  const file = fileURLToPath(new URL(`kernels${fma ? '-fma' : ''}${shared ? '-shared' : ''}.wasm`, MODULE_DIR));
  let bytes = moduleCache.get(file);
  if (!bytes) {
    try {
      bytes = new Uint8Array(readFileSync(file));
    } catch (e) {
      throw ioError(file, "read svhn's wasm kernels", e);
    }
    moduleCache.set(file, bytes);
  }
  return bytes;
}

/** Byte offsets and counts, see filterGrad in simd/conv.c. */
export type FilterGradArgs = [
  x: number, dy: number, out: number, nk: number, outStep: number, imgs: number, rows: number, cols: number,
  xColStep: number, xRowStep: number, xImgStep: number, dyStep: number,
];

/** Byte offsets and counts, see inputGrad in simd/conv.c. */
export type InputGradArgs = [
  dy: number, w: number, dx: number, dyStep: number, wStep: number, imgs: number, rows: number, cols: number,
  dxColStep: number, dxRowStep: number, dxImgStep: number,
];

/** Byte offsets and counts, see convRows in simd/conv.c. */
export type ConvRowsArgs = [
  x: number, w: number, y: number, segBytes: number, wStep: number, imgs: number, rows: number, cols: number,
  xColStep: number, xRowStep: number, xImgStep: number, yStep: number, kh: number,
];

/** Byte offsets and counts, see simd/gemm.c. */
export type GemmArgs = [
  a: number, b: number, c: number, rows: number, blocks: number, k: number,
  aRowStep: number, aColStep: number, bRowStep: number, cRowStep: number, cColStep: number,
];

/**
 * Where channel c's first value sits in the float64 pair layout bnGradRows and sumSqRows
 * write (per 4 channels: 4 of the first sum, then 4 of the second); the second is at + 4.
 */
export function pairSlot(c: number): number {
  return (c >> 2) * 8 + (c & 3);
}

export interface SimdKernels {
  pool2x2Row(x: number, g: number, dx: number, ow: number, chBytes: number, rowBytes: number): void;
  bnGradRows(dy: number, x: number, dx: number, end: number, rowBytes: number, k: number, mean: number, acc: number): void;
  sumRows(x: number, end: number, rowBytes: number, acc: number): void;
  reluGrad(dy: number, x: number, out: number, end: number): void;
  squareGrad(dy: number, x: number, out: number, end: number): void;
  addRun(src: number, dst: number, bytes: number): void;
  affineRows(x: number, out: number, end: number, rowBytes: number, k: number, a: number): void;
  gatherRuns(src: number, dst: number, planes: number, rows: number, runBytes: number, rowStride: number, planeStride: number): void;
  filterGrad16x2(...args: FilterGradArgs): void;
  filterGrad16x1(...args: FilterGradArgs): void;
  filterGrad4x2(...args: FilterGradArgs): void;
  filterGrad4x1(...args: FilterGradArgs): void;
  sumSqRows(x: number, end: number, rowBytes: number, acc: number): void;
  addAffineRows(x: number, out: number, end: number, rowBytes: number, k: number, a: number): void;
  inputGrad16x2(...args: InputGradArgs): void;
  inputGrad4x2(...args: InputGradArgs): void;
  convRows16x2(...args: ConvRowsArgs): void;
  convRows4x2(...args: ConvRowsArgs): void;
  gemm16x2(...args: GemmArgs): void;
  gemm4x4(...args: GemmArgs): void;
  biasReluRows(y: number, end: number, rowBytes: number, bias: number): void;
  reluBiasGradRows(dy: number, y: number, out: number, end: number, rowBytes: number, acc: number): void;
  pool2x2ReluRow(x: number, g: number, dx: number, ow: number, chBytes: number, rowBytes: number, acc: number, nan: number): void;
  anyNaNRuns(x: number, end: number, step: number, runBytes: number, nan: number): void;
  adamUpdate(
    value: number, m: number, v: number, g: number, outValue: number, outM: number, outV: number, bytes: number,
    b1: number, c1: number, b2: number, c2: number, oma1: number, oma2: number, eps: number, negLr: number,
  ): void;
  adamUpdate2(
    value: number, m: number, v: number, g: number, g2: number, outValue: number, outM: number, outV: number, bytes: number,
    w: number, w2: number, b1: number, c1: number, b2: number, c2: number, oma1: number, oma2: number, eps: number, negLr: number,
  ): void;
}

/** The part of the WebAssembly global used here (this project's lib has no DOM types). */
interface WasmApi {
  Memory: new (...args: never[]) => object;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: object };
  validate(bytes: Uint8Array): boolean;
}
const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** The backend's WebAssembly.Memory: the single-threaded build exports it, the threaded one creates it (wasmMemory). */
export function wasmMemory(b: WasmBackendLike): unknown {
  const module = b.wasm as unknown as { asm?: { memory?: unknown }; wasmMemory?: unknown };
  return module.asm?.memory ?? module.wasmMemory;
}

/** Whether `memory` is shared between threads (the threaded build's heap). */
export function isSharedMemory(memory: unknown): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && (memory as { buffer?: unknown } | undefined)?.buffer instanceof SharedArrayBuffer;
}

const byBackend = new WeakMap<object, SimdKernels | null>();

/** The SIMD kernels bound to this backend's heap, or undefined without wasm SIMD. */
export function simdKernels(b: WasmBackendLike): SimdKernels | undefined {
  let k = byBackend.get(b);
  if (k === undefined) {
    k = simdKernelsOn(wasmMemory(b)) ?? null;
    byBackend.set(b, k);
  }
  return k ?? undefined;
}

/**
 * The SIMD kernels instantiated on `memory` (a WebAssembly.Memory, shared or not), or
 * undefined without wasm SIMD or where the module's import does not match it. A convolution
 * team's helper thread (convWorker.ts) builds its own on the threaded build's shared heap.
 */
export function simdKernelsOn(memory: unknown): SimdKernels | undefined {
  const shared = isSharedMemory(memory);
  const fmaBytes = useFma() ? moduleBytes(shared, true) : undefined;
  const bytes = fmaBytes && WA.validate(fmaBytes) ? fmaBytes : moduleBytes(shared, false);
  if (!(memory instanceof WA.Memory) || !WA.validate(bytes)) return undefined;
  let exports: SimdKernels;
  try {
    exports = new WA.Instance(new WA.Module(bytes), { env: { memory } }).exports as unknown as SimdKernels;
  } catch {
    return undefined; // a memory this import does not match: stay in JS
  }
  // The 16-channel convolution and matrix loops natively where the addon is built
  // (native.ts): the same bits, computed as the module chosen above computes them.
  const native = nativeKernels(bytes === fmaBytes);
  return native ? { ...exports, ...bindNativeKernels(native, memory as { buffer: ArrayBufferLike }) } : exports;
}
