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
import { buildDetector } from '../tasks/read/detector.js';
import { TASKS, type Task } from '../tasks/task.js';
import type { TaskName } from '../tasks/layout.js';
import './layers.js';

export type ModelBuilder = (opts: { seed: number }) => tf.LayersModel;

export const MODEL_BUILDERS: Record<string, ModelBuilder> = {
  baseline: buildBaseline,
  optimized: buildOptimized,
  resnet: buildResnet,
  reader: buildDetector,
};

/** What each architecture is for (tasks/task.ts); a name not listed is a digit classifier. */
const MODEL_TASKS: Record<string, TaskName> = { reader: 'read' };

/** Registry names, all of them or those of one task. */
export function listModels(task?: TaskName): string[] {
  return Object.keys(MODEL_BUILDERS).filter((name) => task === undefined || taskNameOf(name) === task);
}

export function taskNameOf(name: string): TaskName {
  return Object.hasOwn(MODEL_TASKS, name) ? MODEL_TASKS[name]! : 'classify';
}

/** The task an architecture trains for: its example layout, loss and accuracy. */
export function taskOf(name: string): Task {
  return TASKS[taskNameOf(name)];
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
