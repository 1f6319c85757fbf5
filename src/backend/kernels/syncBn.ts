/**
 * The per-channel passes of SyncBatchNormalization (models/syncBatchNorm.ts): on the wasm
 * backend, one SIMD pass each over the activations (simd/channels.c sumSqRows, bnGradRows,
 * addAffineRows) instead of 3 to 6 broadcast ops; elsewhere (cpu, tensorflow, channels not
 * a multiple of 4) the same arithmetic as tf ops. Sums are float64 on wasm.
 */
import * as tf from '@tensorflow/tfjs';
import { activeWasm, bnGradRowsPass, wrap } from './gradients.js';
import { release, withFloat64Scratch } from './heap.js';
import { pairSlot, simdKernels } from './simd.js';

/** Per-channel sums of x and x*x over every axis but the last. */
export function channelSums(x: tf.Tensor): { sum: Float64Array; sumSq: Float64Array } {
  const channels = x.shape[x.rank - 1]!;
  const b = channels % 4 === 0 && x.dtype === 'float32' ? activeWasm(x) : undefined;
  const simd = b && simdKernels(b);
  if (!b || !simd) {
    const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
    const [sum, sumSq] = tf.tidy(() => [tf.sum(x, axes).dataSync(), tf.sum(tf.square(x), axes).dataSync()]);
    return { sum: Float64Array.from(sum!), sumSq: Float64Array.from(sumSq!) };
  }
  return withFloat64Scratch(b, 2 * channels, (acc) => {
    const xv = b.typedArrayFromHeap(x);
    simd.sumSqRows(xv.byteOffset, xv.byteOffset + xv.byteLength, 4 * channels, acc.byteOffset);
    const sum = new Float64Array(channels);
    const sumSq = new Float64Array(channels);
    for (let c = 0; c < channels; c++) {
      sum[c] = acc[pairSlot(c)]!;
      sumSq[c] = acc[pairSlot(c) + 4]!;
    }
    return { sum, sumSq };
  });
}

/** Per-channel coefficients of dx's second part: dx = dy * k1 + x * k2 + k3. */
export interface BackwardCoefficients {
  k2: Float32Array;
  k3: Float32Array;
}

/**
 * BatchNorm's input gradient in two passes: sums of dy and dy * (x - mean) per channel
 * (with dx = dy * k1 written on the way), then `finish` turns the sums (after adding them
 * over replicas) into k2, k3 and dx += x * k2 + k3. Returns dx (a new tensor) and the local sums.
 */
export function batchNormBackward(
  dy: tf.Tensor, x: tf.Tensor, mean: Float64Array, k1: Float32Array,
  finish: (sumDy: Float64Array, sumDyD: Float64Array) => BackwardCoefficients,
): { dx: tf.Tensor; sumDy: Float64Array; sumDyD: Float64Array } {
  const channels = k1.length;
  const b = channels % 4 === 0 && x.dtype === 'float32' && dy.dtype === 'float32' && tf.util.arraysEqual(x.shape, dy.shape)
    ? activeWasm(dy, x) : undefined;
  const simd = b && simdKernels(b);
  if (!b || !simd) {
    const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
    const [dySums, dyDSums] = tf.tidy(() => [
      tf.sum(dy, axes).dataSync() as Float32Array,
      tf.sum(tf.mul(dy, tf.sub(x, tf.tensor1d(Float32Array.from(mean)))), axes).dataSync() as Float32Array,
    ]);
    const sumDy = Float64Array.from(dySums!);
    const sumDyD = Float64Array.from(dyDSums!);
    const { k2, k3 } = finish(sumDy, sumDyD);
    const dx = tf.tidy(() => tf.add(tf.mul(dy, tf.tensor1d(k1)), tf.add(tf.mul(x, tf.tensor1d(k2)), tf.tensor1d(k3))));
    return { dx, sumDy, sumDyD };
  }
  const dxInfo = b.makeOutput(x.shape.slice(), 'float32');
  try {
    const { sumDy, sumDyD } = bnGradRowsPass(b, simd, dy, x, dxInfo, k1, mean);
    const { k2, k3 } = finish(sumDy, sumDyD); // may wait for the other replicas
    const scratch = b.makeOutput([2 * channels], 'float32'); // k2 then k3
    try {
      const kv = b.typedArrayFromHeap(scratch) as Float32Array; // views after every allocation
      kv.set(k2);
      kv.set(k3, channels);
      const xv = b.typedArrayFromHeap(x);
      simd.addAffineRows(xv.byteOffset, b.typedArrayFromHeap(dxInfo).byteOffset, xv.byteOffset + xv.byteLength, 4 * channels,
        kv.byteOffset, kv.byteOffset + 4 * channels);
    } finally {
      release(b, scratch);
    }
    return { dx: wrap(b, dxInfo), sumDy, sumDyD };
  } catch (e) {
    release(b, dxInfo);
    throw e;
  }
}
