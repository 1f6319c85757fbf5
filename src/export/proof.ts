/**
 * The proof an export ships with: the written file, run in its own runtime (formats.ts), gives
 * the probabilities `svhn predict` gives on the same images (its temperature included),
 * within PROOF_TOLERANCE in every one of them.
 *
 * The images are deterministic synthetic crops (data/synthetic: digits in fonts over
 * street-like backgrounds), the same for every run; a model directory keeps no raw images of
 * its own (its evaluation folders hold PNG grids and tables).
 */
import { IMAGE_BYTES, NUM_CLASSES } from '../config.js';
import type * as tf from '@tensorflow/tfjs';
import { generateImages } from '../data/synthetic/synthetic.js';
import { scalePixels } from '../data/cache/batches.js';
import { predictItems } from '../predict/predict.js';
import type { InputItem } from '../predict/inputs.js';
import { Rng } from '../util/rng.js';

import { PROOF_SEED } from './formats.js';
import { CALIBRATION_PROB_FLOOR } from './onnx/fromLayers.js';

export { PROOF_IMAGES, PROOF_SEED, PROOF_TOLERANCE } from './formats.js';

/** Drawn once per process and count: loading the generator's fonts takes seconds. */
const drawn = new Map<string, Uint8Array>();

/** `count` synthetic 32x32 RGB crops, NHWC uint8, the same for every call (do not modify them). */
export function proofImages(count: number, seed = PROOF_SEED): Uint8Array {
  const key = `${count}:${seed}`;
  let images = drawn.get(key);
  if (!images) drawn.set(key, (images = generateImages(new Rng(seed), count).images));
  return images;
}

/** The images as the model's input: pixel / 255, NHWC float32 (predict's scaling). */
export function scaledImages(images: Uint8Array): Float32Array {
  const count = images.length / IMAGE_BYTES;
  const x = new Float32Array(images.length);
  for (let i = 0; i < count; i++) scalePixels(images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES), x, i * IMAGE_BYTES);
  return x;
}

/**
 * Probabilities calibrated by temperature T: softmax(log(max(p, 1e-12)) / T), per row, in
 * float64 (T = 1 returns p). The same map the exported graph ends with.
 */
export function calibrate(probs: Float32Array, temperature: number): Float32Array {
  if (temperature === 1) return probs;
  const out = new Float32Array(probs.length);
  for (let r = 0; r < probs.length; r += NUM_CLASSES) {
    const z = Array.from(probs.subarray(r, r + NUM_CLASSES), (p) => Math.log(Math.max(p, CALIBRATION_PROB_FLOOR)) / temperature);
    const max = Math.max(...z);
    const e = z.map((v) => Math.exp(v - max));
    const sum = e.reduce((a, b) => a + b, 0);
    e.forEach((v, i) => (out[r + i] = v / sum));
  }
  return out;
}

/**
 * [count, 10] probabilities as `svhn predict` computes them: predictItems on the model
 * loadModelDir returned (BatchNorms folded), all ten digits of each row put back in digit
 * order, then calibrated by `temperature` (1 where the model already ends with it).
 */
export async function predictProbabilities(model: tf.LayersModel, images: Uint8Array, temperature: number): Promise<Float32Array> {
  const count = images.length / IMAGE_BYTES;
  const items: InputItem[] = Array.from({ length: count }, (_, i) => ({ kind: 'pixels', id: `proof#${i}`, image: images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES), label: null }));
  const probs = new Float32Array(count * NUM_CLASSES);
  let i = 0;
  for await (const { row } of predictItems(items, { model, batchSize: count, topK: NUM_CLASSES })) {
    for (const { digit, prob } of row.top) probs[i * NUM_CLASSES + digit] = prob;
    i++;
  }
  return calibrate(probs, temperature);
}

/** max |a_i - b_i|; NaN anywhere makes it NaN (which no tolerance accepts). */
export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`maxAbsDiff: ${a.length} values against ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= max)) max = d; // NaN sticks
  }
  return max;
}
