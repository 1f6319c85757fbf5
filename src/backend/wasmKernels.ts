/**
 * The kernels that make tfjs-backend-wasm 4.22 train svhn's models, registered through
 * tfjs's kernel registry (a native kernel is unregistered first where we replace it):
 *
 * | kernel               | why                                                         |
 * | -------------------- | ----------------------------------------------------------- |
 * | Conv2DBackpropFilter | missing (tfjs #8474): SIMD loop straight from x and dy (any stride; x zero-padded for 'same'), else im2col^T x dy, one XNNPACK matmul |
 * | Conv2DBackpropInput  | native is a scalar loop: SIMD scatter from dy (valid, or strided), the Conv2D loop with the flipped filter ('same' at stride 1), else XNNPACK convolution (or matmul) |
 * | Conv2D               | valid or 'same', any stride: SIMD loop without repacking W (all threads: convTeam.ts) |
 * | SvhnConv2DBiasRelu   | new: relu(conv + bias), the Conv2D loop + a per-tile epilogue (models/fusedConv.ts) |
 * | FusedConv2D          | bias and ReLU or none (every model's inference; the resnet's training): the Conv2D loop + epilogue; else native |
 * | SvhnConv2DBiasAddRelu | new: relu(conv + bias + residual), a residual block's end at inference (models/inference.ts) |
 * | SvhnReluBiasGrad     | new: its backward up to the conv: dy * step(y) and the bias sum in one SIMD pass |
 * | MaxPoolGrad          | native routes wrongly when a window's max is <= 0: SIMD     |
 * |                      | after a SvhnConv2DBiasRelu: also ReLU's mask and the bias sums (reluOutputs.ts) |
 * | Sum, Mean            | native accumulates in float32: float64 like cpu              |
 * | OneHot               | native writes int32 bits into float32 outputs               |
 * | Tile                 | native is slow on BatchNorm's gradient: block copies        |
 * | BatchMatMul          | XNNPACK repacks W every step: SIMD gemm reading A or A^T in place (single matrices) |
 * | FusedBatchNorm       | native ~9 ms on layer 1: x*k+a in one SIMD pass, ~1 ms       |
 * | Identity             | native copies (~12 ms a step): share the buffer, like cpu    |
 * | Cast                 | native copies even to the same dtype: share the buffer       |
 * | Slice                | native copies all of x first: a contiguous slice is one copy from the heap |
 * | SvhnAdamUpdate       | new: Adam's 12 ops per variable in one SIMD pass (train/adam), two replicas' gradients combined in it |
 *
 * SyncBatchNormalization (models/syncBatchNorm.ts) runs its passes through ./kernels/syncBn.ts.
 *
 * It also replaces the gradients of FusedBatchNorm, Mean, Sum, Relu and Square while wasm is
 * the active backend (./kernels/gradients.ts: BatchNorm's backward pass in one pass). The
 * hot loops of these JS kernels run in a small wasm SIMD module on the backend's heap
 * (./kernels/simd.ts loads it), with JS fallbacks. The loops are C in ./kernels/simd/*.c,
 * compiled by `npm run build:kernels` (clang-19) into the committed modules beside them.
 *
 * Each is tested against the cpu backend (test/backend/). Threads: the kernels are the same
 * for the single-threaded and the threaded build (index.ts picks the build; XNNPACK's own
 * operators use its pool; the forward convolutions' tiles are shared by the calling thread
 * and helper threads on the same heap, ./kernels/convTeam.ts; our other loops stay on the
 * calling thread).
 */
import * as tf from '@tensorflow/tfjs';
import { adamUpdateConfig } from './kernels/adam.js';
import { batchMatMulConfig } from './kernels/batchMatMul.js';
import { fusedBatchNormConfig } from './kernels/batchNorm.js';
import { castConfig } from './kernels/cast.js';
import { CONV2D_BIAS_ADD_RELU, CONV2D_BIAS_RELU, conv2DBiasAddReluConfig, conv2DBiasReluConfig, conv2DConfig, fusedConv2DConfig } from './kernels/conv2d.js';
import { conv2DBackpropFilterConfig, conv2DBackpropInputConfig } from './kernels/conv2dBackprop.js';
import { registerWasmGradients, reluBiasGradConfig } from './kernels/gradients.js';
import { captureNative } from './kernels/heap.js';
import { identityConfig } from './kernels/identity.js';
import { maxPoolGradConfig } from './kernels/maxPoolGrad.js';
import { oneHotConfig } from './kernels/oneHot.js';
import { meanConfig, sumConfig } from './kernels/reduce.js';
import { sliceConfig } from './kernels/slice.js';
import { tileConfig } from './kernels/tile.js';

export interface WasmKernelOptions {
  threads: number;
}

/** Set on globalThis so a second copy of this module (src and dist) registers nothing. */
const REGISTERED = Symbol.for('svhn.wasmTrainingKernels');

/** The kernel names this module registers for 'wasm'. */
export const WASM_TRAINING_KERNELS: readonly string[] = [
  tf.Conv2DBackpropFilter, tf.Conv2DBackpropInput, tf.MaxPoolGrad, tf.Sum, tf.Mean,
  tf.OneHot, tf.Tile, tf.BatchMatMul, tf.FusedBatchNorm, tf.Identity, tf.Cast, adamUpdateConfig.kernelName, tf.Conv2D,
  tf.Slice,
  CONV2D_BIAS_RELU, reluBiasGradConfig.kernelName, tf.FusedConv2D, CONV2D_BIAS_ADD_RELU,
];

/**
 * Registers svhn's wasm kernels; idempotent. Call after importing
 * '@tensorflow/tfjs-backend-wasm' (which registers the native kernels), before or after
 * tf.setBackend('wasm'): no replacement needs a setup step of its own.
 */
export function registerWasmTrainingKernels(_opts: WasmKernelOptions): void {
  const g = globalThis as { [REGISTERED]?: boolean };
  if (g[REGISTERED]) return;
  // Keep the natives our kernels call (and the one BatchMatMul wraps) before replacing any.
  for (const name of [tf.Transpose, tf.BatchMatMul, tf.FusedBatchNorm, tf.Multiply, tf.Add, tf.Cast, tf.FusedConv2D]) captureNative(name);
  const configs = [
    conv2DBackpropFilterConfig, conv2DBackpropInputConfig, maxPoolGradConfig, sumConfig, meanConfig,
    oneHotConfig, tileConfig, batchMatMulConfig(), fusedBatchNormConfig(), identityConfig, castConfig, adamUpdateConfig, conv2DConfig(),
    conv2DBiasReluConfig(), reluBiasGradConfig, fusedConv2DConfig(), conv2DBiasAddReluConfig(), sliceConfig(),
  ];
  for (const config of configs) {
    if (tf.getKernel(config.kernelName, 'wasm')) tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel(config);
  }
  registerWasmGradients();
  g[REGISTERED] = true;
}
