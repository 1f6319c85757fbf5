/**
 * recalibrateBatchNorm on the cpu backend: after it, each BatchNorm's moving statistics are
 * the moments of its input over the images, so inference normalises exactly as training mode
 * does on the whole set in one batch (tfjs' own batch statistics, an independent path).
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { IMAGE_BYTES } from '../../src/config.js';
import { batchNorm, conv2d, LayerSeeds } from '../../src/models/layers.js';
import { Rng } from '../../src/util/rng.js';
import { evenlySpaced, RECALIBRATE_MAX_IMAGES, recalibrateBatchNorm } from '../../src/train/recalibrate.js';

/** Pool, conv, BN, ReLU, conv, BN, a residual add of the two BN outputs' pooled sum, dense: two BatchNorms, one after the other, in a graph model. */
function smallModel(): tf.LayersModel {
  const seeds = new LayerSeeds(3);
  const input = tf.input({ shape: [32, 32, 3] });
  const pooled = tf.layers.maxPooling2d({ poolSize: 4 }).apply(input) as tf.SymbolicTensor;
  const a = batchNorm('bn_a').apply(conv2d(seeds, 'conv_a', 6).apply(pooled)) as tf.SymbolicTensor;
  const relu = tf.layers.reLU().apply(a) as tf.SymbolicTensor;
  const b = batchNorm('bn_b').apply(conv2d(seeds, 'conv_b', 5).apply(relu)) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 10, activation: 'softmax' }).apply(tf.layers.flatten().apply(b)) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

function images(count: number, seed: number, shift: number): { count: number; images: Uint8Array; labels: Uint8Array } {
  const rng = new Rng(seed);
  const px = new Uint8Array(count * IMAGE_BYTES);
  for (let i = 0; i < px.length; i++) px[i] = Math.min(255, shift + rng.int(120));
  return { count, images: px, labels: new Uint8Array(count) };
}

const statistics = (model: tf.LayersModel) =>
  model.weights.filter((w) => /moving_(mean|variance)$/.test(w.originalName)).map((w) => Array.from(w.read().dataSync()));

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

beforeAll(async () => {
  await initBackend('cpu');
});

describe('recalibrateBatchNorm', () => {
  it('makes inference normalise as training mode does over the whole set, BatchNorm after BatchNorm, leaking no tensors', () => {
    const model = smallModel();
    const set = images(48, 1, 90); // brighter than the untouched statistics (mean 0, variance 1) assume
    const x = tf.tensor4d(Float32Array.from(set.images, (v) => v / 255), [set.count, 32, 32, 3]);
    // Both BatchNorms' outputs: in training mode each normalises with the batch's (all 48 images') own moments.
    const probe = tf.model({ inputs: model.inputs, outputs: ['bn_a', 'bn_b'].map((n) => model.getLayer(n).output as tf.SymbolicTensor) });
    const outputs = (training: boolean) => tf.tidy(() => (probe.apply(x, { training }) as tf.Tensor[]).map((t) => t.dataSync()));
    const stale = outputs(false);
    const before = tf.memory().numTensors;

    expect(recalibrateBatchNorm(model, set)).toEqual({ layers: 2, images: 48 });
    expect(tf.memory().numTensors).toBe(before);
    const inference = outputs(false);
    const training = outputs(true);
    for (let k = 0; k < 2; k++) {
      // The cpu backend's training-mode sums are float32 (ours float64): agreement to ~1e-4 of values up to ~7.
      expect(maxDiff(inference[k]!, training[k]!), `BatchNorm ${k + 1}`).toBeLessThan(1e-3);
      expect(maxDiff(stale[k]!, training[k]!), `BatchNorm ${k + 1} before`).toBeGreaterThan(0.1); // the check can fail
    }
    x.dispose();
  });

  it('measures at most RECALIBRATE_MAX_IMAGES images, spread evenly over the set, and repeats exactly', () => {
    const model = smallModel();
    const n = RECALIBRATE_MAX_IMAGES;
    const dim = images(n, 2, 40);
    const bright = images(n, 3, 200); // far brighter: every mean moves if one of these is read
    // Twice the cap, dim and bright alternating: the images read are every other one, the dim ones.
    const interleaved = new Uint8Array(2 * n * IMAGE_BYTES);
    for (let i = 0; i < n; i++) {
      interleaved.set(dim.images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES), 2 * i * IMAGE_BYTES);
      interleaved.set(bright.images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES), (2 * i + 1) * IMAGE_BYTES);
    }
    expect(recalibrateBatchNorm(model, { count: 2 * n, images: interleaved, labels: new Uint8Array(2 * n) })).toEqual({ layers: 2, images: n });
    const fromInterleaved = statistics(model);
    recalibrateBatchNorm(model, dim);
    expect(statistics(model)).toEqual(fromInterleaved);
    // The same images in two blocks, dim then bright (as a folder is cached, digit by digit): the bright half is read too.
    recalibrateBatchNorm(model, { count: 2 * n, images: new Uint8Array([...dim.images, ...bright.images]), labels: new Uint8Array(2 * n) });
    expect(maxDiff(statistics(model)[0]!, fromInterleaved[0]!)).toBeGreaterThan(1e-2);
  });

  it('evenlySpaced spreads k indices over n', () => {
    expect(Array.from(evenlySpaced(10, 4))).toEqual([0, 2, 5, 7]);
    expect(Array.from(evenlySpaced(6, 3))).toEqual([0, 2, 4]);
  });

  it('leaves a model without BatchNorm as it is', () => {
    const input = tf.input({ shape: [32, 32, 3] });
    const out = tf.layers.dense({ units: 10 }).apply(tf.layers.flatten().apply(input)) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out });
    const w = model.getWeights().map((t) => Array.from(t.dataSync()));
    expect(recalibrateBatchNorm(model, images(4, 4, 0))).toEqual({ layers: 0, images: 0 });
    expect(model.getWeights().map((t) => Array.from(t.dataSync()))).toEqual(w);
  });
});
