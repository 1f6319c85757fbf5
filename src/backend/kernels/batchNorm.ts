/**
 * FusedBatchNorm (forward) for the wasm backend with per-channel parameters, in one JS pass:
 * out = offset + (x - mean) * scale / sqrt(variance + eps), in float64 like the cpu
 * backend. The native kernel took ~6 ms per call on the first BatchNorm ([64,30,30,32]).
 * Parameters that are not per-channel (or scalar) go to the native kernel.
 */
import * as tf from '@tensorflow/tfjs';
import { asWasm, captureNative, runNative } from './heap.js';

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
  const out = b.makeOutput(x!.shape.slice(), 'float32');
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
  // Per channel: (x - m) * (s / sqrt(v + eps)) + off.
  const mul = new Float64Array(channels);
  for (let c = 0; c < channels; c++) mul[c] = s[c] / Math.sqrt(v[c] + varianceEpsilon);
  const xs = b.typedArrayFromHeap(x!) as Float32Array;
  const dst = b.typedArrayFromHeap(out) as Float32Array;
  for (let base = 0; base < xs.length; base += channels) {
    for (let c = 0; c < channels; c++) dst[base + c] = off[c] + (xs[base + c] - m[c]) * mul[c];
  }
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
