/**
 * A trained reader, loaded for use: the detector finds the digits' boxes in the letterboxed
 * photo (detector.ts, peaks.ts), each box goes back to the photo's own pixels and is cut as
 * SVHN cut its digits, in a few views (letterbox.ts cropDigitViews), and the digit classifier in the reader's
 * `classifier/` folder names it. `svhn read`, serve and bench:read read through here.
 */
import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { IMAGE_BYTES, IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH } from '../../config.js';
import { SvhnError } from '../../errors.js';
import { scalePixels } from '../../data/cache/batches.js';
import { assertModelDir, loadLayersModel, loadModelDir, readModelMetadata, type ModelDirFlag } from '../../models/io.js';
import { foldBatchNorms, wholeBatch } from '../../models/inference.js';
import { READER_CLASSIFIER_DIR, type ModelMetadata } from '../../models/modelDir.js';
import { boxesInPhoto, DIGIT_VIEWS, noNumberReading, numberDetections, pooledProbs, readingOf } from './assemble.js';
import { GRID_HEIGHT, GRID_WIDTH, HEAD_CHANNELS, READER_IMAGE_BYTES, READER_INPUT } from './format.js';
import { cropDigitViews, letterboxPhoto } from './letterbox.js';
import { DEFAULT_CENTRE_THRESHOLD } from './peaks.js';
import type { Reading, RgbPhoto } from './reading.js';

export interface Reader {
  /** The model directory's basename. */
  name: string;
  metadata: ModelMetadata & { synthetic: boolean };
  /** The digit model that names each box. */
  classifierMetadata: ModelMetadata;
  read(photo: RgbPhoto): Promise<Reading>;
  /** With { keepFiles: true }: the bytes both models were built from (model.json and its weight files), as serve gives them to the page. */
  files?: { detector: Map<string, Buffer>; classifier: Map<string, Buffer> };
  dispose(): void;
}

export interface ReaderOptions {
  flag?: ModelDirFlag;
  /** A centre needs this chance to count as a digit (peaks.ts). */
  centreThreshold?: number;
  /** Keep the models' files (Reader.files). */
  keepFiles?: boolean;
  /** The views of each box the classifier reads (assemble.ts DIGIT_VIEWS); for measuring others. */
  views?: ReadonlyArray<readonly [number, number, number]>;
}

/** Loads a reader's directory (svhn train --model reader); anything else is refused in one line. */
export async function loadReader(dir: string, opts: ReaderOptions = {}): Promise<Reader> {
  const flag = opts.flag ?? '--model';
  assertModelDir(dir, flag);
  await import('../../models/registry.js'); // custom layers registered before any load
  const metadata = await readModelMetadata(dir, { flag });
  if (metadata.task !== 'read') {
    throw new SvhnError('BAD_MODEL', `${flag} ${dir}: expected a reader model, got a digit classifier; train one with \`svhn train --model reader\``);
  }
  const detectorFiles = opts.keepFiles ? new Map<string, Buffer>() : undefined;
  const detector = foldBatchNorms(await loadLayersModel(dir, { flag, files: detectorFiles }));
  const inShape = detector.inputs[0]?.shape.slice(1) ?? [];
  const want = [READER_INPUT.height, READER_INPUT.width, READER_INPUT.channels];
  if (inShape.join('x') !== want.join('x')) {
    detector.dispose();
    throw new SvhnError('BAD_MODEL', `${flag} ${dir}: the detector takes [${inShape.join(', ')}], expected [${want.join(', ')}]`);
  }
  // A reader trained before the grid went to 2-px cells (detector.ts) outputs 12 x 24: its
  // cells would be read at the wrong scale, so it is refused, not misread.
  const outShape = detector.outputs[0]?.shape.slice(1) ?? [];
  const grid = [GRID_HEIGHT, GRID_WIDTH, HEAD_CHANNELS];
  if (outShape.join('x') !== grid.join('x')) {
    detector.dispose();
    throw new SvhnError('BAD_MODEL', `${flag} ${dir}: the detector outputs [${outShape.join(', ')}], this svhn reads [${grid.join(', ')}] (a reader from an older svhn); train it again with \`svhn train --model reader\``);
  }
  let classifier;
  try {
    // The raw softmax, as before calibration: the reader's confidences and --min-confidence
    // stay as they were until `svhn read` is measured with the temperature (issue 24).
    classifier = await loadModelDir(join(dir, READER_CLASSIFIER_DIR), { keepFiles: opts.keepFiles, calibration: false });
  } catch (e) {
    detector.dispose();
    throw e;
  }
  const centreThreshold = opts.centreThreshold ?? DEFAULT_CENTRE_THRESHOLD;
  const views = opts.views ?? DIGIT_VIEWS;
  const name = dir.replace(/\/+$/, '').split('/').pop() ?? dir;

  const read = async (photo: RgbPhoto): Promise<Reading> => {
    const { pixels, letterbox } = await letterboxPhoto(photo);
    const input = new Float32Array(READER_IMAGE_BYTES);
    scalePixels(pixels, input);
    // The output's values come out; its tensors die in the tidy.
    const out = tf.tidy(() => {
      const x = tf.tensor4d(input, [1, READER_INPUT.height, READER_INPUT.width, READER_INPUT.channels]);
      return (detector.predict(x) as tf.Tensor).dataSync() as Float32Array;
    });
    const found = numberDetections(out, letterbox, centreThreshold);
    if (!found.length) return noNumberReading(out);
    const boxes = boxesInPhoto(found, letterbox, photo.width, photo.height);
    const n = boxes.length * views.length;
    const crops = new Float32Array(n * IMAGE_BYTES);
    for (let i = 0; i < boxes.length; i++) scalePixels(await cropDigitViews(photo, boxes[i]!, views), crops, i * views.length * IMAGE_BYTES);
    const probs = tf.tidy(() => {
      const x = tf.tensor4d(crops, [n, IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_CHANNELS]);
      return (classifier.model.predict(x, wholeBatch(n)) as tf.Tensor).dataSync() as Float32Array;
    });
    return readingOf(found, boxes, pooledProbs(probs, boxes.length, views.length), photo.width, photo.height);
  };

  return {
    name,
    metadata: { ...metadata, synthetic: Boolean(metadata.synthetic) },
    classifierMetadata: classifier.metadata,
    read,
    ...(detectorFiles && classifier.files ? { files: { detector: detectorFiles, classifier: classifier.files } } : {}),
    dispose() {
      detector.dispose();
      classifier.model.dispose();
    },
  };
}
