/**
 * Every default in one place (STYLE lesson 4). The CLI help text reads these, so what a user
 * sees under --help is what runs. Units and reasons sit beside each value.
 */

export const SPLITS = ['train', 'test', 'extra'] as const;
export type SourceSplit = (typeof SPLITS)[number];

/** Splits of the preprocess cache: train/val come from train_32x32.mat, test and extra from theirs. */
export const CACHE_SPLITS = ['train', 'val', 'test', 'extra'] as const;
export type CacheSplit = (typeof CACHE_SPLITS)[number];

/** Digit classifiers, and the reader of whole photos (tasks/read/): its detector, with a classifier for each box. */
export const MODEL_NAMES = ['baseline', 'optimized', 'resnet', 'reader'] as const;
export type ModelName = (typeof MODEL_NAMES)[number];

/** Learning rate over a run (train/schedule.ts). */
export const LR_SCHEDULES = ['constant', 'cosine', 'onecycle'] as const;
export type LrSchedule = (typeof LR_SCHEDULES)[number];

/** The per-architecture training defaults (DEFAULTS.train.recipes, DEFAULTS.finetune). */
export interface TrainRecipe {
  epochs: number;
  lr: number; // Adam's rate; a schedule's peak
  patience: number; // epochs without val_loss improvement before early stopping
  schedule: LrSchedule;
  warmupEpochs: number;
  weightDecay: number; // AdamW's decoupled decay; 0: Adam
  labelSmoothing: number;
}

/** train's defaults for `model` on the offline sample (`synthetic`) or on SVHN and your own digits. */
export function defaultRecipe(model: string, on: { synthetic: boolean }): TrainRecipe {
  const t = DEFAULTS.train;
  const own = (on.synthetic ? (t.syntheticRecipes as Partial<Record<string, TrainRecipe>>)[model] : undefined) ?? (t.recipes as Partial<Record<string, TrainRecipe>>)[model];
  return own ?? t.recipes.optimized;
}

export const BACKEND_CHOICES = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

/** SVHN's cropped digits: 32x32 RGB, ten classes (digit 0 is stored as label 10 in the .mat files). */
export const IMAGE_HEIGHT = 32;
export const IMAGE_WIDTH = 32;
export const IMAGE_CHANNELS = 3;
export const IMAGE_BYTES = IMAGE_HEIGHT * IMAGE_WIDTH * IMAGE_CHANNELS; // 3072 bytes per NHWC uint8 image
export const NUM_CLASSES = 10;

export const DEFAULTS = {
  dataDir: 'data', // downloads (.mat) and the preprocess cache (data/cache)
  modelsDir: 'models', // trained model directories: models/<name>
  baseUrl: 'http://ufldl.stanford.edu/housenumbers', // where {train,test,extra}_32x32.mat live
  downloadSplits: ['train', 'test'] as SourceSplit[], // extra is 1.3 GB: opt in with --split
  download: {
    retries: 5, // retries in a row that add no bytes, for transient failures (reset, 5xx, timeout); an attempt that adds bytes resets the count
    backoffMs: 500, // first retry delay; doubles each attempt
    timeoutMs: 30_000, // socket idle timeout
  },
  synthetic: {
    // 'full' (the default) has SVHN's own split sizes, which the default recipe needs to read
    // real digits (train: 58,606 images after the 80/20 split, ~30 s to generate); 'small' is
    // what `svhn demo` and the tests draw, seconds to make.
    size: 'full' as 'small' | 'full',
    seed: 1234,
    sizes: {
      small: { train: 12_000, test: 2000, extra: 2000 },
      full: { train: 73_257, test: 26_032, extra: 531_131 },
    },
    // `download --synthetic --format full`: whole photos with digit boxes (SVHN's format 1).
    // 'full' has the photo counts of SVHN's format-1 archives; 'small' is for demos and tests,
    // seconds to make.
    photoSizes: {
      small: { train: 2000, test: 500, extra: 500 },
      full: { train: 33_402, test: 13_068, extra: 202_353 },
    },
  },
  preprocess: {
    valFraction: 0.2, // the notebook's 80/20 stratified split
    seed: 42, // the notebook's random_state
    chunk: 10_000, // images per chunk when streaming extra
  },
  train: {
    batchSize: 64, // Keras default in the notebook
    seed: 42,
    // Per architecture. The notebook's two models keep its recipe: Adam at a constant 1e-3,
    // early stopping after 3 epochs without a lower val_loss. The resnet gets a modern one
    // (train/schedule.ts, train/adam.ts, train/augment.ts): a cosine schedule after one
    // warm-up epoch, AdamW, label smoothing, and no early stop (the schedule ends at 0; an
    // early stop would cut it short).
    recipes: {
      baseline: { epochs: 10, lr: 1e-3, patience: 3, schedule: 'constant', warmupEpochs: 0, weightDecay: 0, labelSmoothing: 0 },
      optimized: { epochs: 15, lr: 1e-3, patience: 3, schedule: 'constant', warmupEpochs: 0, weightDecay: 0, labelSmoothing: 0 },
      // 8 epochs of the full offline sample on 2 cores: ~30 min with the native kernels, 40-50 with the wasm ones (an epoch on an AVX-512 host: 224 s and 393 s). Peak 2e-3 (Adam's 1e-3 is
      // tuned for a constant rate; a cosine's average is half its peak), decay 0.05 (AdamW's
      // usual range for convnets), smoothing 0.1 (Szegedy et al. 2016).
      resnet: { epochs: 8, lr: 2e-3, patience: 8, schedule: 'cosine', warmupEpochs: 1, weightDecay: 0.05, labelSmoothing: 0.1 },
      // The reader's detector (tasks/read/detector.ts) on whole photos: a cosine schedule as the
      // resnet's, no early stop; photos carry no class to smooth.
      reader: { epochs: 12, lr: 2e-3, patience: 12, schedule: 'cosine', warmupEpochs: 1, weightDecay: 0, labelSmoothing: 0 },
    } satisfies Record<ModelName, TrainRecipe>,
    // On the offline sample the optimized model trains under a cosine schedule instead: the
    // sample's hard, varied images keep teaching after the constant rate's plateau (full sample,
    // 15 epochs: synthetic validation 85.9% -> 88.4%, the 554 real digits 82.7% -> 83.9%).
    // Real SVHN and your own digits keep the notebook's recipe above.
    syntheticRecipes: {
      optimized: { epochs: 15, lr: 2e-3, patience: 15, schedule: 'cosine', warmupEpochs: 1, weightDecay: 0, labelSmoothing: 0 },
    } satisfies Partial<Record<ModelName, TrainRecipe>>,
    augmentStrength: 1, // --augment-strength: times train/augment.ts' ranges
    // --augment (train/augment.ts) unless --no-augment: the offline sample gains from every extra
    // look (real digits read ~0.5-0.7 points better in 25k-image, 8-epoch trials), real data
    // keeps the notebook's recipe.
    augment: { synthetic: true, other: false },
    backend: 'auto' as BackendChoice,
  },
  finetune: {
    // train --init MODEL_DIR: from a trained model's weights; these replace train's defaults,
    // for every architecture: a constant rate, no decay, no smoothing unless a flag says so.
    lr: 1e-4, // a tenth of training's Adam rate: small steps keep what the parent learned
    epochs: 10, // from a trained start, fewer than from scratch (15 for optimized)
    patience: 3, // early stopping on val_loss, restoring the best weights, as in training
    schedule: 'constant',
    warmupEpochs: 0,
    weightDecay: 0,
    labelSmoothing: 0,
    // Tens of steps would leave BatchNorm's moving averages mostly the parent's (momentum
    // 0.99): they are measured on your training images before the first epoch
    // (train/recalibrate.ts; the 554 real digits, cross-validated: 84.7% -> 85.6%).
    recalibrateBn: true,
  } satisfies TrainRecipe & { recalibrateBn: boolean },
  evaluate: { split: 'test' as 'test' | 'val', batchSize: 256 },
  predict: { topK: 3, batchSize: 256, format: 'csv' as 'csv' | 'jsonl', gridCount: 25 },
  read: { format: 'csv' as 'csv' | 'jsonl', minConfidence: 0 }, // 0: never abstain
  serve: {
    host: '127.0.0.1', // loopback only: --host 0.0.0.0 opens it to the network
    port: 8080,
    bodyLimitMiB: 20, // a whole request: a phone photo is 3-8 MiB; 100 32x32 PNGs ~0.3 MiB
    maxFiles: 256, // images per request (the bench sends batches of 100)
    maxPixels: 50_000_000, // width x height per image, read from its header before decoding (a decompression bomb fails here)
    requestTimeoutSec: 30, // a request must arrive whole within this; a client sending slower gets 408 and is cut off
    headersTimeoutSec: 10, // the request line and headers
    keepAliveTimeoutSec: 5, // an idle kept-alive connection is closed after this
    shutdownTimeoutSec: 10, // SIGINT/SIGTERM: requests in flight get this long to finish
  },
  demo: {
    // npm start: a short schedule so the whole pipeline runs in under a minute on 2 cores (45 s measured in a clean clone, 2026-12-04).
    epochs: 5, // ~30 s for the optimized model on wasm, 2 cores
    limit: 9600, // all of the small synthetic sample's training split (12,000 less the 20% validation)
    valLimit: 1200,
  },
} as const;
