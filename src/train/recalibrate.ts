/**
 * BatchNorm statistics measured on a set of images (Li et al. 2016, "AdaBN"; the measure is
 * Wu & Johnson 2021's "precise BN"). `svhn train --init` runs it once, before the first epoch.
 *
 * Why a fine-tune needs it: BatchNorm trains on each batch's own mean and variance but
 * predicts with moving averages that move 1% per step (momentum 0.99, Keras' default). A
 * fine-tune on a few hundred of your own digits runs tens of steps, so without it the model it
 * saves still normalises your digits with averages measured on the parent's data. Measured on
 * the 554 real digits (5-fold cross-validation from the offline optimized model, `npm run
 * bench:real`): 84.7% fine-tuned before, 85.6% with it; the resnet's 86.8% did not change.
 *
 * Each BatchNorm in turn gets the mean and variance of its input over the images, with the
 * model in inference mode and every earlier BatchNorm already measured: what it will see when
 * the model predicts. Deterministic (no augmentation, images in stored order).
 */
import * as tf from '@tensorflow/tfjs';
import { CLASSIFY_LAYOUT, type ExampleLayout } from '../tasks/layout.js';
import { gatherImages, sequentialBatches, type ImageSet } from '../data/cache/batches.js';

const BATCH = 256;

/**
 * The images measured at most, spread evenly over the set (a folder of your digits is cached
 * digit by digit, so the first ones would be mostly 0s): each channel's mean and variance come
 * from 1024 x its H x W values, and each BatchNorm costs a pass over them.
 */
export const RECALIBRATE_MAX_IMAGES = 1024;

/** A BatchNorm layer's moving statistics, as tfjs-layers names its weights. */
interface BatchNormStatistics {
  layer: tf.layers.Layer;
  mean: tf.LayerVariable;
  variance: tf.LayerVariable;
}

function batchNorms(model: tf.LayersModel): BatchNormStatistics[] {
  const found: BatchNormStatistics[] = [];
  for (const layer of model.layers) {
    const mean = layer.weights.find((w) => /moving_mean$/.test(w.originalName));
    const variance = layer.weights.find((w) => /moving_variance$/.test(w.originalName));
    if (mean && variance) found.push({ layer, mean, variance });
  }
  return found;
}

/**
 * Sets every BatchNorm's moving mean and variance to those of its input over `set` (at most
 * RECALIBRATE_MAX_IMAGES of it, evenly spaced), layer by layer in model order. Returns how
 * many layers it set and over how many images (both 0 when it set none). Sums run in float64;
 * the variance is the population's (what a batch's tf.moments gives).
 */
export function recalibrateBatchNorm(model: tf.LayersModel, set: ImageSet, layout: ExampleLayout = CLASSIFY_LAYOUT): { layers: number; images: number } {
  const layers = batchNorms(model);
  if (layers.length === 0 || set.count === 0) return { layers: 0, images: 0 };
  const images = set.count <= RECALIBRATE_MAX_IMAGES ? set : gatherImages(set, evenlySpaced(set.count, RECALIBRATE_MAX_IMAGES), layout);
  for (const { layer, mean, variance } of layers) {
    // The model up to this layer's input; it shares the model's layers and owns no tensors.
    const upTo = tf.model({ inputs: model.inputs, outputs: layer.input as tf.SymbolicTensor });
    const channels = mean.shape[0]!;
    const sum = new Float64Array(channels);
    const squares = new Float64Array(channels);
    let count = 0;
    for (const b of sequentialBatches(images, BATCH, layout)) {
      // The activations leave the tidy as a tensor: a typed array returned from it would be walked value by value.
      const t = tf.tidy(() => upTo.predict(tf.tensor4d(b.xs, [b.size, ...layout.inputShape])) as tf.Tensor);
      const a = t.dataSync() as Float32Array;
      t.dispose();
      for (let i = 0; i < a.length; i++) {
        const c = i % channels;
        sum[c]! += a[i]!;
        squares[c]! += a[i]! * a[i]!;
      }
      count += a.length / channels;
    }
    const m = Float32Array.from(sum, (s) => s / count);
    const v = Float32Array.from(squares, (s, c) => Math.max(0, s / count - (sum[c]! / count) ** 2));
    tf.tidy(() => {
      mean.write(tf.tensor1d(m));
      variance.write(tf.tensor1d(v));
    });
  }
  return { layers: layers.length, images: images.count };
}

/** `k` indices spread evenly over 0 .. n-1 (k < n): floor(i * n / k). */
export function evenlySpaced(n: number, k: number): Uint32Array {
  return Uint32Array.from({ length: k }, (_, i) => Math.floor((i * n) / k));
}
