/**
 * Cheaper gradients for BatchNormalization's training chain on the wasm backend. tfjs-layers
 * computes tf.moments (Mean, Sub, Square, Mean) then FusedBatchNorm; the gradients tfjs-core
 * registers for them are compositions of broadcast ops over the whole [N,H,W,C] tensor
 * (~26 full-size passes per BatchNorm: ~60 ms a step on the optimized model). Here:
 *
 * | gradient       | tfjs-core                                 | wasm (this file)               |
 * | -------------- | ----------------------------------------- | ------------------------------ |
 * | FusedBatchNorm | ~15 full-size ops (sub, tiles, muls, sums)  | one pass: dx + float64 sums    |
 * | Mean           | dy * ones(x.shape) / n: fill, mul, div      | dy / n, then Tile (block copy) |
 * | Sum            | dy * ones(x.shape): fill, mul               | Tile (block copy)              |
 * | Relu, Square   | step + mul; mul(x, 2) + mul                 | one SIMD pass (simd/*.c)       |
 *
 * And the backward pass of the conv layers' fused relu(conv2d(x, w) + b) (models/fusedConv.ts)
 * up to the convolution, Relu's gradient and the bias's Sum in one pass: SvhnReluBiasGrad.
 *
 * The chain itself is unchanged (moments' gradients still flow through mean and variance),
 * so these are the same derivatives, rounded differently only where float64 replaces float32
 * (per-channel sums); the Mean, Sum, Relu and Square ones are bit-identical. The passes run
 * in wasm SIMD (simd.ts, simd/*.c) where channels are a multiple of 4, else in JS. Gradients are global in
 * tfjs, not per backend: each replacement delegates to tfjs-core's original unless the
 * active backend is wasm, so the cpu backend stays an independent reference.
 */
import * as tf from '@tensorflow/tfjs';
import { asWasm, release, withFloat64Scratch, type WasmBackendLike } from './heap.js';
import { shareBuffer } from './identity.js';
import { recordedBiasSums } from './reluOutputs.js';
import { pairSlot, simdKernels, type SimdKernels } from './simd.js';

type GradFunc = tf.GradConfig['gradFunc'];
type Grads = ReturnType<GradFunc>;

/** The wasm backend when it is active and holds all of `tensors`, else undefined. */
export function activeWasm(...tensors: Array<tf.Tensor | undefined>): WasmBackendLike | undefined {
  if (tf.getBackend() !== 'wasm') return undefined;
  const b = asWasm(tf.backend());
  return tensors.every((t) => !t || b.dataIdMap.get(t.dataId)) ? b : undefined;
}

/** A tensor the engine tracks (tidy, dispose, numTensors) around a heap buffer we wrote. */
export function wrap(b: WasmBackendLike, info: tf.TensorInfo): tf.Tensor {
  return tf.engine().makeTensorFromTensorInfo(info, b as unknown as tf.KernelBackend);
}

function readChannels(b: WasmBackendLike, t: tf.Tensor | undefined, channels: number, fallback: number): Float64Array {
  const v = new Float64Array(channels).fill(fallback);
  if (t) v.set(b.typedArrayFromHeap(t));
  return v;
}

/**
 * FusedBatchNorm's gradient for per-channel (rank-1) parameters over channels-last x, in
 * one pass over dy and x: with r = 1/sqrt(variance + eps), d = x - mean,
 *   dx = dy * scale * r              dMean = -scale * r * sum(dy)
 *   dVariance = -scale * r^3 / 2 * sum(dy * d)
 *   dScale = r * sum(dy * d)         dOffset = sum(dy)
 * (tfjs-core's formulas, sums over every axis but the last, in float64).
 */
function fusedBatchNormGrad(original: GradFunc): GradFunc {
  return (dyIn, saved, attrs) => {
    const dy = dyIn as tf.Tensor;
    const [x, mean, variance, scaleIn] = saved;
    const scale = scaleIn ?? undefined;
    const channels = x.shape[x.shape.length - 1] ?? 0;
    const perChannel = (t: tf.Tensor | undefined) => !t || (t.rank === 1 && t.shape[0] === channels);
    const b = activeWasm(dy, x, mean, variance, scale);
    if (!b || x.dtype !== 'float32' || dy.dtype !== 'float32' || x.rank < 2 || channels === 0
      || !perChannel(mean) || !perChannel(variance) || !perChannel(scale)
      || !tf.util.arraysEqual(dy.shape, x.shape)) {
      return original(dyIn, saved, attrs);
    }
    const { varianceEpsilon } = attrs as unknown as { varianceEpsilon: number };
    const m = readChannels(b, mean, channels, 0);
    const v = readChannels(b, variance, channels, 1);
    const s = readChannels(b, scale, channels, 1);
    const r = v.map((vc) => 1 / Math.sqrt(vc + varianceEpsilon));
    const k = new Float32Array(channels);
    for (let c = 0; c < channels; c++) k[c] = s[c] * r[c];

    const dxInfo = b.makeOutput(x.shape.slice(), 'float32');
    const sumDy = new Float64Array(channels);
    const sumDyD = new Float64Array(channels);
    const simd = channels % 4 === 0 ? simdKernels(b) : undefined;
    if (simd) {
      const sums = bnGradRowsPass(b, simd, dy, x, dxInfo, k, m);
      sumDy.set(sums.sumDy);
      sumDyD.set(sums.sumDyD);
    } else {
      // Views after the allocation (it may grow the heap).
      channelPass(b.typedArrayFromHeap(dy) as Float32Array, b.typedArrayFromHeap(x) as Float32Array,
        b.typedArrayFromHeap(dxInfo) as Float32Array, k, m, sumDy, sumDyD);
    }
    // Owned by the backward pass's tidy scope: returned as x's gradient, or freed with it.
    const dx = wrap(b, dxInfo);

    const perChannelTensor = (f: (c: number) => number, like: tf.Tensor) => () => {
      const out = new Float32Array(channels);
      for (let c = 0; c < channels; c++) out[c] = f(c);
      return tf.tensor(out, like.shape, 'float32');
    };
    const grads: Grads = {
      x: () => dx,
      mean: perChannelTensor((c) => -s[c] * r[c] * sumDy[c], mean),
      variance: perChannelTensor((c) => -0.5 * s[c] * r[c] * r[c] * r[c] * sumDyD[c], variance),
      offset: () => tf.tensor(Float32Array.from(sumDy), [channels], 'float32'),
    };
    if (scale) grads.scale = perChannelTensor((c) => r[c] * sumDyD[c], scale);
    return grads;
  };
}

/**
 * One SIMD pass of BatchNorm's backward (simd/channels.c bnGradRows) over channels-last dy and x,
 * channels a multiple of 4: dx = dy * k per channel, written into dxInfo, and per-channel
 * float64 sums of dy and of dy * (x - mean). Used here and by SyncBatchNorm (syncBn.ts).
 */
export function bnGradRowsPass(
  b: WasmBackendLike, simd: SimdKernels, dy: tf.TensorInfo, x: tf.TensorInfo, dxInfo: tf.TensorInfo, k: Float32Array, mean: Float64Array,
): { sumDy: Float64Array; sumDyD: Float64Array } {
  const channels = k.length;
  // Scratch on the heap: k float32[C], mean float64[C], then per 4 channels 8 float64 sums
  // (simd.ts pairSlot). C % 4 == 0 keeps the float64 parts 16-byte aligned.
  const scratch = b.makeOutput([7 * channels], 'float32');
  try {
    // Views after the allocations (they may grow the heap).
    const base = b.typedArrayFromHeap(scratch).byteOffset;
    const heap = b.typedArrayFromHeap(scratch).buffer;
    new Float32Array(heap, base, channels).set(k);
    new Float64Array(heap, base + 4 * channels, channels).set(mean);
    const acc = new Float64Array(heap, base + 12 * channels, 2 * channels).fill(0);
    const dyv = b.typedArrayFromHeap(dy);
    simd.bnGradRows(dyv.byteOffset, b.typedArrayFromHeap(x).byteOffset, b.typedArrayFromHeap(dxInfo).byteOffset,
      dyv.byteOffset + dyv.byteLength, 4 * channels, base, base + 4 * channels, base + 12 * channels);
    const sumDy = new Float64Array(channels);
    const sumDyD = new Float64Array(channels);
    for (let c = 0; c < channels; c++) {
      sumDy[c] = acc[pairSlot(c)]!;
      sumDyD[c] = acc[pairSlot(c) + 4]!;
    }
    return { sumDy, sumDyD };
  } finally {
    release(b, scratch);
  }
}

/**
 * dx = dy * k per channel, and per-channel float64 sums of dy and dy * (x - mean), over
 * channels-last data. Two rows per iteration: the float64 accumulators are loaded and
 * stored half as often.
 */
function channelPass(
  dy: Float32Array, x: Float32Array, dx: Float32Array, k: Float32Array, mean: Float64Array,
  sumDy: Float64Array, sumDyD: Float64Array,
): void {
  const channels = k.length;
  const size = dy.length;
  const two = 2 * channels;
  let p = 0;
  for (; p + two <= size; p += two) {
    for (let c = 0; c < channels; c++) {
      const i = p + c;
      const j = i + channels;
      const g0 = dy[i];
      const g1 = dy[j];
      dx[i] = g0 * k[c];
      dx[j] = g1 * k[c];
      const mc = mean[c];
      sumDy[c] += g0 + g1;
      sumDyD[c] += g0 * (x[i] - mc) + g1 * (x[j] - mc);
    }
  }
  for (; p < size; p += channels) {
    for (let c = 0; c < channels; c++) {
      const g = dy[p + c];
      dx[p + c] = g * k[c];
      sumDy[c] += g;
      sumDyD[c] += g * (x[p + c] - mean[c]);
    }
  }
}

/** dy reshaped to x's rank with the reduced axes kept as 1. */
function expandReduced(dy: tf.Tensor, x: tf.Tensor, axis: number | number[]): tf.Tensor {
  const shape = x.shape.slice();
  for (const a of tf.util.parseAxisParam(axis, x.shape)) shape[a] = 1;
  return tf.reshape(dy, shape);
}

/** Mean: dy / n spread over x's shape (Tile's block copies); the same float32 values. */
function meanGrad(original: GradFunc): GradFunc {
  return (dyIn, saved, attrs) => {
    const dy = dyIn as tf.Tensor;
    const [x] = saved;
    if (!activeWasm(dy, x) || dy.dtype !== 'float32') return original(dyIn, saved, attrs);
    const { axis } = attrs as unknown as { axis: number | number[] };
    const axes = tf.util.parseAxisParam(axis, x.shape);
    const n = axes.reduce((p, a) => p * x.shape[a], 1);
    return { x: () => tf.broadcastTo(tf.div(expandReduced(dy, x, axis), n), x.shape) };
  };
}

/** Sum: dy spread over x's shape. */
function sumGrad(original: GradFunc): GradFunc {
  return (dyIn, saved, attrs) => {
    const dy = dyIn as tf.Tensor;
    const [x] = saved;
    if (!activeWasm(dy, x) || dy.dtype !== 'float32') return original(dyIn, saved, attrs);
    const { axis } = attrs as unknown as { axis: number | number[] };
    return { x: () => tf.broadcastTo(expandReduced(dy, x, axis), x.shape) };
  };
}

/**
 * Relu (dy * step(x)) and Square (dy * 2x) in one SIMD pass each instead of two native
 * ops (plus a Cast); the same float32 values (see simd/elementwise.c).
 */
function elementwiseGrad(kind: 'reluGrad' | 'squareGrad', original: GradFunc): GradFunc {
  return (dyIn, saved, attrs) => {
    const dy = dyIn as tf.Tensor;
    const [x] = saved;
    const b = activeWasm(dy, x);
    const simd = b ? simdKernels(b) : undefined;
    if (!b || !simd || dy.dtype !== 'float32' || x.dtype !== 'float32' || !tf.util.arraysEqual(dy.shape, x.shape)) {
      return original(dyIn, saved, attrs);
    }
    return {
      x: () => {
        const info = b.makeOutput(x.shape.slice(), 'float32');
        const dyv = b.typedArrayFromHeap(dy) as Float32Array; // views after the allocation
        const xv = b.typedArrayFromHeap(x) as Float32Array;
        const ov = b.typedArrayFromHeap(info) as Float32Array;
        const whole = dyv.length - (dyv.length % 4);
        simd[kind](dyv.byteOffset, xv.byteOffset, ov.byteOffset, dyv.byteOffset + 4 * whole);
        for (let i = whole; i < dyv.length; i++) {
          const xi = xv[i];
          ov[i] = kind === 'squareGrad' ? dyv[i] * (xi + xi) : dyv[i] * (Number.isNaN(xi) ? Number.NaN : xi > 0 ? 1 : 0);
        }
        return wrap(b, info);
      },
    };
  };
}

/** Kernel name of the fused conv layers' backward pass up to the convolution (models/fusedConv.ts). */
export const RELU_BIAS_GRAD = 'SvhnReluBiasGrad';

/**
 * SvhnReluBiasGrad(dy, y) -> [dyR, db] for y = relu(conv + b), channels-last, float32:
 *   dyR = dy * step(y)                   (Relu's gradient: y > 0 exactly where conv + b > 0)
 *   db[c] = sum over N, H, W of dyR       (the bias gradient, summed in float64 like Sum)
 * One SIMD pass (simd/channels.c reluBiasGradRows) where channels are a multiple of 4, else JS; the
 * unfused chain ran Relu's gradient and then a Sum over the same tensor, each with tfjs' op
 * overhead. dyR then feeds Conv2DBackpropInput and Conv2DBackpropFilter. No pass at all where
 * dy is MaxPoolGrad's output over this y (the models' conv -> MaxPool): MaxPoolGrad applied
 * step(y) at its winners and summed them (maxPoolGrad.ts), so dyR is dy's buffer, shared.
 */
function reluBiasGrad({ inputs, backend }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo[] {
  const b = asWasm(backend);
  const { dy, y } = inputs as { dy: tf.TensorInfo; y: tf.TensorInfo };
  if (dy.dtype !== 'float32' || y.dtype !== 'float32' || !tf.util.arraysEqual(dy.shape, y.shape) || y.shape.length < 1) {
    throw new Error(`${RELU_BIAS_GRAD}: expected float32 dy and y of one shape, got ${dy.dtype} [${dy.shape}] and ${y.dtype} [${y.shape}]`);
  }
  const channels = y.shape[y.shape.length - 1]!;
  // dy from MaxPoolGrad over this y: already dy * step(y), with its sums (reluOutputs.ts).
  const recorded = recordedBiasSums(dy, y);
  if (recorded) {
    const db = b.makeOutput([channels], 'float32');
    (b.typedArrayFromHeap(db) as Float32Array).set(recorded);
    return [shareBuffer(b, dy), db];
  }
  const dyR = b.makeOutput(y.shape.slice(), 'float32');
  const db = b.makeOutput([channels], 'float32');
  const sums = new Float64Array(channels);
  const simd = channels % 4 === 0 ? simdKernels(b) : undefined;
  if (simd) {
    withFloat64Scratch(b, channels, (acc) => {
      const dyv = b.typedArrayFromHeap(dy);
      simd.reluBiasGradRows(dyv.byteOffset, b.typedArrayFromHeap(y).byteOffset, b.typedArrayFromHeap(dyR).byteOffset,
        dyv.byteOffset + dyv.byteLength, 4 * channels, acc.byteOffset);
      sums.set(acc);
    });
  } else {
    const g = b.typedArrayFromHeap(dy) as Float32Array;
    const yv = b.typedArrayFromHeap(y) as Float32Array;
    const out = b.typedArrayFromHeap(dyR) as Float32Array;
    for (let p = 0; p < g.length; p += channels) {
      for (let c = 0; c < channels; c++) {
        const yi = yv[p + c]!;
        const r = g[p + c]! * (Number.isNaN(yi) ? Number.NaN : yi > 0 ? 1 : 0);
        out[p + c] = r;
        sums[c] += r;
      }
    }
  }
  (b.typedArrayFromHeap(db) as Float32Array).set(sums);
  return [dyR, db];
}

export const reluBiasGradConfig: tf.KernelConfig = { kernelName: RELU_BIAS_GRAD, backendName: 'wasm', kernelFunc: reluBiasGrad };

/** Kernel names whose gradients registerWasmGradients replaces (wasm only; others delegate). */
export const WASM_GRADIENTS: readonly string[] = [tf.FusedBatchNorm, tf.Mean, tf.Sum, tf.Relu, tf.Square];

/**
 * Wraps tfjs-core's gradients for WASM_GRADIENTS. Call once per process (the caller
 * guards it): wrapping twice would only add a second delegation.
 */
export function registerWasmGradients(): void {
  const wrappers: Record<string, (original: GradFunc) => GradFunc> = {
    [tf.FusedBatchNorm]: fusedBatchNormGrad,
    [tf.Mean]: meanGrad,
    [tf.Sum]: sumGrad,
    [tf.Relu]: (original) => elementwiseGrad('reluGrad', original),
    [tf.Square]: (original) => elementwiseGrad('squareGrad', original),
  };
  for (const name of WASM_GRADIENTS) {
    const original = tf.getGradient(name);
    if (!original) throw new Error(`wasm gradients: tfjs-core has no gradient for ${name}`);
    tf.registerGradient({ ...original, gradFunc: wrappers[name](original.gradFunc) });
  }
}
