/**
 * MaxPoolGrad for the wasm backend. The native kernel routes the gradient wrongly when a
 * window's maximum is <= 0 (after BatchNorm in the optimized model). This one follows the
 * cpu backend exactly: each window's gradient goes to the first cell (row-major) holding
 * the window's maximum; padding never wins; a window of NaNs routes nowhere. Cells that
 * win several overlapping windows sum their gradients in float64, as cpu does.
 * Over a conv layer's ReLU output (2x2, SIMD) it also applies the ReLU's gradient and sums
 * the bias gradient for SvhnReluBiasGrad, which then skips its pass (routeRelu below).
 */
import * as tf from '@tensorflow/tfjs';
import { asWasm, f32, withFloat64Scratch } from './heap.js';
import { isReluOutput, recordBiasSums } from './reluOutputs.js';
import { simdKernels, type SimdKernels } from './simd.js';

interface MaxPoolGradAttrs {
  filterSize: [number, number] | number;
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

function maxPoolGrad({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const b = asWasm(backend);
  const { dy, input } = inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as MaxPoolGradAttrs;
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode,
  );
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ch, outHeight: oh, outWidth: ow } = info;
  const { filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw } = info;
  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;

  const out = b.makeOutput(input.shape.slice(), 'float32');
  const x = f32(b, input);
  const g = f32(b, dy);
  // Only cells that win more than one window need a float64 sum; with non-overlapping
  // windows (stride >= filter) every cell is written at most once.
  const overlapping = sh < fh || sw < fw;
  const acc = overlapping ? new Float64Array(h * w * ch) : undefined;
  const dx = f32(b, out);
  if (fh === 2 && fw === 2 && sh === 2 && sw === 2 && padTop === 0 && padLeft === 0 && 2 * oh <= h && 2 * ow <= w) {
    const k = ch % 4 === 0 ? simdKernels(b) : undefined;
    if (!k) {
      dx.fill(0);
      pool2x2Grad(x, g, dx, n, h, w, ch, oh, ow);
      return out;
    }
    // SIMD, one output row per call; cells outside every window (odd sizes) stay 0.
    if (2 * oh < h || 2 * ow < w) dx.fill(0);
    if (isReluOutput(input) && routeRelu(b, k, input, dy, out, info)) return out;
    // Offsets afresh: routeRelu's scratch may have grown the heap (views then read offset 0).
    const [xAt, gAt, dxAt] = [input, dy, out].map((t) => f32(b, t).byteOffset) as [number, number, number];
    const rowBytes = w * ch * 4;
    for (let i = 0; i < n; i++) {
      for (let y = 0; y < oh; y++) {
        const xRow = (i * h + 2 * y) * rowBytes;
        k.pool2x2Row(xAt + xRow, gAt + (i * oh + y) * ow * ch * 4, dxAt + xRow, ow, ch * 4, rowBytes);
      }
    }
    return out;
  }
  dx.fill(0);
  for (let i = 0; i < n; i++) {
    const xBase = i * h * w * ch;
    acc?.fill(0);
    for (let y = 0; y < oh; y++) {
      const r0 = y * sh - padTop;
      const rMin = Math.max(0, r0);
      const rMax = Math.min(h, r0 + fh);
      for (let xo = 0; xo < ow; xo++) {
        const c0 = xo * sw - padLeft;
        const cMin = Math.max(0, c0);
        const cMax = Math.min(w, c0 + fw);
        const gBase = ((i * oh + y) * ow + xo) * ch;
        for (let d = 0; d < ch; d++) {
          let best = Number.NEGATIVE_INFINITY;
          let at = -1;
          for (let r = rMin; r < rMax; r++) {
            for (let c = cMin; c < cMax; c++) {
              const k = (r * w + c) * ch + d;
              const v = x[xBase + k];
              if (v > best) {
                best = v;
                at = k;
              }
            }
          }
          if (at < 0) continue;
          if (acc) acc[at] += g[gBase + d];
          else dx[xBase + at] += g[gBase + d];
        }
      }
    }
    if (acc) dx.set(acc, xBase);
  }
  return out;
}

/**
 * The 2x2 SIMD path when `input` is a SvhnConv2DBiasRelu output y (>= 0 or NaN), the models'
 * conv -> MaxPool: writes dx = (the routed dy) * step(y) into `out` and records its
 * per-channel float64 sums for SvhnReluBiasGrad(out, y), which then returns dx as its dyR and
 * the sums as db instead of a pass over the full-resolution tensor (reluOutputs.ts). Only
 * the winners can be non-zero, so step(y) and the sums are taken there: 4x fewer values.
 * dx differs from the plain routing only at a window of four zeros (its first cell gets
 * g * 0), which the ReLU's gradient zeroes anyway. Returns false, having written nothing
 * the caller keeps, where any cell of y is NaN: dy * step(y) is NaN at every NaN cell, winner
 * or not, so the caller routes as usual and SvhnReluBiasGrad takes its full pass.
 */
function routeRelu(
  b: ReturnType<typeof asWasm>, k: SimdKernels, input: tf.TensorInfo, dy: tf.TensorInfo, out: tf.TensorInfo,
  info: tf.backend_util.Conv2DInfo,
): boolean {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ch, outHeight: oh, outWidth: ow } = info;
  // float64[ch] sums, then 16 bytes of NaN flags
  return withFloat64Scratch(b, ch + 2, (scratch) => {
    const acc = scratch.subarray(0, ch);
    const flags = new Int32Array(scratch.buffer, scratch.byteOffset + 8 * ch, 4);
    const x = f32(b, input).byteOffset;
    const g = f32(b, dy).byteOffset;
    const dx = f32(b, out).byteOffset;
    const rowBytes = w * ch * 4;
    const end = x + n * h * rowBytes;
    // Cells outside every window (odd sizes): the bottom rows and the right columns.
    if (2 * oh < h) k.anyNaNRuns(x + 2 * oh * rowBytes, end, h * rowBytes, (h - 2 * oh) * rowBytes, flags.byteOffset);
    if (2 * ow < w) k.anyNaNRuns(x + 2 * ow * ch * 4, end, rowBytes, (w - 2 * ow) * ch * 4, flags.byteOffset);
    for (let i = 0; i < n; i++) {
      for (let y = 0; y < oh; y++) {
        const xRow = (i * h + 2 * y) * rowBytes;
        k.pool2x2ReluRow(x + xRow, g + (i * oh + y) * ow * ch * 4, dx + xRow, ow, ch * 4, rowBytes, acc.byteOffset, flags.byteOffset);
      }
    }
    if (flags.some((f) => f !== 0)) return false;
    recordBiasSums(out, input, Float64Array.from(acc));
    return true;
  });
}

/**
 * The models' case (2x2 windows, stride 2, no padding): the same routing with the four
 * cells of a window compared in row-major order, channels innermost.
 */
function pool2x2Grad(
  x: Float32Array, g: Float32Array, dx: Float32Array, n: number, h: number, w: number, ch: number, oh: number, ow: number,
): void {
  const row = w * ch;
  for (let i = 0; i < n; i++) {
    for (let y = 0; y < oh; y++) {
      for (let xo = 0; xo < ow; xo++) {
        const p00 = ((i * h + 2 * y) * w + 2 * xo) * ch;
        const p10 = p00 + row;
        const gBase = ((i * oh + y) * ow + xo) * ch;
        for (let d = 0; d < ch; d++) {
          let best = Number.NEGATIVE_INFINITY;
          let at = -1;
          let v = x[p00 + d];
          if (v > best) { best = v; at = p00 + d; }
          v = x[p00 + ch + d];
          if (v > best) { best = v; at = p00 + ch + d; }
          v = x[p10 + d];
          if (v > best) { best = v; at = p10 + d; }
          v = x[p10 + ch + d];
          if (v > best) at = p10 + ch + d;
          if (at >= 0) dx[at] = g[gBase + d];
        }
      }
    }
  }
}

export const maxPoolGradConfig: tf.KernelConfig = {
  kernelName: tf.MaxPoolGrad,
  backendName: 'wasm',
  kernelFunc: maxPoolGrad,
};

