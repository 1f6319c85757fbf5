/**
 * The notebook's baseline CNN (Keras reports 315,722 parameters):
 *   Conv2D(32, 3x3, relu) -> MaxPool -> Conv2D(64, 3x3, relu) -> MaxPool -> Flatten
 *   -> Dropout(0.5) -> Dense(128, relu) -> Dropout(0.3) -> Dense(10, softmax)
 * Shapes: 32x32x3 -> 30x30x32 -> 15x15x32 -> 13x13x64 -> 6x6x64 -> 2304 -> 128 -> 10.
 */
import * as tf from '@tensorflow/tfjs';
import { IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH, NUM_CLASSES } from '../config.js';
import { conv2d, dense, LayerSeeds, SeededDropout } from './layers.js';

export function buildBaseline(opts: { seed: number }): tf.LayersModel {
  const seeds = new LayerSeeds(opts.seed);
  const model = tf.sequential({ name: 'baseline' });
  model.add(conv2d(seeds, 'conv2d_1', 32, [IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_CHANNELS]));
  model.add(tf.layers.maxPooling2d({ name: 'max_pooling2d_1', poolSize: 2 }));
  model.add(conv2d(seeds, 'conv2d_2', 64));
  model.add(tf.layers.maxPooling2d({ name: 'max_pooling2d_2', poolSize: 2 }));
  model.add(tf.layers.flatten({ name: 'flatten' }));
  model.add(new SeededDropout({ name: 'dropout_1', rate: 0.5, seed: seeds.next() }));
  model.add(dense(seeds, 'dense_1', 128, 'relu'));
  model.add(new SeededDropout({ name: 'dropout_2', rate: 0.3, seed: seeds.next() }));
  model.add(dense(seeds, 'dense_2', NUM_CLASSES, 'softmax'));
  return model;
}
