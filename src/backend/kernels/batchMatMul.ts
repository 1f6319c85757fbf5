/**
 * BatchMatMul with a transposed operand: the native kernel then leaves XNNPACK for a
 * slow path, so transpose the operand first (native Transpose) and multiply untransposed.
 */
import * as tf from '@tensorflow/tfjs';
import { asWasm, captureNative, release, runNative, transposeNative } from './heap.js';

function swapLastTwo(rank: number): number[] {
  const perm = Array.from({ length: rank }, (_, i) => i);
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
  return perm;
}

function batchMatMul({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const b = asWasm(backend);
  const { a, b: bm } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
  const aT = transposeA ? transposeNative(b, a, swapLastTwo(a.shape.length)) : a;
  const bT = transposeB ? transposeNative(b, bm, swapLastTwo(bm.shape.length)) : bm;
  const out = runNative(tf.BatchMatMul, b, { a: aT, b: bT }, { transposeA: false, transposeB: false });
  if (transposeA) release(b, aT);
  if (transposeB) release(b, bT);
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
