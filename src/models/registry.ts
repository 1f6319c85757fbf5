/**
 * The model registry: name -> builder. A third architecture is one new file exporting a
 * builder plus one line here. Importing this module also registers the custom layers
 * (./layers.ts) that saved models need to load.
 */
import type * as tf from '@tensorflow/tfjs';
import { SvhnError } from '../errors.js';
import { buildBaseline } from './baseline.js';
import { buildOptimized } from './optimized.js';
import { buildResnet } from './resnet.js';
import './layers.js';

export type ModelBuilder = (opts: { seed: number }) => tf.LayersModel;

export const MODEL_BUILDERS: Record<string, ModelBuilder> = {
  baseline: buildBaseline,
  optimized: buildOptimized,
  resnet: buildResnet,
};

export function listModels(): string[] {
  return Object.keys(MODEL_BUILDERS);
}

export function buildModel(name: string, opts: { seed: number }): tf.LayersModel {
  const build = Object.hasOwn(MODEL_BUILDERS, name) ? MODEL_BUILDERS[name] : undefined;
  if (!build) {
    throw new SvhnError('BAD_FLAG', `--model: expected one of ${listModels().join(', ')}, got '${name}'`);
  }
  return build(opts);
}

/** Parameter counts as Keras' model.summary() reports them. */
export function countParams(model: tf.LayersModel): { total: number; trainable: number; nonTrainable: number } {
  const size = (ws: tf.LayerVariable[]) => ws.reduce((s, w) => s + (w.shape as number[]).reduce((a, b) => a * b, 1), 0);
  const trainable = size(model.trainableWeights);
  const nonTrainable = size(model.nonTrainableWeights);
  return { total: trainable + nonTrainable, trainable, nonTrainable };
}
