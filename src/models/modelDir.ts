/**
 * The model directory: the contract between `svhn train` and evaluate / predict / report.
 *
 *   models/<name>/model.json      tfjs layers format (modelTopology + weightsManifest)
 *   models/<name>/weights.bin     all weights, float32, in weightsManifest order
 *   models/<name>/metadata.json   ModelMetadata below
 *   models/<name>/history.json    HistoryRecord[]; history.csv the same as CSV
 *   models/<name>/curves.png      training/validation accuracy and loss per epoch
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

export interface HistoryRecord {
  epoch: number; // 1-based
  loss: number;
  acc: number;
  val_loss: number;
  val_acc: number;
  seconds: number;
  imagesPerSec: number;
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
}
