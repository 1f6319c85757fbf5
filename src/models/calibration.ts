/**
 * A model's temperature applied to its output, in tfjs: q = softmax(log p / T), p the
 * model's softmax (metrics/calibration.ts says why log p stands in for the logits exactly).
 * loadModelDir (io.ts) puts it at the end of the model it loads for inference, so predict,
 * serve and the reader's classifier all answer with calibrated probabilities; evaluate,
 * which also wants the raw ones, calls calibrateProbabilities on the raw output itself.
 */
import * as tf from '@tensorflow/tfjs';
import { SvhnError } from '../errors.js';
import { PROB_FLOOR } from '../metrics/calibration.js';
import type { ModelMetadata } from './modelDir.js';

/** softmax(log max(p, PROB_FLOOR) / T) per row of [n, classes] probabilities; a new tensor, the caller owns it. */
export function calibrateProbabilities(probs: tf.Tensor, temperature: number): tf.Tensor {
  return tf.tidy(() => tf.softmax(tf.div(tf.log(tf.maximum(probs, PROB_FLOOR)), temperature)));
}

/** The temperature metadata.json records; 1 for models from before calibration. A bad value is refused. */
export function temperatureOf(metadata: ModelMetadata, dir: string): number {
  const t = metadata.calibration?.temperature;
  if (t === undefined) return 1;
  if (typeof t !== 'number' || !Number.isFinite(t) || t <= 0) {
    throw new SvhnError('BAD_MODEL', `${dir}: metadata.json calibration.temperature is ${JSON.stringify(t)}; expected a number > 0`, {
      suggestion: 'fix or remove the calibration field (without it T = 1), or train the model again',
    });
  }
  return t;
}

/** The last layer of a calibrated model in memory: calibrateProbabilities. No weights; never saved. */
export class TemperatureScaling extends tf.layers.Layer {
  static className = 'SvhnTemperatureScaling';
  readonly temperature: number;

  constructor(args: { temperature: number; name?: string }) {
    super({ name: args.name ?? 'temperature_scaling' });
    this.temperature = args.temperature;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return calibrateProbabilities(Array.isArray(inputs) ? inputs[0]! : inputs, this.temperature);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), temperature: this.temperature };
  }
}

/**
 * `model` with TemperatureScaling after its output, or `model` itself when T = 1. The new
 * model shares the layers (each applied once, so disposing the new model disposes them all):
 * the caller disposes only the result.
 */
export function withTemperature(model: tf.LayersModel, temperature: number): tf.LayersModel {
  if (temperature === 1) return model;
  const output = new TemperatureScaling({ temperature }).apply(model.outputs[0]!) as tf.SymbolicTensor;
  return tf.model({ name: model.name, inputs: model.inputs, outputs: output });
}
