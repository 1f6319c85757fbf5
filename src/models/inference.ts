/**
 * A loaded model rearranged for inference: every BatchNormalization that follows a linear
 * convolution is folded into it, and the ReLU (or residual Add and ReLU) after it runs in
 * the convolution's epilogue. At inference BatchNorm is a per-channel affine map of the
 * convolution's output, y * k + (beta - mean * k) with k = gamma / sqrt(variance + epsilon),
 * so the convolution by the kernel scaled by k, plus that bias, computes the same thing:
 *
 *   Conv -> BN -> ReLU                       Conv2D(kernel * k, bias, relu)        (FusedConv2D)
 *   Conv -> BN -> Add(shortcut) -> ReLU      ResidualConv2D([x, shortcut])          (SvhnConv2DBiasAddRelu)
 *   Conv -> BN                               Conv2D(kernel * k, bias)              (FusedConv2D)
 *
 * The resnet's 21 BatchNorms, 19 ReLUs and 9 Adds go (each a pass over an activation); the
 * notebook models have no BatchNorm after a linear convolution and come back unchanged.
 * Values differ from the unfolded model's by float32 rounding (the kernel is scaled before
 * the sums instead of the sums after), within 1e-5 on the probabilities
 * (test/models/inference.test.ts).
 *
 * Only the model in memory changes: the directory's model.json and weights.bin stay the
 * stock Keras layers they were (a folded model is never saved).
 *
 * predict and evaluate also run each of their batches as one (wholeBatch, below).
 */
import * as tf from '@tensorflow/tfjs';
import { CONV2D_BIAS_ADD_RELU } from '../backend/kernels/conv2d.js';
import type { ConvInternals } from './fusedConv.js';
import type { BatchNormInternals } from './syncBatchNorm.js';

type Padding = 'valid' | 'same';
type Layer = tf.layers.Layer;
type Symbolic = tf.SymbolicTensor;

/** relu(conv2d(x, filter) + bias + residual), NHWC; one kernel where the backend has it (wasm), else three ops. */
export function conv2dBiasAddRelu(
  x: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor1D, residual: tf.Tensor4D, strides: [number, number], pad: Padding,
): tf.Tensor4D {
  if (tf.getKernel(CONV2D_BIAS_ADD_RELU, tf.getBackend())) {
    const attrs = { strides, pad, dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined };
    return tf.engine().runKernel(CONV2D_BIAS_ADD_RELU, { x, filter, bias, residual }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
  }
  return tf.tidy(() => tf.relu(tf.add(tf.fused.conv2d({ x, filter, bias, strides, pad }), residual)) as tf.Tensor4D);
}

interface ResidualConv2DArgs {
  name: string;
  filters: number;
  kernelSize: [number, number];
  strides: [number, number];
  padding: Padding;
  /** [kernel, bias], set when the layer is built. */
  weights: tf.Tensor[];
}

/**
 * relu(conv2d(x) + bias + shortcut) on inputs [x, shortcut]: a residual block's last
 * convolution with its folded BatchNorm, the Add and the ReLU. In memory only: not
 * registered for deserialization, never saved.
 */
export class ResidualConv2D extends tf.layers.Layer {
  static className = 'SvhnResidualConv2D';
  private readonly filters: number;
  private readonly kernelSize: [number, number];
  private readonly strides: [number, number];
  private readonly padding: Padding;
  private kernel?: tf.LayerVariable;
  private bias?: tf.LayerVariable;

  constructor(args: ResidualConv2DArgs) {
    super({ name: args.name, weights: args.weights });
    this.filters = args.filters;
    this.kernelSize = args.kernelSize;
    this.strides = args.strides;
    this.padding = args.padding;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const inChannels = (inputShape as tf.Shape[])[0]![3]!;
    const zeros = tf.initializers.zeros();
    this.kernel = this.addWeight('kernel', [...this.kernelSize, inChannels, this.filters], 'float32', zeros);
    this.bias = this.addWeight('bias', [this.filters], 'float32', zeros);
    this.built = true;
  }

  /** The shortcut's shape: the sum has it. */
  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return (inputShape as tf.Shape[])[1]!;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const [x, shortcut] = inputs as [tf.Tensor4D, tf.Tensor4D];
    return tf.tidy(() => conv2dBiasAddRelu(x, this.kernel!.read() as tf.Tensor4D, this.bias!.read() as tf.Tensor1D, shortcut, this.strides, this.padding));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), filters: this.filters, kernelSize: this.kernelSize, strides: this.strides, padding: this.padding };
  }
}

/** The layer whose (only) output `t` is, when it was called once. */
function producer(t: Symbolic): Layer {
  return t.sourceLayer as Layer;
}

/** The symbolic inputs of a layer called once. */
function inputsOf(layer: Layer): Symbolic[] {
  return layer.inboundNodes[0]!.inputTensors;
}

/** A linear, channels-last, 2-D convolution, dilation 1, 'same' or 'valid': what folding can take. */
function isFoldableConv(layer: Layer): boolean {
  if (layer.getClassName() !== 'Conv2D') return false;
  const c = layer as unknown as ConvInternals;
  const dilations = typeof c.dilationRate === 'number' ? [c.dilationRate] : c.dilationRate;
  return c.rank === 2 && c.dataFormat === 'channelsLast' && dilations.every((d) => d === 1)
    && (c.padding === 'same' || c.padding === 'valid') && (c.activation?.getClassName() ?? 'linear') === 'linear';
}

function isChannelBatchNorm(layer: Layer): boolean {
  if (layer.getClassName() !== 'BatchNormalization') return false;
  const axis = (layer as unknown as BatchNormInternals).axis;
  return axis === -1 || axis === 3;
}

function isRelu(layer: Layer): boolean {
  const name = layer.getClassName();
  if (name === 'ReLU') return (layer as unknown as { maxValue?: number | null }).maxValue == null;
  if (name === 'Activation') return (layer as unknown as { activation: { getClassName(): string } }).activation.getClassName() === 'relu';
  return false;
}

/** The conv kernel scaled by the BatchNorm's k per output channel and the bias that goes with it (float64 arithmetic, float32 results). */
function foldedWeights(conv: Layer, bn: Layer): [tf.Tensor4D, tf.Tensor1D] {
  const c = conv as unknown as ConvInternals;
  const n = bn as unknown as BatchNormInternals;
  const [kernelT, convBiasT] = conv.getWeights();
  const kernel = kernelT!.dataSync();
  const co = c.filters;
  const values = (v: tf.LayerVariable | null | undefined, fallback: number) => (v ? Float64Array.from(v.read().dataSync()) : new Float64Array(co).fill(fallback));
  const gamma = values(n.gamma, 1);
  const beta = values(n.beta, 0);
  const mean = values(n.movingMean, 0);
  const variance = values(n.movingVariance, 1);
  const convBias = c.useBias && convBiasT ? Float64Array.from(convBiasT.dataSync()) : new Float64Array(co);
  const k = gamma.map((g, i) => g / Math.sqrt(variance[i]! + n.epsilon));
  const scaled = new Float32Array(kernel.length);
  for (let i = 0; i < kernel.length; i++) scaled[i] = kernel[i]! * k[i % co]!; // [kh, kw, ci, co]: channel last
  const bias = Float32Array.from(k, (ki, i) => (convBias[i]! - mean[i]!) * ki + beta[i]!);
  return [tf.tensor4d(scaled, kernelT!.shape as [number, number, number, number]), tf.tensor1d(bias)];
}

/**
 * The model with its BatchNorms folded (above), sharing the layers that do not change, or
 * `model` itself when nothing folds. Takes ownership: `model` is disposed when a new one is
 * returned (the shared layers live on in it), so the caller disposes only the result.
 */
export function foldBatchNorms(model: tf.LayersModel): tf.LayersModel {
  // Layers called more than once (shared) would need per-call bookkeeping; svhn's models have none.
  if (model.inputs.length !== 1 || model.layers.some((l) => l.inboundNodes.length > 1)) return model;
  const consumers = new Map<Symbolic, Layer[]>();
  for (const layer of model.layers) {
    for (const t of layer.inboundNodes[0]?.inputTensors ?? []) consumers.set(t, [...(consumers.get(t) ?? []), layer]);
  }
  const outputs = new Set(model.outputs);
  /** The layer that alone reads `t` (and `t` is no model output), else undefined. */
  const soleConsumer = (t: Symbolic): Layer | undefined => {
    const c = consumers.get(t) ?? [];
    return c.length === 1 && !outputs.has(t) ? c[0] : undefined;
  };
  /** The BatchNorm that `conv` feeds alone, where the pair folds. */
  const foldedBn = (conv: Layer): Layer | undefined => {
    if (!isFoldableConv(conv)) return undefined;
    const bn = soleConsumer(conv.output as Symbolic);
    return bn && isChannelBatchNorm(bn) ? bn : undefined;
  };
  if (!model.layers.some((l) => foldedBn(l))) return model;

  const built = new Map<Symbolic, Symbolic>();
  const created: tf.Tensor[] = [];
  const foldedConv = (conv: Layer, bn: Layer, activation: 'linear' | 'relu', x: Symbolic): Symbolic => {
    const c = conv as unknown as ConvInternals;
    const weights = foldedWeights(conv, bn);
    created.push(...weights);
    return tf.layers.conv2d({
      name: conv.name, filters: c.filters, kernelSize: c.kernelSize, strides: c.strides, padding: c.padding as Padding,
      useBias: true, activation, weights,
    }).apply(rebuild(x)) as Symbolic;
  };
  /** The new graph's tensor for the old graph's `t`, built on first use (depth first from the outputs). */
  const rebuild = (t: Symbolic): Symbolic => {
    const done = built.get(t);
    if (done) return done;
    const layer = producer(t);
    let out: Symbolic | undefined;
    if (layer.getClassName() === 'InputLayer') {
      out = tf.input({ shape: t.shape.slice(1), dtype: t.dtype, name: layer.name });
    } else if (isRelu(layer)) {
      out = fuseIntoConv(layer);
    } else if (isChannelBatchNorm(layer)) {
      const conv = producer(inputsOf(layer)[0]!);
      if (foldedBn(conv) === layer) out = foldedConv(conv, layer, 'linear', inputsOf(conv)[0]!);
    }
    out ??= layer.apply(inputsOf(layer).length === 1 ? rebuild(inputsOf(layer)[0]!) : inputsOf(layer).map(rebuild)) as Symbolic;
    built.set(t, out);
    return out;
  };
  /** A ReLU after Conv -> BN, or after Conv -> BN -> Add: that chain as one layer, else undefined. */
  const fuseIntoConv = (relu: Layer): Symbolic | undefined => {
    const before = producer(inputsOf(relu)[0]!);
    if (soleConsumer(before.output as Symbolic) !== relu) return undefined;
    if (isChannelBatchNorm(before)) {
      const conv = producer(inputsOf(before)[0]!);
      return foldedBn(conv) === before ? foldedConv(conv, before, 'relu', inputsOf(conv)[0]!) : undefined;
    }
    if (before.getClassName() !== 'Add' || inputsOf(before).length !== 2) return undefined;
    const branches = inputsOf(before);
    const main = branches.findIndex((b) => {
      const bn = producer(b);
      return soleConsumer(b) === before && isChannelBatchNorm(bn) && foldedBn(producer(inputsOf(bn)[0]!)) === bn;
    });
    if (main < 0) return undefined;
    const bn = producer(branches[main]!);
    const conv = producer(inputsOf(bn)[0]!);
    const c = conv as unknown as ConvInternals;
    const weights = foldedWeights(conv, bn);
    created.push(...weights);
    const layer = new ResidualConv2D({
      name: conv.name, filters: c.filters, kernelSize: [c.kernelSize[0]!, c.kernelSize[1]!],
      strides: [c.strides[0]!, c.strides[1]!], padding: c.padding as Padding, weights,
    });
    return layer.apply([rebuild(inputsOf(conv)[0]!), rebuild(branches[1 - main]!)]) as Symbolic;
  };

  try {
    const folded = tf.model({ name: model.name, inputs: rebuild(model.inputs[0]!), outputs: model.outputs.map(rebuild) });
    model.dispose();
    return folded;
  } finally {
    tf.dispose(created); // the layers hold copies (set when built)
  }
}

/**
 * model.predict's options for running `n` images as one batch. tfjs-layers cuts its input into
 * batches of 32 by default, and every layer then runs 8 times for the default 256 images: on
 * 2 threads that cost ~35% of the CPU time per image of the notebook models' inference and ~10%
 * of the resnet's (measured: optimized 0.51 -> 0.34 ms, baseline 0.43 -> 0.28, resnet 2.1 ->
 * 1.9, CPU time per image under load). An image's probabilities do not depend on the batch
 * it is in (bit for bit on wasm, 1 and 2 threads: test/models/inference.test.ts). Memory: the
 * activations of `n` images at once (the resnet's largest, 64 KiB an image, a few alive).
 */
export function wholeBatch(n: number): { batchSize: number } {
  return { batchSize: Math.max(1, n) };
}
