/**
 * The seam between the training loop and what a model is for (STYLE lesson 18): each task
 * names its example layout (layout.ts), its per-example loss and how many examples of a batch
 * it answered right (history's acc and val_acc: the fitness the run keeps its best epoch by).
 * The loop, its replicas and evaluation call these and nothing task-specific.
 *
 *   classify   categorical cross-entropy; right when the top class is the label
 *   read       the detector's CenterNet loss (read/loss.ts); right when the photo's digits are
 *              found exactly, one detection per digit (read/peaks.ts detectionsMatch)
 */
import * as tf from '@tensorflow/tfjs';
import { CLASSIFY_LAYOUT, READ_LAYOUT, type ExampleLayout, type TaskName } from './layout.js';
import { detectorLosses } from './read/loss.js';
import { detectionsMatch, findDigits, TRAINING_CENTRE_THRESHOLD } from './read/peaks.js';
import { OUTPUT_LENGTH, trueCentres } from './read/targets.js';

export interface Task {
  name: TaskName;
  layout: ExampleLayout;
  /** Each example's loss, [size], from targets y [size, targetLength] and the model's output p. */
  exampleLosses(y: tf.Tensor, p: tf.Tensor): tf.Tensor1D;
  /** Examples of the batch answered right (reads p's values; tensors it makes die inside). */
  countCorrect(y: tf.Tensor, p: tf.Tensor): number;
}

export const CLASSIFY_TASK: Task = {
  name: 'classify',
  layout: CLASSIFY_LAYOUT,
  exampleLosses: (y, p) => tf.metrics.categoricalCrossentropy(y, p) as tf.Tensor1D,
  countCorrect: (y, p) => tf.tidy(() => tf.equal(p.argMax(-1), y.argMax(-1)).sum().dataSync()[0]!),
};

export const READ_TASK: Task = {
  name: 'read',
  layout: READ_LAYOUT,
  exampleLosses: detectorLosses,
  countCorrect(y, p) {
    const out = p.dataSync() as Float32Array;
    const target = y.dataSync() as Float32Array;
    let right = 0;
    for (let i = 0; i < p.shape[0]!; i++) {
      if (detectionsMatch(findDigits(out, i * OUTPUT_LENGTH, TRAINING_CENTRE_THRESHOLD), trueCentres(target, i * READ_LAYOUT.targetLength))) right++;
    }
    return right;
  },
};

export const TASKS: Record<TaskName, Task> = { classify: CLASSIFY_TASK, read: READ_TASK };
