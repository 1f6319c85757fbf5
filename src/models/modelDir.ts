/**
 * The model directory: the contract between `svhn train` and evaluate / predict / report.
 *
 *   models/<name>/model.json      tfjs layers format (modelTopology + weightsManifest)
 *   models/<name>/weights.bin     all weights, float32, in weightsManifest order
 *   models/<name>/metadata.json   ModelMetadata below
 *   models/<name>/history.json    HistoryRecord[]; history.csv the same as CSV (lr: empty in older models)
 *   models/<name>/curves.png      training/validation accuracy and loss per epoch
 *   models/<name>/evaluation...    what `svhn evaluate` wrote (EVALUATION_DIRS)
 *
 * The whole directory is written atomically (see util/atomic.ts buildDirAtomic).
 */
import type { BackendChoice, ModelName } from '../config.js';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';
export const METADATA_JSON = 'metadata.json';
export const HISTORY_JSON = 'history.json';
export const HISTORY_CSV = 'history.csv';
export const CURVES_PNG = 'curves.png';

/** Every file `svhn train` writes into a model directory. */
export const MODEL_CARD_FILE = 'MODEL_CARD.md'; // models/card.ts
/** The run's resolved flags, under their own names: `svhn train --config DIR/args.json` runs the recipe again. */
export const ARGS_JSON = 'args.json';
export const MODEL_DIR_FILES = [MODEL_JSON, WEIGHTS_BIN, METADATA_JSON, HISTORY_JSON, HISTORY_CSV, CURVES_PNG, MODEL_CARD_FILE, ARGS_JSON] as const;
/** A reader's copy of the digit classifier that reads its boxes (tasks/read/modelDir.ts): a model directory inside it. */
export const READER_CLASSIFIER_DIR = 'classifier';

/**
 * The folders `svhn evaluate` writes into a model directory by default, per data: the test
 * split, the validation split, a labelled folder or CSV (--images / --labels).
 */
export const EVALUATION_DIRS = { test: 'evaluation', val: 'evaluation-val', labelled: 'evaluation-images' } as const;

/** What an evaluation directory holds (evaluate/outputs.ts writes them). */
export const REPORT_JSON = 'report.json';
export const CONFUSION_CSV = 'confusion.csv';
export const CONFUSION_PNG = 'confusion.png';
export const F1_PNG = 'f1.png';
export const SAMPLES_PNG = 'samples.png';
export const ERRORS_PNG = 'errors.png';
export const RELIABILITY_PNG = 'reliability.png';
/** Beside the others when the evaluation is of synthetic data (the CSV itself stays a plain table). */
export const SYNTHETIC_TXT = 'SYNTHETIC.txt';
export const EVALUATION_FILES = [REPORT_JSON, CONFUSION_CSV, CONFUSION_PNG, F1_PNG, RELIABILITY_PNG, SAMPLES_PNG, ERRORS_PNG, SYNTHETIC_TXT] as const;

export interface HistoryRecord {
  epoch: number; // 1-based
  loss: number;
  acc: number;
  val_loss: number;
  val_acc: number;
  seconds: number; // the epoch's training pass, validation excluded
  imagesPerSec: number; // training images / seconds (train/history.ts imagesPerSec)
  /** The learning rate the schedule gave the epoch's last step; absent in models trained before it was recorded. */
  lr?: number;
}

/** The parent of a fine-tune (train --init), as metadata.json and the checkpoint record it. */
export interface ParentModel {
  dir: string; // absolute
  name: string;
  architecture: string;
  weightsSha256: string; // of weights.bin
  metadataSha256: string; // of metadata.json
  /** The dataset the parent was trained on (its preprocess manifest's sha256). */
  dataManifestSha256: string;
  synthetic: boolean; // the parent was trained on the offline sample
}

export interface ModelMetadata {
  name: string; // directory name
  architecture: ModelName | string;
  /** What the model is for (tasks/task.ts); absent in models from before readers: 'classify'. */
  task?: 'classify' | 'read';
  inputShape: [number, number, number]; // [32, 32, 3]
  numClasses: number;
  params: { total: number; trainable: number; nonTrainable: number };
  synthetic: boolean; // trained on the offline sample: not SVHN accuracy
  dataManifestSha256: string;
  seed: number;
  backend: Exclude<BackendChoice, 'auto'> | string;
  threads: number;
  versions: Record<string, string>; // node, tfjs, svhn, ...
  hyperparameters: {
    epochs: number; batchSize: number; lr: number; patience: number; augment: boolean; limit: number | null; valLimit: number | null; extra: boolean;
    /** The recipe beyond the notebook's (absent in models trained before it: constant, 0, 0, 0, 1, false). */
    schedule?: string; warmupEpochs?: number; weightDecay?: number; labelSmoothing?: number; augmentStrength?: number; recalibrateBn?: boolean;
  };
  epochsRun: number;
  bestEpoch: number;
  stoppedEarly: boolean;
  validation: { loss: number; acc: number };
  wallTimeSec: number;
  trainImagesPerSec: number;
  createdAt: string;
  /** A fine-tune (train --init): the model it started from (path, weight and metadata hashes, its data's manifest hash). */
  parent?: ParentModel;
  /** Temperature scaling fitted at the end of training (digit models); absent in older models: T = 1. */
  calibration?: ModelCalibration;
}

/**
 * metadata.json `calibration`: the temperature T that predict, evaluate and serve divide the
 * log-probabilities by (metrics/calibration.ts), fitted on the validation split with the
 * kept weights, and what it did there (NLL and ECE at T = 1 and at T).
 */
export interface ModelCalibration {
  temperature: number;
  fittedOn: 'val';
  images: number;
  nllBefore: number;
  nllAfter: number;
  eceBefore: number;
  eceAfter: number;
}
