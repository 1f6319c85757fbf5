/**
 * The conv layers' relu(conv2d(x, w) + b) as one op with one gradient, for training.
 *
 * tfjs-layers' Conv2D calls tf.fused.conv2d, which fuses bias and ReLU only while no gradient
 * tape is recording (tfjs-core's shouldFuse): in a training step each conv layer ran Conv2D,
 * an Add of the bias and a Relu, and in the backward pass Relu's gradient, a Sum over N, H, W
 * for the bias gradient, then Conv2DBackpropInput and Conv2DBackpropFilter. Here:
 *   forward   y = relu(conv2d(x, w) + b)    one kernel on wasm (SvhnConv2DBiasRelu:
 *                                           backend/kernels/conv2d.ts), FusedConv2D elsewhere
 *   backward  dyR = dy * step(y), db = sum(dyR over N, H, W)    one pass on wasm
 *                                           (SvhnReluBiasGrad: backend/kernels/gradients.ts)
 *             dx = Conv2DBackpropInput(dyR, w), dw = Conv2DBackpropFilter(x, dyR)
 * The same derivatives as tfjs-core's chain (y > 0 exactly where conv + b > 0), checked
 * against the cpu backend in test/models/fusedConv.test.ts.
 *
 * ReluConv2D is tfjs-layers' Conv2D with this op in training calls. It reports the class
 * name Conv2D and is not registered for deserialization, so model.json says Conv2D and
 * stock tf.loadLayersModel rebuilds a plain Conv2D with the same config and weights (same
 * names, same order); inference runs tfjs-layers' own code (FusedConv2D, fused already).
 */
import * as tf from '@tensorflow/tfjs';
import { CONV2D_BIAS_RELU } from '../backend/kernels/conv2d.js';
import { RELU_BIAS_GRAD } from '../backend/kernels/gradients.js';

type Padding = 'valid' | 'same';

interface ConvAttrs {
  strides: [number, number];
  pad: Padding;
  dataFormat: 'NHWC';
  dilations: [number, number];
  dimRoundingMode: undefined;
}

/**
 * Makes sure the active backend has SvhnConv2DBiasRelu: on wasm svhn registers its own
 * (backend/wasmKernels.ts); elsewhere (cpu, tensorflow) it is the backend's FusedConv2D with
 * activation relu, registered here on first use.
 */
function ensureKernel(): void {
  const backendName = tf.getBackend();
  if (tf.getKernel(CONV2D_BIAS_RELU, backendName)) return;
  const fused = tf.getKernel(tf.FusedConv2D, backendName);
  if (!fused) throw new Error(`${CONV2D_BIAS_RELU}: backend ${backendName} has no FusedConv2D to run it with`);
  tf.registerKernel({
    kernelName: CONV2D_BIAS_RELU,
    backendName,
    setupFunc: fused.setupFunc,
    kernelFunc: (args) => fused.kernelFunc({ ...args, attrs: { ...args.attrs, activation: 'relu' } }),
  });
}

/**
 * relu(conv2d(x, filter) + bias) for NHWC x [n, h, w, ci], filter [kh, kw, ci, co], bias
 * [co], stride `strides`, dilation 1; its gradient is registered below. A registered kernel
 * rather than tf.customGrad: a gradient config hands the tape one closure per input, so the
 * first layer's dx (its input is the data, which needs none) is never computed; customGrad
 * computes every input's gradient.
 */
export function conv2dBiasRelu(
  x: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor1D, strides: [number, number], pad: Padding,
): tf.Tensor4D {
  ensureKernel();
  const attrs: ConvAttrs = { strides, pad, dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined };
  return tf.engine().runKernel(CONV2D_BIAS_RELU, { x, filter, bias }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

/**
 * The gradient of y = relu(conv2d(x, filter) + bias) from the saved x, filter and y:
 *   dyR = dy * step(y), db = sum(dyR) over N, H, W    (one kernel on wasm, see above)
 *   dx = Conv2DBackpropInput(dyR, filter), dw = Conv2DBackpropFilter(x, dyR)    (each only if asked)
 * dyR lives in the backward pass's tidy scope (the tape calls the closures after this returns).
 */
const conv2dBiasReluGradConfig: tf.GradConfig = {
  kernelName: CONV2D_BIAS_RELU,
  inputsToSave: ['x', 'filter'],
  outputsToSave: [true],
  gradFunc: (dyIn, saved, attrs) => {
    const dy = (Array.isArray(dyIn) ? dyIn[0]! : dyIn) as tf.Tensor4D;
    const [x, filter, y] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
    const conv = attrs as unknown as ConvAttrs;
    const [dyR, db] = reluBiasGradient(dy, y);
    return {
      x: () => tf.engine().runKernel(tf.Conv2DBackpropInput, { dy: dyR, filter },
        { ...conv, inputShape: x.shape } as unknown as tf.NamedAttrMap) as tf.Tensor,
      filter: () => tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy: dyR },
        { ...conv, filterShape: filter.shape } as unknown as tf.NamedAttrMap) as tf.Tensor,
      bias: () => db,
    };
  },
};

// Gradients are global in tfjs: once per process (src and dist copies of this module share it).
if (!tf.getGradient(CONV2D_BIAS_RELU)) tf.registerGradient(conv2dBiasReluGradConfig);

/**
 * [dy * step(y), its sum over every axis but channels]: Relu's gradient and the bias
 * gradient, in one kernel where the backend has it (wasm), else as Relu's and Add's
 * gradients compute them in tfjs-core (mul by step, then sum).
 */
function reluBiasGradient(dy: tf.Tensor4D, y: tf.Tensor4D): [tf.Tensor4D, tf.Tensor1D] {
  if (tf.getKernel(RELU_BIAS_GRAD, tf.getBackend()) && dy.dtype === 'float32' && y.dtype === 'float32'
    && tf.util.arraysEqual(dy.shape, y.shape)) {
    return tf.engine().runKernel(RELU_BIAS_GRAD, { dy, y }) as unknown as [tf.Tensor4D, tf.Tensor1D];
  }
  return tf.tidy(() => {
    const dyR = tf.mul(dy, tf.step(y));
    return [dyR, tf.sum(dyR, [0, 1, 2])];
  }) as [tf.Tensor4D, tf.Tensor1D];
}

/** The parts of a tfjs-layers Conv2D this file and models/inference.ts read (its fields are not in its public type). */
export interface ConvInternals {
  rank: number;
  filters: number;
  kernelSize: number[];
  strides: number[];
  padding: string;
  dataFormat: string;
  dilationRate: number | number[];
  useBias: boolean;
  activation: { getClassName(): string } | null;
  kernel: tf.LayerVariable;
  bias: tf.LayerVariable | null;
}

/** tfjs-layers does not export the class itself; its factory's instances have it as constructor. */
const Conv2D = tf.layers.conv2d({ filters: 1, kernelSize: 1 }).constructor as new (
  args: Parameters<typeof tf.layers.conv2d>[0],
) => tf.layers.Layer;

/**
 * Conv2D whose training calls (kwargs.training) run conv2dBiasRelu when the layer is a
 * 2-D, channels-last, biased, relu, dilation-1 convolution with 'valid' or 'same' padding
 * (the models' conv layers); everything else, and every inference call, is Conv2D's own.
 */
export class ReluConv2D extends Conv2D {
  /** What getClassName() and model.json report: saved models are plain Conv2D (see above). */
  static className = 'Conv2D';

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }): tf.Tensor | tf.Tensor[] {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    const self = this as unknown as ConvInternals;
    const dilations = typeof self.dilationRate === 'number' ? [self.dilationRate] : self.dilationRate;
    const fusable = kwargs?.training === true && self.rank === 2 && x.rank === 4 && self.dataFormat === 'channelsLast'
      && self.useBias && self.bias !== null && self.activation?.getClassName() === 'relu'
      && dilations.every((d) => d === 1) && (self.padding === 'valid' || self.padding === 'same');
    if (!fusable) return super.call(inputs, kwargs);
    // The layer's tidy: the variables' reads are views, the output is kept by the caller's scope.
    return tf.tidy(() => conv2dBiasRelu(
      x as tf.Tensor4D, self.kernel.read() as tf.Tensor4D, self.bias!.read() as tf.Tensor1D,
      [self.strides[0]!, self.strides[1]!], self.padding as Padding,
    ));
  }
}
