/**
 * Train's flags -> TrainOptions, with every default resolved here rather than in the CLI
 * (STYLE lesson 16), so that `svhn train` and each of `svhn tune`'s trials resolve a recipe
 * the same way: the architecture's recipe for this data (config.ts defaultRecipe: the offline
 * sample has its own), or fine-tuning's (DEFAULTS.finetune); a flag given wins either way.
 */
import { join } from 'node:path';
import { DEFAULTS, defaultRecipe, type BackendChoice, type LrSchedule, type TrainRecipe } from '../config.js';
import { READER_CLASSIFIER_DIR } from '../models/modelDir.js';
import type { TrainOptions } from './loop.js';

/** Train's flags as commander gives them (attribute names), before defaults per model and data. */
export interface TrainFlags {
  model?: string;
  config?: string;
  classifier?: string;
  dataDir: string;
  epochs?: number;
  batchSize: number;
  lr?: number;
  seed: number;
  limit?: number;
  valLimit?: number;
  extra: boolean;
  augment?: boolean;
  patience?: number;
  schedule?: LrSchedule;
  warmupEpochs?: number;
  weightDecay?: number;
  labelSmoothing?: number;
  recalibrateBn?: boolean;
  augmentStrength?: number;
  out?: string;
  force: boolean;
  resume: boolean;
  init?: string;
  backend: BackendChoice;
  threads?: number;
  json: boolean;
}

/**
 * Whether `model` on dataDir takes the offline sample's recipe (config.ts defaultRecipe): a
 * reader always (it trains on the photo cache, whose recipe does not depend on the digit
 * cache's data), a digit model where the cache holds the synthetic sample.
 */
export async function recipeIsSynthetic(model: string, dataDir: string): Promise<boolean> {
  const { taskNameOf } = await import('../models/registry.js');
  if (taskNameOf(model) === 'read') return true;
  const { cacheIsSynthetic } = await import('../data/cache/cache.js');
  return cacheIsSynthetic(dataDir);
}

/**
 * Whether a run of `model` augments its images when no --augment says (config.ts
 * DEFAULTS.train.augment): on the offline sample's recipe (`synthetic`, recipeIsSynthetic)
 * yes, on other data no; a reader never (its photos are not augmented).
 */
export function augmentsByDefault(model: string, synthetic: boolean): boolean {
  return model !== 'reader' && DEFAULTS.train.augment[synthetic ? 'synthetic' : 'other'];
}

/** The run `flags` ask for, training `model` into outDir. */
export async function resolveTrainOptions(model: string, flags: TrainFlags, outDir: string): Promise<TrainOptions> {
  const { taskNameOf } = await import('../models/registry.js');
  const reader = taskNameOf(model) === 'read';
  const d: TrainRecipe = flags.init ? DEFAULTS.finetune : defaultRecipe(model, { synthetic: await recipeIsSynthetic(model, flags.dataDir) });
  const classifier = reader ? (flags.classifier ?? (flags.init ? join(flags.init, READER_CLASSIFIER_DIR) : join(DEFAULTS.modelsDir, 'optimized'))) : null;
  return {
    model,
    dataDir: flags.dataDir,
    epochs: flags.epochs ?? d.epochs,
    batchSize: flags.batchSize,
    lr: flags.lr ?? d.lr,
    seed: flags.seed,
    limit: flags.limit ?? null,
    valLimit: flags.valLimit ?? null,
    extra: flags.extra,
    augment: flags.augment,
    patience: flags.patience ?? d.patience,
    schedule: flags.schedule ?? d.schedule,
    warmupEpochs: flags.warmupEpochs ?? d.warmupEpochs,
    weightDecay: flags.weightDecay ?? d.weightDecay,
    labelSmoothing: flags.labelSmoothing ?? d.labelSmoothing,
    // fine-tuning only (trainModel refuses it without --init)
    recalibrateBn: flags.recalibrateBn ?? (flags.init !== undefined && DEFAULTS.finetune.recalibrateBn),
    augmentStrength: flags.augmentStrength,
    outDir,
    force: flags.force,
    resume: flags.resume,
    init: flags.init ?? null,
    classifier,
    backend: flags.backend,
    threads: flags.threads,
  };
}
