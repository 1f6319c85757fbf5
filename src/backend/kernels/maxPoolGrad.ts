/**
 * MaxPoolGrad for the wasm backend. The native kernel routes the gradient wrongly when a
 * window's maximum is <= 0 (after BatchNorm in the optimized model). This one follows the
 * cpu backend exactly: each window's gradient goes to the first cell (row-major) holding
 * the window's maximum; padding never wins; a window of NaNs routes nowhere. Cells that
 * win several overlapping windows sum their gradients in float64, as cpu does.
 */
import * as tf from '@tensorflow/tfjs';
import { asWasm, f32 } from './heap.js';
import { simdKernels } from './simd.js';

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
    const rowBytes = w * ch * 4;
    for (let i = 0; i < n; i++) {
      for (let y = 0; y < oh; y++) {
        const xRow = (i * h + 2 * y) * rowBytes;
        k.pool2x2Row(x.byteOffset + xRow, g.byteOffset + (i * oh + y) * ow * ch * 4, dx.byteOffset + xRow, ow, ch * 4, rowBytes);
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

