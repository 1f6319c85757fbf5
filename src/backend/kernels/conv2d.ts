/**
 * The forward convolutions on wasm: Conv2D (the notebook models' training forward pass),
 * FusedConv2D (every model's inference, with its bias and ReLU; plain, the resnet's training
 * forward pass), SvhnConv2DBiasRelu (the conv layers' bias and ReLU while training,
 * models/fusedConv.ts) and SvhnConv2DBiasAddRelu (a residual block's end at inference,
 * models/inference.ts). All run one wasm SIMD loop straight from x in NHWC (simd/conv.c
 * convRows): no im2col and no XNNPACK repacking of a filter that changes every step;
 * unpadded or padded ('same': the loop reads a zero-padded copy of x, ./padding.ts), at
 * stride 1 or more (strided: one output row a call). Output pixels go in tiles of heap.ts
 * TILE_BYTES, one call per tile and block of 16 (then 4) output channels, then the tile's
 * epilogue (bias, residual, ReLU) while it is in L1 (convTiles.ts).
 * In a training step of batch 64 (~32 GFLOP/s on layers 2 and 3): layer 1 ~4.7 -> ~3.9 ms,
 * layer 2 ~13.7 -> ~11.6, layer 3 ~5.7 -> ~4.5. At inference on one thread the notebook
 * models ran 1.1-1.35x faster than on XNNPACK's FusedConv2D.
 * On the threaded build every thread takes tiles: the calling thread and helper threads with
 * the SIMD module on the same shared heap (convTeam.ts). Every other geometry, and runtimes
 * without the SIMD module, run the native kernel.
 */
import * as tf from '@tensorflow/tfjs';
import { convTeam } from './convTeam.js';
import { EPILOGUE, runConvTile, tileCount, tileLayout, type ConvJob, type Epilogue } from './convTiles.js';
import { asWasm, captureNative, f32, release, runNative, TILE_BYTES } from './heap.js';
import { isPadded, padImages, type Pads } from './padding.js';
import { markReluOutput } from './reluOutputs.js';
import { isSharedMemory, simdKernels, wasmMemory } from './simd.js';

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
  return directConv2D(b, x, filter, NO_EPILOGUE, attrs as unknown as Conv2DAttrs) ?? runNative(tf.Conv2D, b, inputs, attrs);
}

/** What the direct convolution does to each tile after writing it (convTiles.ts EPILOGUE). */
interface ConvEpilogue {
  kind: Epilogue;
  /** float32[co] on the heap (BIAS, BIAS_RELU, BIAS_ADD_RELU). */
  bias?: tf.TensorInfo;
  /** float32 [n, oh, ow, co] on the heap, added before the ReLU (BIAS_ADD_RELU). */
  residual?: tf.TensorInfo;
}
const NO_EPILOGUE: ConvEpilogue = { kind: EPILOGUE.NONE };

/**
 * The direct SIMD convolution of x by filter into a new [n, oh, ow, co] output, or undefined
 * where the geometry or runtime does not allow it (the caller runs a native kernel then).
 * Each tile of output pixels gets its epilogue right after its channel blocks are written:
 * the tile is still in L1, so adding a bias, a residual and a ReLU costs a fraction of
 * separate Add and Relu passes over the whole tensor (convTiles.ts). On the threaded build
 * (a shared heap) the tiles are split between this thread and the team's helpers
 * (convTeam.ts); without a team there, the native kernel runs (XNNPACK on its pool).
 */
function directConv2D(
  b: ReturnType<typeof asWasm>, x: tf.TensorInfo, filter: tf.TensorInfo, epilogue: ConvEpilogue, attrs: Conv2DAttrs,
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
  const memory = sharedMemory(b);
  const team = memory ? convTeam(memory, threadsOf(b)) : undefined;
  const direct = simd && dataFormat === 'NHWC' && co % 4 === 0 && x.dtype === 'float32' && filter.dtype === 'float32'
    && info.dilationHeight === 1 && info.dilationWidth === 1
    && Math.min(pads.top, pads.bottom, pads.left, pads.right) >= 0 && (oh - 1) * sh + kh <= h && (ow - 1) * sw + kw <= w
    && (!memory || team);
  if (!direct) return undefined;
  const xp = isPadded(pads) ? padImages(b, x, pads, team ? { simd, team } : undefined) : x;
  const out = b.makeOutput([n, oh, ow, co], 'float32');
  // k = 1 and bias 0 for the epilogues that add (convTiles.ts), on the heap beside each other.
  const constants = epilogue.kind === EPILOGUE.BIAS || epilogue.kind === EPILOGUE.BIAS_ADD_RELU ? b.makeOutput([2 * co], 'float32') : undefined;
  // Views after the last allocation (an allocation may move the heap).
  const at = (t: tf.TensorInfo | undefined) => (t ? f32(b, t).byteOffset : 0);
  if (constants) f32(b, constants).fill(1, 0, co).fill(0, co);
  const job: ConvJob = {
    kind: 'conv', x: at(xp), filter: at(filter), y: at(out), bias: at(epilogue.bias), residual: at(epilogue.residual),
    ones: at(constants), zeros: constants ? at(constants) + co * 4 : 0,
    n, h, w, ci, oh, ow, co, kh, kw, sh, sw, epilogue: epilogue.kind, ...tileLayout(n, oh, ow * co * 4, TILE_BYTES),
  };
  try {
    if (team) {
      team.run(simd, job);
    } else {
      const tiles = tileCount(n, job);
      for (let t = 0; t < tiles; t++) runConvTile(simd, job, t);
    }
  } finally {
    if (xp !== x) release(b, xp);
    if (constants) release(b, constants);
  }
  return out;
}

/**
 * The direct SIMD convolution at stride 1 with explicit padding (conv2dBackprop.ts runs a
 * 'same' layer's input gradient through it), or undefined where it does not apply.
 */
export function directConv2DPadded(b: ReturnType<typeof asWasm>, x: tf.TensorInfo, filter: tf.TensorInfo, p: Pads): tf.TensorInfo | undefined {
  const pad = [[0, 0], [p.top, p.bottom], [p.left, p.right], [0, 0]] as tf.backend_util.ExplicitPadding;
  return directConv2D(b, x, filter, NO_EPILOGUE, { strides: 1, pad, dataFormat: 'NHWC', dilations: 1 });
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
  const perChannel = isChannelBias(bias, co);
  const out = perChannel ? directConv2D(b, x, filter, { kind: EPILOGUE.BIAS_RELU, bias }, a) : undefined;
  const y = out ?? runNative(tf.FusedConv2D, b, { x, filter, bias }, { ...attrs, activation: 'relu' });
  markReluOutput(y); // >= 0 or NaN on every path: MaxPoolGrad may apply the ReLU's step (reluOutputs.ts)
  return y;
}

/** Kernel name of relu(conv2d(x, filter) + bias + residual), NHWC, bias [outChannels] (models/inference.ts). */
export const CONV2D_BIAS_ADD_RELU = 'SvhnConv2DBiasAddRelu';

/**
 * SvhnConv2DBiasAddRelu: y = relu(conv2d(x, filter) + bias + residual) in one kernel, the end
 * of a residual block at inference once its BatchNorm is folded into the convolution
 * (models/inference.ts). Inputs x, filter, bias (float32[co]), residual (the output's shape);
 * attrs as Conv2D's. The direct SIMD loop with its epilogue where it applies, else the native
 * FusedConv2D, Add and Relu.
 */
function conv2DBiasAddRelu({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const b = asWasm(backend);
  const { x, filter, bias, residual } = inputs as { x: tf.TensorInfo; filter: tf.TensorInfo; bias: tf.TensorInfo; residual: tf.TensorInfo };
  const a = attrs as unknown as Conv2DAttrs;
  const { outShape } = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], filter.shape as [number, number, number, number], a.strides, a.dilations, a.pad, a.dimRoundingMode,
  );
  if (!tf.util.arraysEqual(outShape, residual.shape)) {
    throw new Error(`${CONV2D_BIAS_ADD_RELU}: residual shape ${residual.shape} differs from the convolution's ${outShape}`);
  }
  const co = filter.shape[3];
  const fits = isChannelBias(bias, co) && residual.dtype === 'float32';
  const out = fits ? directConv2D(b, x, filter, { kind: EPILOGUE.BIAS_ADD_RELU, bias, residual }, a) : undefined;
  if (out) return out;
  const y = runNative(tf.FusedConv2D, b, { x, filter, bias }, { ...attrs, activation: 'linear' });
  const sum = runNative(tf.Add, b, { a: y, b: residual });
  release(b, y);
  const relu = runNative(tf.Relu, b, { x: sum });
  release(b, sum);
  return relu;
}

/**
 * FusedConv2D: the direct loop, its epilogue adding the bias (per channel) and applying the
 * ReLU when asked. Without bias or activation it is the resnet's training forward pass (each
 * convolution followed by a BatchNorm: tfjs-layers calls the fused op, which tfjs-core keeps
 * fused under a gradient tape when the activation is linear); with them, inference (the
 * notebook models' conv layers, the resnet's with its BatchNorms folded in: models/inference.ts).
 * Other activations, PReLU weights and other bias shapes run the native kernel.
 */
function fusedConv2D({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const b = asWasm(backend);
  const { x, filter, bias, preluActivationWeights } = inputs as Record<string, tf.TensorInfo | undefined>;
  const a = attrs as unknown as Conv2DAttrs & { activation?: string };
  const activation = a.activation ?? 'linear';
  const co = filter!.shape[3];
  const perChannel = bias !== undefined && isChannelBias(bias, co);
  const epilogue: ConvEpilogue | undefined = preluActivationWeights || (bias && !perChannel) ? undefined
    : activation === 'linear' ? (bias ? { kind: EPILOGUE.BIAS, bias } : NO_EPILOGUE)
      : activation === 'relu' && bias ? { kind: EPILOGUE.BIAS_RELU, bias }
        : undefined;
  return (epilogue ? directConv2D(b, x!, filter!, epilogue, a) : undefined) ?? runNative(tf.FusedConv2D, b, inputs, attrs);
}

/** The threads the backend's build runs (its pool and the calling thread), as getThreadsCount() says. */
function threadsOf(b: ReturnType<typeof asWasm>): number {
  return (b.wasm as unknown as { tfjs?: { getThreadsCount?(): number } }).tfjs?.getThreadsCount?.() ?? 1;
}

/** The threaded build's shared WebAssembly.Memory, or undefined on the single-threaded build. */
function sharedMemory(b: ReturnType<typeof asWasm>): object | undefined {
  const memory = wasmMemory(b);
  return isSharedMemory(memory) ? (memory as object) : undefined;
}

/** A float32[co] bias, one value per output channel: what the loop's epilogues add. */
function isChannelBias(bias: tf.TensorInfo, co: number): boolean {
  return bias.dtype === 'float32' && bias.shape.length === 1 && bias.shape[0] === co;
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
export function conv2DBiasAddReluConfig(): tf.KernelConfig {
  const native = captureNative(tf.FusedConv2D);
  return { kernelName: CONV2D_BIAS_ADD_RELU, backendName: 'wasm', setupFunc: native?.setupFunc, kernelFunc: conv2DBiasAddRelu };
}

/** Built at registration: its fallback is the native FusedConv2D, whose setup it must run. */
export function fusedConv2DConfig(): tf.KernelConfig {
  const native = captureNative(tf.FusedConv2D);
  return { kernelName: tf.FusedConv2D, backendName: 'wasm', setupFunc: native?.setupFunc, kernelFunc: fusedConv2D };
}
