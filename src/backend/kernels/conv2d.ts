/**
 * Conv2D on wasm (the models' convolutions while training; the notebook models' inference
 * runs FusedConv2D, which stays native), unpadded or padded ('same': the loop reads a
 * zero-padded copy of x, ./padding.ts), at stride 1 or more (strided: one output row a
 * call): a wasm SIMD loop straight from x in NHWC
 * (simd/conv.c convRows), no im2col and no XNNPACK repacking of a filter that changes every
 * step. Output pixels go in tiles of heap.ts TILE_BYTES (rowTiles), one call per tile and block of 16 (then
 * 4) output channels. In a training step of batch 64 (~32 GFLOP/s on layers 2 and 3):
 * layer 1 ~4.7 -> ~3.9 ms, layer 2 ~13.7 -> ~11.6, layer 3 ~5.7 -> ~4.5.
 * Every other geometry, the threaded build (XNNPACK uses its pool there, these loops would
 * not) and runtimes without the SIMD module run the native kernel.
 *
 * SvhnConv2DBiasRelu is the same loop with the conv layers' bias and ReLU applied per tile
 * (their training forward pass, models/fusedConv.ts); its fallback is the native FusedConv2D.
 */
import * as tf from '@tensorflow/tfjs';
import { asWasm, captureNative, f32, release, rowTiles, runNative } from './heap.js';
import { isPadded, padImages, type Pads } from './padding.js';
import { markReluOutput } from './reluOutputs.js';
import { simdKernels } from './simd.js';

interface Conv2DAttrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dilations: [number, number] | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}


function conv2D({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const b = asWasm(backend);
  const { x, filter } = inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
  return directConv2D(b, x, filter, undefined, attrs as unknown as Conv2DAttrs) ?? runNative(tf.Conv2D, b, inputs, attrs);
}

/**
 * The direct SIMD convolution of x by filter into a new [n, oh, ow, co] output, or undefined
 * where the geometry or runtime does not allow it (the caller runs a native kernel then).
 * With `bias` (float32[co] on the heap), each tile of output pixels gets relu(y + bias) in
 * place right after its channel blocks are written (simd/channels.c biasReluRows): the tile is still
 * in L1, so the epilogue costs a fraction of a separate Add and Relu over the whole tensor.
 */
function directConv2D(
  b: ReturnType<typeof asWasm>, x: tf.TensorInfo, filter: tf.TensorInfo, bias: tf.TensorInfo | undefined, attrs: Conv2DAttrs,
): tf.TensorInfo | undefined {
  const { strides, pad, dataFormat, dilations, dimRoundingMode } = attrs;
  const simd = simdKernels(b);
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], filter.shape as [number, number, number, number],
    strides, dilations, pad, dimRoundingMode, false, dataFormat === 'NCHW' ? 'channelsFirst' : 'channelsLast',
  );
  const { batchSize: n, inChannels: ci, outChannels: co, outHeight: oh, outWidth: ow } = info;
  const { filterHeight: kh, filterWidth: kw } = info;
  // 'same' or explicit padding: the loop runs over a zero-padded copy of x (./padding.ts).
  const pads: Pads = { top: info.padInfo.top, bottom: info.padInfo.bottom, left: info.padInfo.left, right: info.padInfo.right };
  const h = info.inHeight + pads.top + pads.bottom;
  const w = info.inWidth + pads.left + pads.right;
  const { strideHeight: sh, strideWidth: sw } = info;
  const direct = simd && dataFormat === 'NHWC' && co % 4 === 0 && x.dtype === 'float32'
    && info.dilationHeight === 1 && info.dilationWidth === 1
    && Math.min(pads.top, pads.bottom, pads.left, pads.right) >= 0 && (oh - 1) * sh + kh <= h && (ow - 1) * sw + kw <= w
    && !sharedHeap(b);
  if (!direct) return undefined;
  const xp = isPadded(pads) ? padImages(b, x, pads) : x;
  const out = b.makeOutput([n, oh, ow, co], 'float32');
  // Views after the last allocation (an allocation may move the heap).
  const yAt = f32(b, out).byteOffset;
  const xAt = f32(b, xp).byteOffset;
  const wAt = f32(b, filter).byteOffset;
  const biasAt = bias ? f32(b, bias).byteOffset : 0;
  const rowBytes = ow * co * 4;
  const xSteps = [ci * 4, w * ci * 4, h * w * ci * 4] as const; // per pixel, row, image
  for (const { image: i, images, row: y, rows } of rowTiles(n, oh, rowBytes)) {
    const yTile = yAt + (i * oh + y) * rowBytes;
    const xTile = xAt + (i * h + y) * w * ci * 4;
    for (let k = 0; k < co;) {
      const [width, fn] = co - k >= 16 ? [16, simd.convRows16x2] : [4, simd.convRows4x2];
      if (sh === 1 && sw === 1) {
        fn(xTile, wAt + k * 4, yTile + k * 4, kw * ci * 4, co * 4, images, rows, ow, ...xSteps, co * 4, kh);
      } else {
        // Strided: the loop's row step is also its filter-row step, so one output row a call,
        // x stepped by the stride along it.
        for (let ii = 0; ii < images; ii++) {
          for (let yy = 0; yy < rows; yy++) {
            const xRow = xAt + ((i + ii) * h + (y + yy) * sh) * w * ci * 4;
            const yRow = yTile + (ii * rows + yy) * rowBytes;
            fn(xRow, wAt + k * 4, yRow + k * 4, kw * ci * 4, co * 4, 1, 1, ow, sw * ci * 4, xSteps[1], xSteps[2], co * 4, kh);
          }
        }
      }
      k += width;
    }
    // The tile is images x rows whole output rows, contiguous (whole images, or a band of one).
    if (bias) simd.biasReluRows(yTile, yTile + images * rows * rowBytes, co * 4, biasAt);
  }
  if (xp !== x) release(b, xp);
  return out;
}

/**
 * The direct SIMD convolution at stride 1 with explicit padding (conv2dBackprop.ts runs a
 * 'same' layer's input gradient through it), or undefined where it does not apply.
 */
export function directConv2DPadded(b: ReturnType<typeof asWasm>, x: tf.TensorInfo, filter: tf.TensorInfo, p: Pads): tf.TensorInfo | undefined {
  const pad = [[0, 0], [p.top, p.bottom], [p.left, p.right], [0, 0]] as tf.backend_util.ExplicitPadding;
  return directConv2D(b, x, filter, undefined, { strides: 1, pad, dataFormat: 'NHWC', dilations: 1 });
}

/** Kernel name of relu(conv2d(x, filter) + bias), NHWC, bias [outChannels] (models/fusedConv.ts). */
export const CONV2D_BIAS_RELU = 'SvhnConv2DBiasRelu';

/**
 * SvhnConv2DBiasRelu: y = relu(conv2d(x, filter) + bias) in one kernel, the conv layers'
 * training forward pass (tfjs-core un-fuses FusedConv2D under a gradient tape into Conv2D,
 * Add and Relu: two more passes over y and their JS overhead). Inputs x, filter, bias
 * (float32[co]); attrs as Conv2D's. The direct SIMD loop with its epilogue where it applies,
 * else the native FusedConv2D with activation relu (XNNPACK, and its thread pool on the
 * threaded build).
 */
function conv2DBiasRelu({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const b = asWasm(backend);
  const { x, filter, bias } = inputs as { x: tf.TensorInfo; filter: tf.TensorInfo; bias: tf.TensorInfo };
  const a = attrs as unknown as Conv2DAttrs;
  const co = filter.shape[3];
  const perChannel = bias.dtype === 'float32' && bias.shape.length === 1 && bias.shape[0] === co;
  const out = perChannel ? directConv2D(b, x, filter, bias, a) : undefined;
  const y = out ?? runNative(tf.FusedConv2D, b, { x, filter, bias }, { ...attrs, activation: 'relu' });
  markReluOutput(y); // >= 0 or NaN on every path: MaxPoolGrad may apply the ReLU's step (reluOutputs.ts)
  return y;
}

/**
 * FusedConv2D without bias or activation (the resnet's convolutions, each followed by a
 * BatchNorm: tfjs-layers calls the fused op, which tfjs-core keeps fused under a gradient tape
 * when the activation is linear) runs the direct loop; everything else, the notebook models'
 * inference among it, the native kernel.
 */
function fusedConv2D({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const b = asWasm(backend);
  const { x, filter, bias, preluActivationWeights } = inputs as Record<string, tf.TensorInfo | undefined>;
  const a = attrs as unknown as Conv2DAttrs & { activation?: string };
  const plain = !bias && !preluActivationWeights && (a.activation ?? 'linear') === 'linear';
  return (plain ? directConv2D(b, x!, filter!, undefined, a) : undefined) ?? runNative(tf.FusedConv2D, b, inputs, attrs);
}

function sharedHeap(b: ReturnType<typeof asWasm>): boolean {
  const module = b.wasm as unknown as { asm?: { memory?: { buffer?: unknown } }; wasmMemory?: { buffer?: unknown } };
  const memory = module.asm?.memory ?? module.wasmMemory;
  return typeof SharedArrayBuffer !== 'undefined' && memory?.buffer instanceof SharedArrayBuffer;
}

/** Built at registration: it falls back to the native kernel, whose setup (cwrap) it must run. */
export function conv2DConfig(): tf.KernelConfig {
  const native = captureNative(tf.Conv2D);
  return { kernelName: tf.Conv2D, backendName: 'wasm', setupFunc: native?.setupFunc, kernelFunc: conv2D };
}

/** Built at registration: its fallback is the native FusedConv2D, whose setup it must run. */
export function conv2DBiasReluConfig(): tf.KernelConfig {
  const native = captureNative(tf.FusedConv2D);
  return { kernelName: CONV2D_BIAS_RELU, backendName: 'wasm', setupFunc: native?.setupFunc, kernelFunc: conv2DBiasRelu };
}

/** Built at registration: its fallback is the native FusedConv2D, whose setup it must run. */
export function fusedConv2DConfig(): tf.KernelConfig {
  const native = captureNative(tf.FusedConv2D);
  return { kernelName: tf.FusedConv2D, backendName: 'wasm', setupFunc: native?.setupFunc, kernelFunc: fusedConv2D };
}
