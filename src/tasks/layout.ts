/**
 * How a task's examples sit in memory and in a batch (no tfjs here: batches are assembled
 * without it). A set is `count` images of `imageBytes` uint8 each (NHWC) and `count` label
 * records of `labelBytes` each; a batch turns each record into `targetLength` floats.
 *
 *   classify   32 x 32 x 3 digit crops, a 1-byte digit, a one-hot target of 10
 *   read       48 x 96 x 3 letterboxed photos, a 25-byte box record, the detector's target grid
 */
import { IMAGE_BYTES, IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH, NUM_CLASSES } from '../config.js';
import { LABEL_BYTES, READER_IMAGE_BYTES, READER_INPUT } from './read/format.js';
import { encodeTarget, TARGET_LENGTH } from './read/targets.js';

export type TaskName = 'classify' | 'read';

export interface ExampleLayout {
  task: TaskName;
  /** [height, width, channels] of one input. */
  inputShape: [number, number, number];
  imageBytes: number;
  labelBytes: number;
  targetLength: number;
  /** Writes example `index`'s target (from its label record in `labels`) to out[offset..offset+targetLength), every value. */
  encodeTarget(labels: Uint8Array, index: number, out: Float32Array, offset: number): void;
}

export const CLASSIFY_LAYOUT: ExampleLayout = {
  task: 'classify',
  inputShape: [IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_CHANNELS],
  imageBytes: IMAGE_BYTES,
  labelBytes: 1,
  targetLength: NUM_CLASSES,
  encodeTarget(labels, index, out, offset) {
    out.fill(0, offset, offset + NUM_CLASSES);
    out[offset + labels[index]!] = 1;
  },
};

export const READ_LAYOUT: ExampleLayout = {
  task: 'read',
  inputShape: [READER_INPUT.height, READER_INPUT.width, READER_INPUT.channels],
  imageBytes: READER_IMAGE_BYTES,
  labelBytes: LABEL_BYTES,
  targetLength: TARGET_LENGTH,
  encodeTarget,
};

export const LAYOUTS: Record<TaskName, ExampleLayout> = { classify: CLASSIFY_LAYOUT, read: READ_LAYOUT };
