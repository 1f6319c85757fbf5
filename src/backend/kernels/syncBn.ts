/**
 * The per-channel passes of SyncBatchNormalization (models/syncBatchNorm.ts): on the wasm
 * backend, one SIMD pass each over the activations (simd.ts sumSqRows, bnGradRows,
 * addAffineRows) instead of 3 to 6 broadcast ops; elsewhere (cpu, tensorflow, channels not
 * a multiple of 4) the same arithmetic as tf ops. Sums are float64 on wasm.
 */
import * as tf from '@tensorflow/tfjs';
import { activeWasm, wrap } from './gradients.js';
import { release } from './heap.js';
import { simdKernels } from './simd.js';

/** The float64 layout simd.ts uses for per-channel pairs: per 4 channels, 4 of each. */
const pairAt = (c: number) => (c >> 2) * 8 + (c & 3);

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
  const scratch = b.makeOutput([4 * channels], 'float32'); // 2C float64
  try {
    const acc = b.typedArrayFromHeap(scratch) as Float32Array;
    const acc64 = new Float64Array(acc.buffer, acc.byteOffset, 2 * channels).fill(0);
    const xv = b.typedArrayFromHeap(x);
    simd.sumSqRows(xv.byteOffset, xv.byteOffset + xv.byteLength, 4 * channels, acc.byteOffset);
    const sum = new Float64Array(channels);
    const sumSq = new Float64Array(channels);
    for (let c = 0; c < channels; c++) {
      sum[c] = acc64[pairAt(c)]!;
      sumSq[c] = acc64[pairAt(c) + 4]!;
    }
    return { sum, sumSq };
  } finally {
    release(b, scratch);
  }
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
  // Scratch: k float32[C], mean float64[C], sums 2C float64, then k2, k3 float32[C] (16-byte aligned: C % 4 == 0).
  const scratch = b.makeOutput([9 * channels], 'float32');
  try {
    const base = b.typedArrayFromHeap(scratch).byteOffset; // views after every allocation
    const heap = b.typedArrayFromHeap(scratch).buffer;
    new Float32Array(heap, base, channels).set(k1);
    new Float64Array(heap, base + 4 * channels, channels).set(mean);
    const acc = new Float64Array(heap, base + 12 * channels, 2 * channels).fill(0);
    const dyv = b.typedArrayFromHeap(dy);
    const xv = b.typedArrayFromHeap(x);
    const dxv = b.typedArrayFromHeap(dxInfo);
    simd.bnGradRows(dyv.byteOffset, xv.byteOffset, dxv.byteOffset, dyv.byteOffset + dyv.byteLength, 4 * channels, base, base + 4 * channels, base + 12 * channels);
    const sumDy = new Float64Array(channels);
    const sumDyD = new Float64Array(channels);
    for (let c = 0; c < channels; c++) {
      sumDy[c] = acc[pairAt(c)]!;
      sumDyD[c] = acc[pairAt(c) + 4]!;
    }
    const { k2, k3 } = finish(sumDy, sumDyD); // may wait for the other replicas
    const kPtr = base + 28 * channels;
    new Float32Array(heap, kPtr, channels).set(k2);
    new Float32Array(heap, kPtr + 4 * channels, channels).set(k3);
    simd.addAffineRows(xv.byteOffset, dxv.byteOffset, xv.byteOffset + xv.byteLength, 4 * channels, kPtr, kPtr + 4 * channels);
    return { dx: wrap(b, dxInfo), sumDy, sumDyD };
  } catch (e) {
    release(b, dxInfo);
    throw e;
  } finally {
    release(b, scratch);
  }
}
