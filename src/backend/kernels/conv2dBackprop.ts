/**
 * Convolution gradients for the wasm backend, built on XNNPACK's matmul and convolution.
 *
 * Conv2DBackpropFilter is missing from tfjs-backend-wasm 4.22 (tfjs #8474). The filter
 * gradient dW[kh,kw,ci,co] = sum_{n,oh,ow} x[n, oh*s+kh-pt, ow*s+kw-pl, ci] * dy[n,oh,ow,co]
 * is one matmul: patchesT [kh*kw*ci, N*OH*OW] (im2col, transposed, gathered in JS) times dy
 * seen as [N*OH*OW, co]. (An earlier form, a convolution with dy as a 30x30 filter, paid
 * ~10 ms a step on layer 1 for XNNPACK repacking that filter.) For stride 1 without
 * padding (the models' convolutions) and co a multiple of 4, a wasm SIMD loop computes it
 * from x and dy directly instead (filterGradDirect): per step of batch 64, layer 1 ~11 ms
 * -> ~3.5, where the matmul spent most of its time packing the 7.4 MB dy as its weights.
 *
 * Conv2DBackpropInput (native: a scalar loop) is, for stride 1 without padding and ci a
 * multiple of 4 (the models' layers 2 and 3), a wasm SIMD scatter from dy (inputGradDirect).
 * Stride 1 with padding ('same', the resnet's convolutions): dW by the same loop over a
 * zero-padded x (./padding.ts), dx by conv2d.ts's direct loop over dy with the flipped filter.
 * Strided convolutions (the resnet's downsampling) take both direct loops, stepping x (or dx)
 * by the stride; a padded dx is cropped.
 * Otherwise it is a convolution of dy, dilated by the stride with zeros, with the spatially
 * flipped filter whose channel axes are swapped ([kh,kw,co,ci]), under "full" padding
 * kh-1-pt; where that padding would be most of the work (small outputs), one matmul
 * dy x W^T and a col2im scatter-add instead.
 */
import * as tf from '@tensorflow/tfjs';
import { asWasm, conv2dRaw, f32, release, rowTiles, runNative, transposeNative } from './heap.js';
import { directConv2DPadded } from './conv2d.js';
import { cropImages, isPadded, padImages, type Pads } from './padding.js';
import { simdKernels, type SimdKernels } from './simd.js';

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
  const p = n * oh * ow;
  const k = kh * kw * ci;
  const geometry = { n, h, w, ci, oh, ow, kh, kw, sh, sw, top: info.padInfo.top, left: info.padInfo.left };
  const simd = simdKernels(b);
  if (simd && co % 4 === 0 && directPadded(geometry, info.padInfo)) {
    // Unpadded at stride 1 (the notebook models), or 'same' or strided (the resnet): the loop
    // over x (zero-padded first where the convolution pads, ./padding.ts), stepping `stride`
    // pixels of x per pixel of dy.
    const xp = isPadded(info.padInfo) ? padImages(b, x, info.padInfo) : x;
    const dw = filterGradDirect(b, simd, xp, dy, unpaddedGeometry(geometry, info.padInfo), co);
    if (xp !== x) release(b, xp);
    return dw;
  }

  // patchesT[(r,c,i), (n,y,x)] = x[n, y*sh + r - top, x*sw + c - left, i] (0 in the padding),
  // gathered from x moved to [ci,N,H,W] so each output row reads along W.
  const xT = transposeNative(b, x, [3, 0, 1, 2]);
  const patchesT = b.makeOutput([k, p], 'float32');
  if (simd && unpaddedStride1(geometry)) {
    // The same runs as gatherPatchesT's fast path, copied in wasm (simd/im2col.c gatherRuns).
    const src = f32(b, xT).byteOffset;
    const dst = f32(b, patchesT).byteOffset;
    for (let r = 0; r < kh; r++) {
      for (let c = 0; c < kw; c++) {
        simd.gatherRuns(src + (r * w + c) * 4, dst + (r * kw + c) * ci * p * 4, ci * n, oh, ow * 4, w * 4, h * w * 4);
      }
    }
  } else {
    gatherPatchesT(f32(b, xT), f32(b, patchesT), geometry);
  }
  release(b, xT);
  // dW [k, co] = patchesT [k, p] x dy [p, co]. XNNPACK packs dy as the weights every step
  // (a new tensor each time); that costs far less than packing dy as a 30x30 convolution
  // filter did (layer 1: ~8 ms instead of ~20).
  const dy2d: tf.TensorInfo = { dataId: dy.dataId, shape: [p, co], dtype: dy.dtype };
  const out = runNative(tf.BatchMatMul, b, { a: patchesT, b: dy2d }, { transposeA: false, transposeB: false });
  release(b, patchesT);
  return { dataId: out.dataId, shape: [kh, kw, ci, co], dtype: 'float32' };
}


/**
 * dW [kh,kw,ci,co] for any stride without padding (a padded x is padded first), read straight from x and dy in NHWC by
 * simd/conv.c filterGrad (no im2col matrix, no matmul packing dy as its weights each step).
 * The output pixels go in tiles (rows of one image, or whole images) whose dy fits
 * heap.ts TILE_BYTES (rowTiles); per tile, filter row r and block of 16 (then 4) output channels, one call
 * runs over the kw*ci taps of that row, which are consecutive floats in x from each pixel,
 * two at a time (an odd last one alone). Sums are float32 within a tile, then added into dW
 * (float32) tile by tile: within ~6e-7 of cpu's float64 sums on the models' shapes at batch 64
 * (relDiff; the matmul's long float32 sums: ~1e-5 on layer 1).
 */
function filterGradDirect(
  b: ReturnType<typeof asWasm>, simd: SimdKernels, x: tf.TensorInfo, dy: tf.TensorInfo, g: PatchGeometry, co: number,
): tf.TensorInfo {
  const { n, h, w, ci, oh, ow, kh, kw, sh, sw } = g;
  const out = b.makeOutput([kh, kw, ci, co], 'float32');
  // Views after the last allocation (an allocation may move the heap).
  const dW = f32(b, out);
  dW.fill(0);
  const xAt = f32(b, x).byteOffset;
  const dyAt = f32(b, dy).byteOffset;
  const nk = kw * ci;
  const pairs = nk - (nk % 2);
  for (const { image: i, images, row: y, rows } of rowTiles(n, oh, ow * co * 4)) {
    const dyTile = dyAt + (i * oh + y) * ow * co * 4;
    // x steps `stride` pixels per dy pixel and `stride` rows per dy row.
    const steps = [images, rows, ow, sw * ci * 4, sh * w * ci * 4, h * w * ci * 4, co * 4] as const;
    for (let r = 0; r < kh; r++) {
      const xTile = xAt + (i * h + y * sh + r) * w * ci * 4;
      const dWRow = dW.byteOffset + r * nk * co * 4;
      for (let c = 0; c < co;) {
        const [width, byPairs, single] = co - c >= 16
          ? [16, simd.filterGrad16x2, simd.filterGrad16x1]
          : [4, simd.filterGrad4x2, simd.filterGrad4x1];
        if (pairs > 0) byPairs(xTile, dyTile + c * 4, dWRow + c * 4, pairs, co * 4, ...steps);
        if (pairs < nk) single(xTile + pairs * 4, dyTile + c * 4, dWRow + (pairs * co + c) * 4, 1, co * 4, ...steps);
        c += width;
      }
    }
  }
  return out;
}

interface PatchGeometry {
  n: number; h: number; w: number; ci: number; oh: number; ow: number;
  kh: number; kw: number; sh: number; sw: number; top: number; left: number;
}

/** Stride 1 and every window inside x: patch rows are plain runs of x's rows. */
function unpaddedStride1(g: PatchGeometry): boolean {
  return g.sh === 1 && g.sw === 1 && g.top === 0 && g.left === 0 && g.oh + g.kh - 1 <= g.h && g.ow + g.kw - 1 <= g.w;
}

/** Stride 1 with padding (top, bottom, left, right >= 0) that the unpadded loops can take over a padded x. */
function paddedStride1(g: PatchGeometry, p: Pads): boolean {
  return isPadded(p) && Math.min(p.top, p.bottom, p.left, p.right) >= 0 && unpaddedStride1(unpaddedGeometry(g, p));
}

/** Any stride, padded or not, whose windows all lie inside x once padded: filterGradDirect's reach. */
function directPadded(g: PatchGeometry, p: Pads): boolean {
  const u = unpaddedGeometry(g, p);
  return Math.min(p.top, p.bottom, p.left, p.right) >= 0 && (u.oh - 1) * u.sh + u.kh <= u.h && (u.ow - 1) * u.sw + u.kw <= u.w;
}

/** The same convolution seen over x padded by p: no padding left. */
function unpaddedGeometry(g: PatchGeometry, p: Pads): PatchGeometry {
  return { ...g, h: g.h + p.top + p.bottom, w: g.w + p.left + p.right, top: 0, left: 0 };
}

/** The transposed im2col matrix [kh*kw*ci, n*oh*ow] from xT [ci, n, h, w] (see above). */
function gatherPatchesT(xT: Float32Array, dst: Float32Array, g: PatchGeometry): void {
  const { n, h, w, ci, oh, ow, kh, kw, sh, sw, top, left } = g;
  let o = 0;
  if (unpaddedStride1(g)) {
    // Stride 1 without padding (the models' case): every read is inside, rows are plain runs.
    for (let r = 0; r < kh; r++) {
      for (let c = 0; c < kw; c++) {
        for (let plane = 0; plane < ci * n; plane++) {
          for (let y = 0, base = (plane * h + r) * w + c; y < oh; y++, base += w, o += ow) {
            for (let xo = 0; xo < ow; xo++) dst[o + xo] = xT[base + xo];
          }
        }
      }
    }
    return;
  }
  for (let r = 0; r < kh; r++) {
    for (let c = 0; c < kw; c++) {
      // Output columns whose input column xo*sw + c - left lies inside [0, w).
      const lo = Math.min(ow, Math.max(0, Math.ceil((left - c) / sw)));
      const hi = Math.max(lo, Math.min(ow, Math.floor((w - 1 + left - c) / sw) + 1));
      for (let i = 0; i < ci; i++) {
        for (let bn = 0; bn < n; bn++) {
          const plane = (i * n + bn) * h;
          for (let y = 0; y < oh; y++) {
            const row = y * sh + r - top;
            if (row < 0 || row >= h) {
              dst.fill(0, o, o + ow);
              o += ow;
              continue;
            }
            const base = (plane + row) * w + c - left;
            for (let xo = 0; xo < lo; xo++) dst[o++] = 0;
            for (let xo = lo; xo < hi; xo++) dst[o++] = xT[base + xo * sw];
            for (let xo = hi; xo < ow; xo++) dst[o++] = 0;
          }
        }
      }
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
  const geometry = { n, h, w, ci, oh, ow, kh, kw, sh, sw, top: info.padInfo.top, left: info.padInfo.left };
  const simd = simdKernels(b);
  if (simd && ci % 4 === 0 && unpaddedStride1(geometry)) return inputGradDirect(b, simd, dy, filter, geometry, co);
  if (simd && ci % 4 === 0 && paddedStride1(geometry, info.padInfo)) {
    // 'same' at stride 1: dx is the forward convolution of dy, padded by kh-1-top rows above
    // and so on, with the flipped filter whose channel axes are swapped: the direct loop, which
    // runs faster than the scatter on 16 channels and needs no padded dx to crop.
    const p = info.padInfo;
    const flipped = flipFilter(b, filter);
    const dx = directConv2DPadded(b, dy, flipped, { top: kh - 1 - p.top, bottom: kh - 1 - p.bottom, left: kw - 1 - p.left, right: kw - 1 - p.right });
    release(b, flipped);
    if (dx) return dx;
  }
  if (simd && ci % 4 === 0 && (sh > 1 || sw > 1) && directPadded(geometry, info.padInfo)) {
    // Strided (the resnet's downsampling): the scatter with dx stepped by the stride, into a
    // padded dx whose middle is the answer.
    const dxp = inputGradDirect(b, simd, dy, filter, unpaddedGeometry(geometry, info.padInfo), co);
    if (!isPadded(info.padInfo)) return dxp;
    const dx = cropImages(b, dxp, info.padInfo);
    release(b, dxp);
    return dx;
  }
  // Small outputs (layer 3: 4x4 from 6x6) waste most of a "full" convolution on padding:
  // there, one matmul over dy's own pixels and a scatter-add (col2im) do ~2x less work.
  if (h * w >= 1.5 * oh * ow) {
    return conv2DBackpropInputByMatMul(b, dy, filter, { n, h, w, ci, oh, ow, kh, kw, sh, sw, top: info.padInfo.top, left: info.padInfo.left }, co);
  }
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
  writeFlipped(f32(b, filter), f32(b, wf), filter.shape as [number, number, number, number]);
  conv2dRaw(b, {
    x: dyD, batch: n, inHeight: hd, inWidth: wd, inChannels: co,
    filter: wf, filterHeight: kh, filterWidth: kw, outChannels: ci,
    pad: [padTop, padRight, padBottom, padLeft], dilation: [1, 1], stride: [1, 1], out,
  });
  release(b, wf);
  if (strided) release(b, dyD);
  return out;
}

/** The filter of dx as a convolution of dy: wf[a,c,o,i] = W[kh-1-a, kw-1-c, i, o], a new tensor. */
function flipFilter(b: ReturnType<typeof asWasm>, filter: tf.TensorInfo): tf.TensorInfo {
  const [kh, kw, ci, co] = filter.shape as [number, number, number, number];
  const wf = b.makeOutput([kh, kw, co, ci], 'float32');
  writeFlipped(f32(b, filter), f32(b, wf), [kh, kw, ci, co]);
  return wf;
}

function writeFlipped(wSrc: Float32Array, wDst: Float32Array, [kh, kw, ci, co]: [number, number, number, number]): void {
  for (let a = 0; a < kh; a++) {
    for (let c = 0; c < kw; c++) {
      const from = ((kh - 1 - a) * kw + (kw - 1 - c)) * ci * co;
      const to = (a * kw + c) * co * ci;
      for (let i = 0; i < ci; i++) {
        for (let o = 0; o < co; o++) wDst[to + o * ci + i] = wSrc[from + i * co + o];
      }
    }
  }
}

/**
 * dx [n,h,w,ci] without padding (any stride: dx steps by it per dy pixel), as a scatter straight from dy in NHWC by
 * simd/conv.c inputGrad: dx[n, y+r, x+c, :] += W[r,c,:,:] . dy[n,y,x,:] for every dy pixel and
 * filter tap, so no work on the zero padding a "full" convolution reads (layer 2: 399 MFLOP
 * instead of ~530) and no col2im pass. W is first moved to [kh,kw,co,ci] (ci contiguous, the
 * vector axis). dy goes in tiles of heap.ts TILE_BYTES (rowTiles) as in filterGradDirect; per tile, tap and
 * block of 16 (then 4) input channels, one call. Each dx cell is a float32 sum over co per
 * tap, then over taps. Per step of batch 64: layer 2 ~19 -> ~12 ms, layer 3 ~8.5 -> ~4.2
 * (~32 GFLOP/s; 16 channels x 3 pixels, 8 x 4 or 12 x 3 per call were no faster).
 */
function inputGradDirect(
  b: ReturnType<typeof asWasm>, simd: SimdKernels, dy: tf.TensorInfo, filter: tf.TensorInfo, g: PatchGeometry, co: number,
): tf.TensorInfo {
  const { n, h, w, ci, oh, ow, kh, kw, sh, sw } = g;
  // [kh, kw, ci, co] -> [kh, kw, co, ci] by the native Transpose (a strided JS loop cost
  // ~0.25 ms a step for the 64 -> 128 layer's 74k weights).
  const wT = transposeNative(b, filter, [0, 1, 3, 2]);
  const out = b.makeOutput([n, h, w, ci], 'float32');
  // Views after the last allocation (an allocation may move the heap).
  const dx = f32(b, out);
  dx.fill(0);
  const dxAt = dx.byteOffset;
  const dyAt = f32(b, dy).byteOffset;
  const wAt = f32(b, wT).byteOffset;
  const rowBytes = ow * co * 4;
  const dxSteps = [sw * ci * 4, sh * w * ci * 4, h * w * ci * 4] as const; // per dy pixel, row, image: the stride apart
  for (const { image: i, images, row: y, rows } of rowTiles(n, oh, rowBytes)) {
    const dyTile = dyAt + (i * oh + y) * rowBytes;
    for (let r = 0; r < kh; r++) {
      for (let c = 0; c < kw; c++) {
        // The dx cell of the tile's first dy pixel under tap (r, c), and the tap's [co, ci] slab.
        const dxTile = dxAt + ((i * h + y * sh + r) * w + c) * ci * 4;
        const wTap = wAt + (r * kw + c) * co * ci * 4;
        for (let k = 0; k < ci;) {
          const [width, fn] = ci - k >= 16 ? [16, simd.inputGrad16x2] : [4, simd.inputGrad4x2];
          fn(dyTile, wTap + k * 4, dxTile + k * 4, co * 4, ci * 4, images, rows, ow, ...dxSteps);
          k += width;
        }
      }
    }
  }
  release(b, wT);
  return out;
}

/**
 * dx as col2im(dy [p, co] x W^T [co, kh*kw*ci]): each output pixel's row of products is
 * added into the kh x kw input cells it came from (padding cells dropped).
 */
function conv2DBackpropInputByMatMul(
  b: ReturnType<typeof asWasm>, dy: tf.TensorInfo, filter: tf.TensorInfo, g: PatchGeometry, co: number,
): tf.TensorInfo {
  const { n, h, w, ci, oh, ow, kh, kw, sh, sw, top, left } = g;
  const k = kh * kw * ci;
  const p = n * oh * ow;
  const wT = b.makeOutput([co, k], 'float32');
  {
    const src = f32(b, filter); // [k, co]
    const dst = f32(b, wT);
    for (let r = 0; r < k; r++) for (let o = 0; o < co; o++) dst[o * k + r] = src[r * co + o];
  }
  const dy2d: tf.TensorInfo = { dataId: dy.dataId, shape: [p, co], dtype: dy.dtype };
  const cols = runNative(tf.BatchMatMul, b, { a: dy2d, b: wT }, { transposeA: false, transposeB: false });
  release(b, wT);
  const out = b.makeOutput([n, h, w, ci], 'float32');
  const src = f32(b, cols);
  const dx = f32(b, out);
  dx.fill(0);
  const simd = ci % 4 === 0 ? simdKernels(b) : undefined;
  let q = 0;
  for (let bn = 0; bn < n; bn++) {
    for (let y = 0; y < oh; y++) {
      for (let xo = 0; xo < ow; xo++, q += k) {
        for (let r = 0; r < kh; r++) {
          const row = y * sh + r - top;
          if (row < 0 || row >= h) continue;
          for (let c = 0; c < kw; c++) {
            const col = xo * sw + c - left;
            if (col < 0 || col >= w) continue;
            const to = ((bn * h + row) * w + col) * ci;
            const from = q + (r * kw + c) * ci;
            if (simd) simd.addRun(src.byteOffset + 4 * from, dx.byteOffset + 4 * to, 4 * ci);
            else for (let i = 0; i < ci; i++) dx[to + i] += src[from + i];
          }
        }
      }
    }
  }
  release(b, cols);
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
