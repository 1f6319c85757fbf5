/**
 * BatchMatMul on wasm: the Dense layers' products while training (dense_1 forward, unfused
 * under gradients, and both gradients dx = dy x W^T, dW = x^T x dy).
 *
 * With one matrix per operand, a wasm SIMD loop (simd/gemm.c) computes C = A x B with A
 * read through strides, so a transposed A costs nothing; B must be row-major with N a
 * multiple of 4. When B is the transposed one it computes C^T = B^T x A^T instead (A^T is a
 * as stored under transposeA, else a native transpose of a, small in the dx case) and
 * stores C^T transposed, into C: dx of the baseline's dense_1 transposes dy [32, 128],
 * never W [2304, 128]. Native XNNPACK repacked W on every call (it changes each step) and
 * went through a Transpose for each transposed operand. Per training step of 64, baseline
 * model (dense_1 32 x 2304 x 128 per 32 images, ~39 GFLOP/s): BatchMatMul ~7.9 -> ~3.1 ms on
 * one thread. The threaded build runs it on the calling thread too (XNNPACK would use the
 * pool, and still took ~12 ms against ~3 in wasm2t).
 *
 * Batches of matrices, N and M both not multiples of 4, other dtypes and runtimes without
 * the SIMD module: a native Transpose of each transposed operand (a transposed operand
 * misses XNNPACK's fast path), then the native kernel.
 */
import * as tf from '@tensorflow/tfjs';
import { asWasm, captureNative, f32, release, runNative, transposeNative, type WasmBackendLike } from './heap.js';
import { simdKernels, type SimdKernels } from './simd.js';

function swapLastTwo(rank: number): number[] {
  const perm = Array.from({ length: rank }, (_, i) => i);
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
  return perm;
}

function batchMatMul({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const b = asWasm(backend);
  const { a, b: bm } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
  const simd = simdKernels(b);
  if (simd) {
    const out = matMulSimd(b, simd, a, bm, transposeA, transposeB);
    if (out) return out;
  }
  const aT = transposeA ? transposeNative(b, a, swapLastTwo(a.shape.length)) : a;
  const bT = transposeB ? transposeNative(b, bm, swapLastTwo(bm.shape.length)) : bm;
  const out = runNative(tf.BatchMatMul, b, { a: aT, b: bT }, { transposeA: false, transposeB: false });
  if (transposeA) release(b, aT);
  if (transposeB) release(b, bT);
  return out;
}

/** A 2-D float32 matrix as stored: rows x cols, row-major. */
interface Stored {
  t: tf.TensorInfo;
  rows: number;
  cols: number;
}

/**
 * C = op(a) x op(b) by simd/gemm.c for one matrix per operand, or undefined where the
 * native path must run. A transposed copy of the right factor is released here.
 */
function matMulSimd(
  b: WasmBackendLike, simd: SimdKernels, a: tf.TensorInfo, bm: tf.TensorInfo, transposeA: boolean, transposeB: boolean,
): tf.TensorInfo | undefined {
  const ra = a.shape.length;
  const rb = bm.shape.length;
  const single = (t: tf.TensorInfo) => t.shape.slice(0, -2).every((d) => d === 1);
  if (a.dtype !== 'float32' || bm.dtype !== 'float32' || !single(a) || !single(bm)) return undefined;
  const sa: Stored = { t: a, rows: a.shape[ra - 2], cols: a.shape[ra - 1] };
  const sb: Stored = { t: bm, rows: bm.shape[rb - 2], cols: bm.shape[rb - 1] };
  const [m, k] = transposeA ? [sa.cols, sa.rows] : [sa.rows, sa.cols];
  const n = transposeB ? sb.rows : sb.cols;
  const outShape = [...tf.backend_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), bm.shape.slice(0, -2)), m, n];
  if (k === 0 || m === 0 || n === 0) return undefined;

  // C [m, n] = A x B with B row-major [k, n]; or C^T = B^T x A^T with A^T row-major [k, m],
  // stored transposed into C. Direct unless B is the transposed one and C^T's rows are
  // whole vectors.
  const direct = n % 4 === 0 && (!transposeB || m % 4 !== 0);
  if (!direct && m % 4 !== 0) return undefined;
  // The left factor in strides over its stored matrix; the right one row-major, stored or copied.
  const [left, leftT, right, rightT] = direct ? [sa, transposeA, sb, transposeB] : [sb, !transposeB, sa, !transposeA];
  const rightCopy = rightT ? transposeNative(b, { ...right.t, shape: [right.rows, right.cols] }, [1, 0]) : undefined;
  const out = b.makeOutput(outShape, 'float32');
  // Views after the last allocation (an allocation may move the heap).
  const leftAt = f32(b, left.t).byteOffset;
  const rightAt = f32(b, rightCopy ?? right.t).byteOffset;
  const outAt = f32(b, out).byteOffset;
  // left(r, kk): row-major [rows, k] unless stored as its transpose [k, rows].
  const [rowStep, colStep] = leftT ? [4, left.cols * 4] : [left.cols * 4, 4];
  // The product's rows, columns, and their steps in out (C^T: a column of C per row).
  const [rows, cols, outRowStep, outColStep] = direct ? [m, n, n * 4, 4] : [n, m, 4, n * 4];
  const wide = Math.floor(cols / 16);
  const steps = [k, rowStep, colStep, cols * 4, outRowStep, outColStep] as const;
  if (wide > 0) simd.gemm16x2(leftAt, rightAt, outAt, rows, wide, ...steps);
  if (cols % 16 > 0) simd.gemm4x4(leftAt, rightAt + wide * 64, outAt + wide * 16 * outColStep, rows, (cols % 16) / 4, ...steps);
  if (rightCopy) release(b, rightCopy);
  return out;
}

/** Built at registration: it wraps the native kernel, whose setup (cwrap) it must run. */
export function batchMatMulConfig(): tf.KernelConfig {
  const native = captureNative(tf.BatchMatMul);
  return {
    kernelName: tf.BatchMatMul,
    backendName: 'wasm',
    setupFunc: native?.setupFunc,
    kernelFunc: batchMatMul,
  };
}
