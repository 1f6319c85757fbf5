/**
 * What MaxPoolGrad knows about the conv layers' ReLU outputs, passed on to SvhnReluBiasGrad.
 *
 * In the models a conv layer's y = relu(conv + b) (SvhnConv2DBiasRelu) feeds a 2x2 MaxPool,
 * so in the backward pass MaxPoolGrad(dy, y) comes right before SvhnReluBiasGrad(its output,
 * y). MaxPoolGrad's output is zero except at each window's winner, so MaxPoolGrad can apply
 * ReLU's step there and sum the bias gradient over the pooled grid (4x fewer values);
 * SvhnReluBiasGrad then skips its full-resolution pass (maxPoolGrad.ts, gradients.ts).
 * Keyed by dataId (held weakly: entries go with their buffers).
 */
import type * as tf from '@tensorflow/tfjs';

/** dataIds of SvhnConv2DBiasRelu outputs: every value is >= 0 or NaN. */
const reluOutputs = new WeakSet<object>();

/** What a MaxPoolGrad output already holds of SvhnReluBiasGrad's work, by its dataId. */
export interface ReluBiasSums {
  /** The ReLU output MaxPoolGrad routed by (its `input`): the output is dy * step(of it). */
  relu: object;
  /** The output's shape (a reshape shares the dataId; the sums are per last-axis channel). */
  shape: number[];
  /** Per channel, the float64 sum of the output over every other axis: the bias gradient. */
  sums: Float64Array;
}

const biasSums = new WeakMap<object, ReluBiasSums>();

export function markReluOutput(t: tf.TensorInfo): void {
  reluOutputs.add(t.dataId);
}

export function isReluOutput(t: tf.TensorInfo): boolean {
  return reluOutputs.has(t.dataId);
}

export function recordBiasSums(out: tf.TensorInfo, relu: tf.TensorInfo, sums: Float64Array): void {
  biasSums.set(out.dataId, { relu: relu.dataId, shape: out.shape.slice(), sums });
}

/** The sums recorded for dy if it is a MaxPoolGrad output already masked by step(y), else undefined. */
export function recordedBiasSums(dy: tf.TensorInfo, y: tf.TensorInfo): Float64Array | undefined {
  const r = biasSums.get(dy.dataId);
  if (!r || r.relu !== y.dataId || r.shape.length !== dy.shape.length || r.shape.some((d, i) => d !== dy.shape[i])) return undefined;
  return r.sums;
}
