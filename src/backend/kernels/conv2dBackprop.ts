/**
 * Convolution gradients for the wasm backend, each one forward XNNPACK convolution.
 *
 * Conv2DBackpropFilter is missing from tfjs-backend-wasm 4.22 (tfjs #8474). The filter
 * gradient dW[kh,kw,ci,co] = sum_{n,oh,ow} x[n, oh*s+kh-pt, ow*s+kw-pl, ci] * dy[n,oh,ow,co]
 * is a convolution of x seen as a batch of ci images of N channels ([ci,H,W,N]) with dy
 * seen as an OH x OW filter from N to co channels ([OH,OW,N,co]), dilated by the stride:
 * out[ci,kh,kw,co], then moved to [kh,kw,ci,co].
 *
 * Conv2DBackpropInput (native: a scalar loop) is a convolution of dy, dilated by the
 * stride with zeros, with the spatially flipped filter whose channel axes are swapped
 * ([kh,kw,co,ci]), under "full" padding kh-1-pt.
 */
import * as tf from '@tensorflow/tfjs';
import { asWasm, conv2dRaw, f32, release, transposeNative } from './heap.js';

interface Conv2DBackpropFilterAttrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

interface Conv2DBackpropInputAttrs extends Omit<Conv2DBackpropFilterAttrs, 'filterShape'> {
  inputShape: [number, number, number, number];
}

function requireNhwc(kernel: string, dataFormat: string): void {
  if (dataFormat !== 'NHWC') throw new Error(`wasm ${kernel}: only NHWC is supported, got ${dataFormat}`);
}

function conv2DBackpropFilter({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const b = asWasm(backend);
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as Conv2DBackpropFilterAttrs;
  requireNhwc('Conv2DBackpropFilter', dataFormat);
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode,
  );
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci, outChannels: co } = info;
  const { outHeight: oh, outWidth: ow, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  // Bottom/right padding making the output kh x kw; where that would be negative (strides
  // that leave trailing rows unused) pad 0 and crop the extra rows below.
  const pb = Math.max(0, kh - h - pt + (oh - 1) * sh);
  const pr = Math.max(0, kw - w - pl + (ow - 1) * sw);
  const gh = h + pt + pb - (oh - 1) * sh;
  const gw = w + pl + pr - (ow - 1) * sw;

  const xT = transposeNative(b, x, [3, 1, 2, 0]); // [ci,H,W,N]
  const dyT = b.makeOutput([oh, ow, n, co], 'float32'); // [OH,OW,N,co]
  swapOuterAxes(f32(b, dy), f32(b, dyT), n, oh * ow, co);
  const g = b.makeOutput([ci, gh, gw, co], 'float32');
  conv2dRaw(b, {
    x: xT, batch: ci, inHeight: h, inWidth: w, inChannels: n,
    filter: dyT, filterHeight: oh, filterWidth: ow, outChannels: co,
    pad: [pt, pr, pb, pl], dilation: [sh, sw], stride: [1, 1], out: g,
  });
  release(b, xT, dyT);

  // [ci,gh,gw,co] -> [kh,kw,ci,co], cropping to kh x kw: small (at most 3*3*64*128 here).
  const out = b.makeOutput([kh, kw, ci, co], 'float32');
  const src = f32(b, g);
  const dst = f32(b, out);
  for (let r = 0; r < kh; r++) {
    for (let c = 0; c < kw; c++) {
      for (let i = 0; i < ci; i++) {
        const from = ((i * gh + r) * gw + c) * co;
        dst.set(src.subarray(from, from + co), ((r * kw + c) * ci + i) * co);
      }
    }
  }
  release(b, g);
  return out;
}

/**
 * [A,B,C] -> [B,A,C] as runs of C values: the native Transpose moves single elements and
 * took ~10 ms on the first layer's dy ([64,900,32]); run copies take a fraction of that.
 */
function swapOuterAxes(src: Float32Array, dst: Float32Array, a: number, bDim: number, c: number): void {
  for (let i = 0; i < a; i++) {
    for (let j = 0; j < bDim; j++) {
      const from = (i * bDim + j) * c;
      const to = (j * a + i) * c;
      for (let k = 0; k < c; k++) dst[to + k] = src[from + k];
    }
  }
}

function conv2DBackpropInput({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const b = asWasm(backend);
  const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as Conv2DBackpropInputAttrs;
  requireNhwc('Conv2DBackpropInput', dataFormat);
  const info = tf.backend_util.computeConv2DInfo(
    inputShape, filter.shape as [number, number, number, number], strides, 1, pad, dimRoundingMode,
  );
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci, outChannels: co } = info;
  const { outHeight: oh, outWidth: ow, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const hd = (oh - 1) * sh + 1;
  const wd = (ow - 1) * sw + 1;
  const padTop = kh - 1 - info.padInfo.top;
  const padLeft = kw - 1 - info.padInfo.left;
  const padBottom = h - hd + kh - 1 - padTop;
  const padRight = w - wd + kw - 1 - padLeft;
  if (padTop < 0 || padLeft < 0 || padBottom < 0 || padRight < 0) {
    throw new Error(`wasm Conv2DBackpropInput: unsupported padding for input ${inputShape.join('x')}`);
  }

  // Allocate every temporary before taking heap views (an allocation may move the heap).
  const strided = sh > 1 || sw > 1;
  const dyD = strided ? b.makeOutput([n, hd, wd, co], 'float32') : dy;
  const wf = b.makeOutput([kh, kw, co, ci], 'float32');
  const out = b.makeOutput([n, h, w, ci], 'float32');

  if (strided) {
    // Zero-dilated dy: dy[n,y,x,:] lands at [n, y*sh, x*sw, :].
    const src = f32(b, dy);
    const dst = f32(b, dyD);
    dst.fill(0);
    for (let i = 0; i < n; i++) {
      for (let y = 0; y < oh; y++) {
        for (let x = 0; x < ow; x++) {
          const from = ((i * oh + y) * ow + x) * co;
          dst.set(src.subarray(from, from + co), ((i * hd + y * sh) * wd + x * sw) * co);
        }
      }
    }
  }
  // wf[a,c,o,i] = W[kh-1-a, kw-1-c, i, o]
  const wSrc = f32(b, filter);
  const wDst = f32(b, wf);
  for (let a = 0; a < kh; a++) {
    for (let c = 0; c < kw; c++) {
      const from = ((kh - 1 - a) * kw + (kw - 1 - c)) * ci * co;
      const to = (a * kw + c) * co * ci;
      for (let i = 0; i < ci; i++) {
        for (let o = 0; o < co; o++) wDst[to + o * ci + i] = wSrc[from + i * co + o];
      }
    }
  }
  conv2dRaw(b, {
    x: dyD, batch: n, inHeight: hd, inWidth: wd, inChannels: co,
    filter: wf, filterHeight: kh, filterWidth: kw, outChannels: ci,
    pad: [padTop, padRight, padBottom, padLeft], dilation: [1, 1], stride: [1, 1], out,
  });
  release(b, wf);
  if (strided) release(b, dyD);
  return out;
}

export const conv2DBackpropFilterConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc: conv2DBackpropFilter,
};

export const conv2DBackpropInputConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropInput,
  backendName: 'wasm',
  kernelFunc: conv2DBackpropInput,
};
