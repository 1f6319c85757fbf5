/**
 * One training step's gradients, as Keras' train_on_batch computes them: the model in
 * training mode (dropout on, BatchNorm on batch statistics and updating its moving ones),
 * the task's loss (categorical cross-entropy for digits) averaged over the batch, gradients of
 * every trainable weight.
 * The main thread and each data-parallel replica (replicas.ts) run this same function.
 */
import * as tf from '@tensorflow/tfjs';
import { CLASSIFY_TASK, type Task } from '../tasks/task.js';
import { sequentialBatches, type ImageSet } from '../data/cache/batches.js';
import { asWasm } from '../backend/kernels/heap.js';

const EVAL_BATCH = 256; // validation batch: no gradients, so larger is cheaper per image

export interface ShardResult {
  /** Mean cross-entropy over the shard. */
  loss: number;
  /** Correct top-1 predictions in the shard. */
  correct: number;
}

/** The model's trainable variables, in model.trainableWeights order (the flat gradient layout). */
export function trainableVariables(model: tf.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((w) => w.read() as tf.Variable);
}

/** The model's non-trainable variables (BatchNorm's moving mean and variance), in model order. */
export function statisticVariables(model: tf.LayersModel): tf.Variable[] {
  return model.nonTrainableWeights.map((w) => w.read() as tf.Variable);
}

/** Total elements of the trainable variables. */
export function trainableSize(model: tf.LayersModel): number {
  return sizeOf(trainableVariables(model));
}

export function sizeOf(tensors: tf.Tensor[]): number {
  return tensors.reduce((s, v) => s + v.size, 0);
}

/**
 * Forward and backward pass over `size` images (xs NHWC float32 in [0,1], ys the task's
 * targets: one-hot for digits). Returns the gradient tensors (the caller owns and disposes
 * them) in variable order.
 */
export function shardGradients(model: tf.LayersModel, xs: Float32Array, ys: Float32Array, size: number, task: Task = CLASSIFY_TASK): ShardResult & { grads: tf.Tensor[] } {
  const vars = trainableVariables(model);
  let correct = 0;
  const { x, y } = batchTensors(task, xs, ys, size);
  try {
    // The tape's intermediates die inside variableGrads; loss and grads come out.
    const { value, grads } = tf.variableGrads(() => {
      const p = model.apply(x, { training: true }) as tf.Tensor;
      correct = task.countCorrect(y, p);
      return tf.mean(task.exampleLosses(y, p)) as tf.Scalar;
    }, vars);
    const loss = value.dataSync()[0]!;
    value.dispose();
    return { loss, correct, grads: vars.map((v) => grads[v.name]!) };
  } finally {
    tf.dispose([x, y]);
  }
}

/**
 * A tensor's float32 values without a copy where the backend allows: on wasm a view on its
 * heap (valid until the next tensor is allocated), elsewhere dataSync's array. Replicas move
 * every weight and gradient twice a step; a copy of the baseline's 1.2 MB cost ~0.5 ms.
 */
export function valuesOf(t: tf.Tensor): Float32Array {
  if (tf.getBackend() === 'wasm') return asWasm(tf.backend()).typedArrayFromHeap(t) as Float32Array;
  return t.dataSync() as Float32Array;
}

/** Copies tensors' values into `out` back to back (the flat layout replicas exchange). */
export function packInto(tensors: tf.Tensor[], out: Float32Array): void {
  let offset = 0;
  for (const t of tensors) {
    out.set(valuesOf(t), offset);
    offset += t.size;
  }
  if (offset !== out.length) throw new Error(`packInto: ${offset} values for a buffer of ${out.length}`);
}

/**
 * A new float32 tensor (the caller owns it) from `flat[offset, offset + size of shape)`.
 * wasm copies the values into its heap as it makes the tensor; the cpu backend keeps the
 * array it is given, so it gets a private copy (flat may be shared memory that changes).
 */
export function tensorFrom(flat: Float32Array, offset: number, shape: number[]): tf.Tensor {
  const end = offset + shape.reduce((a, b) => a * b, 1);
  if (end > flat.length) throw new Error(`tensorFrom: values ${offset}..${end} of ${flat.length}`);
  return tf.tensor(tf.getBackend() === 'wasm' ? flat.subarray(offset, end) : flat.slice(offset, end), shape, 'float32');
}

/** New tensors shaped like `like`, from flat values in packInto's layout (the caller owns them). */
export function unpack(like: tf.Tensor[], flat: Float32Array): tf.Tensor[] {
  let offset = 0;
  return like.map((v) => {
    const t = tensorFrom(flat, offset, v.shape);
    offset += v.size;
    return t;
  });
}

/** Assigns flat values (packInto's layout) to the variables. */
export function assignFrom(vars: tf.Variable[], flat: Float32Array): void {
  tf.tidy(() => unpack(vars, flat).forEach((t, i) => vars[i]!.assign(t)));
}

/** The task's summed loss and examples answered right over a set (cross-entropy and correct top-1 for digits), in inference mode. */
export function evaluateSums(model: tf.LayersModel, set: ImageSet, task: Task = CLASSIFY_TASK): { lossSum: number; correct: number } {
  let lossSum = 0;
  let correct = 0;
  for (const b of sequentialBatches(set, EVAL_BATCH, task.layout)) {
    // All of this batch's tensors die in the tidy; two numbers come out.
    const [l, c] = tf.tidy(() => {
      const { x, y } = batchTensors(task, b.xs, b.ys, b.size);
      const p = model.predict(x) as tf.Tensor;
      const loss = task.exampleLosses(y, p).sum();
      return [loss.dataSync()[0]!, task.countCorrect(y, p)];
    });
    lossSum += l;
    correct += c;
  }
  return { lossSum, correct };
}

/** A batch's input [size, h, w, c] and targets [size, targetLength] as new tensors (the caller owns them). */
function batchTensors(task: Task, xs: Float32Array, ys: Float32Array, size: number): { x: tf.Tensor4D; y: tf.Tensor2D } {
  const [h, w, c] = task.layout.inputShape;
  const t = task.layout.targetLength;
  return { x: tf.tensor4d(xs.subarray(0, size * h * w * c), [size, h, w, c]), y: tf.tensor2d(ys.subarray(0, size * t), [size, t]) };
}
