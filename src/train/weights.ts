/**
 * Weight snapshots: a model's variables copied into JS memory and written back. The
 * callbacks (./callbacks.ts) keep their best epochs' weights this way, checkpoints
 * (./checkpoint.ts) save them, and a fine-tune (./init.ts) copies its parent's.
 */
import * as tf from '@tensorflow/tfjs';
import { SvhnError } from '../errors.js';

/** Named float32 arrays, copied out of tensors (JS memory: nothing to dispose). */
export type WeightSnapshot = Array<{ name: string; shape: number[]; data: Float32Array }>;

/** Copies the model's weights (trainable and BatchNorm statistics, in model.weights order). */
export function captureWeights(model: tf.LayersModel): WeightSnapshot {
  return model.weights.map((w) => {
    const v = w.read(); // the variable itself: not ours to dispose
    return { name: w.originalName, shape: v.shape.slice(), data: new Float32Array(v.dataSync()) };
  });
}

/** Writes a snapshot back into the model (shapes checked against the model's). */
export function restoreWeights(model: tf.LayersModel, snapshot: WeightSnapshot): void {
  const weights = model.weights;
  if (weights.length !== snapshot.length) {
    throw new SvhnError('BAD_INPUT', `checkpoint has ${snapshot.length} weight arrays, the model ${weights.length}`);
  }
  const tensors = snapshot.map((s, i) => {
    const want = weights[i]!.shape.join('x');
    if (s.shape.join('x') !== want) throw new SvhnError('BAD_INPUT', `checkpoint weight ${s.name}: expected shape ${want}, got ${s.shape.join('x')}`);
    return tf.tensor(s.data, s.shape, 'float32');
  });
  model.setWeights(tensors); // the variables take their own reference to the data
  tf.dispose(tensors);
}
