/**
 * Temperature scaling at the end of training (Guo et al. 2017): the kept weights predict the
 * validation split in inference mode, and the temperature minimising the NLL of those
 * probabilities (metrics/calibration.ts fitTemperature) goes into metadata.json, with the NLL
 * and ECE at T = 1 and at T. Digit models only; loadModelDir applies it at inference.
 */
import * as tf from '@tensorflow/tfjs';
import { IMAGE_BYTES, IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH, NUM_CLASSES } from '../config.js';
import { scalePixels, type ImageSet } from '../data/cache/batches.js';
import { calibrationSummary, fitTemperature, softmaxWithTemperature, topOne } from '../metrics/calibration.js';
import { wholeBatch } from '../models/inference.js';
import type { ModelCalibration } from '../models/modelDir.js';

/** Validation images per predict call while fitting: bounds memory like evaluate's batches. */
const FIT_BATCH = 256;

/** The model's probabilities [n, 10] over a set, x / 255 as in training, in inference mode (predict). */
export function predictProbabilities(model: tf.LayersModel, set: ImageSet): Float32Array {
  const probs = new Float32Array(set.count * NUM_CLASSES);
  const xs = new Float32Array(FIT_BATCH * IMAGE_BYTES); // one batch of floats at a time
  for (let start = 0; start < set.count; start += FIT_BATCH) {
    const n = Math.min(FIT_BATCH, set.count - start);
    scalePixels(set.images.subarray(start * IMAGE_BYTES, (start + n) * IMAGE_BYTES), xs);
    // The input and every intermediate die in the tidy; the batch's probabilities are copied out.
    probs.set(tf.tidy(() => (model.predict(tf.tensor4d(xs.subarray(0, n * IMAGE_BYTES), [n, IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_CHANNELS]), wholeBatch(n)) as tf.Tensor).dataSync() as Float32Array), start * NUM_CLASSES);
  }
  return probs;
}

/** Fits the temperature of `model` on the validation set `val` and says what it changed there. */
export function calibrateOnValidation(model: tf.LayersModel, val: ImageSet): ModelCalibration {
  const probs = predictProbabilities(model, val);
  const labels = val.labels.subarray(0, val.count);
  const fit = fitTemperature(probs, labels, { classes: NUM_CLASSES });
  const ece = (t: number) => {
    const { confidence, correct } = topOne(t === 1 ? probs : softmaxWithTemperature(probs, t, { classes: NUM_CLASSES }), labels, NUM_CLASSES);
    return calibrationSummary(confidence, correct).ece;
  };
  return {
    temperature: fit.temperature,
    fittedOn: 'val',
    images: val.count,
    nllBefore: fit.nllBefore,
    nllAfter: fit.nllAfter,
    eceBefore: ece(1),
    eceAfter: ece(fit.temperature),
  };
}
