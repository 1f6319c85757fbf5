/**
 * The notebook's optimized CNN (Keras: 161,098 parameters, 160,650 trainable + 448
 * non-trainable BatchNorm moving statistics):
 *   3 x [Conv2D(f, 3x3, relu) -> BatchNorm -> MaxPool] for f = 32, 64, 128
 *   -> Flatten -> Dropout(0.4) -> Dense(128, relu) -> Dropout(0.3) -> Dense(10, softmax)
 * Shapes: 32x32x3 -> 30x30x32 -> 15x15x32 -> 13x13x64 -> 6x6x64 -> 4x4x128 -> 2x2x128
 *   -> 512 -> 128 -> 10.
 */
import * as tf from '@tensorflow/tfjs';
import { IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH, NUM_CLASSES } from '../config.js';
import { batchNorm, conv2d, dense, LayerSeeds, SeededDropout } from './layers.js';

export function buildOptimized(opts: { seed: number }): tf.LayersModel {
  const seeds = new LayerSeeds(opts.seed);
  const model = tf.sequential({ name: 'optimized' });
  [32, 64, 128].forEach((filters, i) => {
    const n = i + 1;
    model.add(conv2d(seeds, `conv2d_${n}`, filters, i === 0 ? [IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_CHANNELS] : undefined));
    model.add(batchNorm(`batch_normalization_${n}`));
    model.add(tf.layers.maxPooling2d({ name: `max_pooling2d_${n}`, poolSize: 2 }));
  });
  model.add(tf.layers.flatten({ name: 'flatten' }));
  model.add(new SeededDropout({ name: 'dropout_1', rate: 0.4, seed: seeds.next() }));
  model.add(dense(seeds, 'dense_1', 128, 'relu'));
  model.add(new SeededDropout({ name: 'dropout_2', rate: 0.3, seed: seeds.next() }));
  model.add(dense(seeds, 'dense_2', NUM_CLASSES, 'softmax'));
  return model;
}
