/**
 * FusedBatchNorm (forward) for the wasm backend with per-channel parameters:
 * out = offset + (x - mean) * scale / sqrt(variance + eps) as x * k + a, the per-channel k
 * and a folded in float64, applied in one wasm SIMD pass (simd/channels.c affineRows, channels a multiple of
 * 4: ~1 ms on the first BatchNorm's [64,30,30,32], where the native kernel took ~9) or with
 * the native broadcast Multiply and Add (~3 ms). Parameters that are not per-channel (or
 * scalar) go to the native kernel.
 */
import * as tf from '@tensorflow/tfjs';
import { asWasm, captureNative, release, runNative } from './heap.js';
import { simdKernels } from './simd.js';

/** Per-channel values of a parameter: size 1 (broadcast) or C with all other dims 1. */
function perChannel(t: tf.TensorInfo | undefined, channels: number): boolean {
  if (!t) return true;
  const size = tf.util.sizeFromShape(t.shape);
  if (size === 1) return true;
  return size === channels && t.shape[t.shape.length - 1] === channels;
}

function fusedBatchNorm({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const b = asWasm(backend);
  const { x, mean, variance, offset, scale } = inputs as Record<string, tf.TensorInfo | undefined>;
  const { varianceEpsilon } = attrs as unknown as { varianceEpsilon: number };
  const channels = x!.shape[x!.shape.length - 1] ?? 1;
  const params = [mean, variance, offset, scale];
  if (x!.dtype !== 'float32' || x!.shape.length === 0 || !params.every((p) => perChannel(p, channels))) {
    return runNative(tf.FusedBatchNorm, b, inputs, attrs);
  }
  const read = (t: tf.TensorInfo | undefined, fallback: number): Float64Array => {
    const v = new Float64Array(channels).fill(fallback);
    if (!t) return v;
    const src = b.typedArrayFromHeap(t);
    for (let c = 0; c < channels; c++) v[c] = src.length === 1 ? src[0] : src[c];
    return v;
  };
  const m = read(mean, 0);
  const off = read(offset, 0);
  const s = read(scale, 1);
  const v = read(variance, 1);
  // out = x * k + a per channel, k = scale / sqrt(variance + eps), a = offset - mean * k:
  // k and a in float64, then two native broadcast ops (vectorised; ~2 ms on [64,30,30,32]).
  const k = b.makeOutput([channels], 'float32');
  const a = b.makeOutput([channels], 'float32');
  const kv = b.typedArrayFromHeap(k);
  const av = b.typedArrayFromHeap(a);
  for (let c = 0; c < channels; c++) {
    const kc = s[c] / Math.sqrt(v[c] + varianceEpsilon);
    kv[c] = kc;
    av[c] = off[c] - m[c] * kc;
  }
  const simd = channels % 4 === 0 ? simdKernels(b) : undefined;
  if (simd) {
    // One SIMD pass instead of two native ones; k and a adjacent so one offset walks both.
    const ka = b.makeOutput([2 * channels], 'float32');
    const out = b.makeOutput(x!.shape.slice(), 'float32');
    const kaView = b.typedArrayFromHeap(ka); // views after the allocations
    kaView.set(b.typedArrayFromHeap(k));
    kaView.set(b.typedArrayFromHeap(a), channels);
    const xv = b.typedArrayFromHeap(x!);
    simd.affineRows(xv.byteOffset, b.typedArrayFromHeap(out).byteOffset, xv.byteOffset + xv.byteLength, 4 * channels,
      kaView.byteOffset, kaView.byteOffset + 4 * channels);
    release(b, k, a, ka);
    return out;
  }
  const scaled = runNative(tf.Multiply, b, { a: x!, b: k });
  const out = runNative(tf.Add, b, { a: scaled, b: a });
  release(b, k, a, scaled);
  return out;
}

/** Built at registration: it can fall back to the native kernel, whose setup it must run. */
export function fusedBatchNormConfig(): tf.KernelConfig {
  const native = captureNative(tf.FusedBatchNorm);
  return {
    kernelName: tf.FusedBatchNorm,
    backendName: 'wasm',
    setupFunc: native?.setupFunc,
    kernelFunc: fusedBatchNorm,
  };
}
