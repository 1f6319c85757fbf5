/**
 * The training stage: preprocess cache in, model directory out (see models/modelDir.ts).
 *
 * Our own loop over model.trainOnBatch rather than model.fit: fit shuffles with Math.random,
 * and we need every random draw seeded (shuffle, augmentation, dropout, initialisers) so that
 * the same seed, data and backend give bit-identical weights, and a checkpoint after each
 * epoch that resumes exactly.
 *
 * Seeds: the run seed derives, in this order, the initialiser and dropout seeds (via the model
 * builder), the shuffle stream and the augmentation stream; --limit/--val-limit subsample with
 * the run seed itself. A fine-tune (--init, ./init.ts) draws the same streams; its starting
 * weights are the parent's instead of the initialisers'.
 */
import * as tf from '@tensorflow/tfjs';
import { access, constants, readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { DEFAULTS, LR_SCHEDULES, NUM_CLASSES, type BackendChoice, type LrSchedule } from '../config.js';
import { SvhnError, ioError } from '../errors.js';
import { getLogger } from '../log.js';
import { createProgress } from '../progress.js';
import { buildDirAtomic, writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { Rng } from '../util/rng.js';
import { epochBatches, epochImageCount, gatherImages, type ChunkedSource, type ImageSet } from '../data/cache/batches.js';
import { ARGS_JSON, CURVES_PNG, HISTORY_CSV, HISTORY_JSON, METADATA_JSON, type HistoryRecord, type ModelMetadata, type ParentModel } from '../models/modelDir.js';
import { saveLayersModel } from '../models/io.js';
import { buildModel, countParams, taskOf } from '../models/registry.js';
import type { Task } from '../tasks/task.js';
import type { ClassifierFiles } from '../tasks/read/modelDir.js';
import { seededDropoutLayers, type SeededDropout } from '../models/layers.js';
import type { BackendName } from '../backend/index.js';
import { FusedAdamOptimizer } from './adam.js';
import { createTrainer, type Trainer } from './replicas.js';
import { augmentBatch, MAX_AUGMENT_STRENGTH, scaleAugment, smoothLabels } from './augment.js';
import { BestModelKeeper, EarlyStopping } from './callbacks.js';
import {
  captureOptimizer,
  loadCheckpoint,
  removeCheckpoint,
  restoreOptimizer,
  saveCheckpoint,
  type Checkpoint,
  type CheckpointState,
  type RunConfig,
} from './checkpoint.js';
import { learningRateAt } from './schedule.js';
import { recalibrateBatchNorm } from './recalibrate.js';
import { calibrateOnValidation } from './calibrate.js';
import { captureWeights, restoreWeights } from './weights.js';
import { historyToCsv, imagesPerSec, runImagesPerSec } from './history.js';
import { checkResumedParent, copyParentWeights, describeParent } from './init.js';
import { makeDirs } from '../util/mkdirs.js';
import { isSameOrInside } from '../util/paths.js';
import { assertModelOutReplaceable, type MadeBy, type OutDirPolicy } from './outDir.js';
import { withLock } from '../util/lock.js';

export interface TrainOptions {
  model: string; // a registry name
  dataDir: string;
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  limit: number | null; // stratified subsample of the cached train split
  valLimit: number | null; // ... and of val
  extra: boolean; // also train on the extra split, streamed in chunks
  /** Seeded shifts, scale, rotation, contrast (augment.ts); default: on for the synthetic sample, off for other data (DEFAULTS.train.augment). */
  augment?: boolean;
  patience: number; // early stopping on val_loss
  /** Learning-rate schedule over the run (./schedule.ts); default constant, as the notebook. */
  schedule?: LrSchedule;
  /** cosine: epochs of linear warm-up. */
  warmupEpochs?: number;
  /** AdamW's decoupled weight decay on the kernels; 0: plain Adam. */
  weightDecay?: number;
  /** Targets y * (1 - e) + e / 10 for the training loss; 0: one-hot. */
  labelSmoothing?: number;
  /** Multiplies augment.ts' ranges (shift, scale, rotation, contrast); 1: its defaults. */
  augmentStrength?: number;
  /** Fine-tune (init): before the first epoch, BatchNorm's moving statistics measured on the training split instead of the parent's (recalibrate.ts); default off. */
  recalibrateBn?: boolean;
  outDir: string; // the model directory, swapped in whole at the end (what it may replace: outDir.ts)
  /** --force: replace an earlier model at outDir. */
  force?: boolean;
  /** The command training (metadata.json `madeBy`); default 'train'. */
  madeBy?: MadeBy;
  resume: boolean; // continue from <outDir>.checkpoint
  /** How an earlier run's checkpoint, replaced by a new run, could be continued instead (the warning says it); default: pass --resume. */
  resumeHint?: string;
  /** Fine-tune: a model directory of the same architecture whose weights the run starts from. */
  init?: string | null;
  /** A reader (--model reader): the digit model directory that reads the boxes it finds, copied into the reader's directory. */
  classifier?: string | null;
  backend: BackendChoice;
  /** Data-parallel replicas (replicas.ts); default: all cores. */
  threads?: number;
  /** Images per chunk when streaming extra. */
  extraChunk?: number;
  /** Progress display; default: bar on a TTY, one line per epoch otherwise. */
  progress?: 'bar' | 'plain' | 'silent';
  /** Runs after each epoch's checkpoint is saved; throwing stops the run there (tests use it to simulate a kill). */
  onEpochEnd?: (record: HistoryRecord, info: { numTensors: number; model: tf.LayersModel }) => void | Promise<void>;
}

export interface TrainResult {
  outDir: string;
  metadata: ModelMetadata & TrainExtras;
  history: HistoryRecord[];
  resumedFromEpoch: number | null;
}

/** Fields metadata.json carries beyond ModelMetadata. */
export interface TrainExtras {
  madeBy: MadeBy;
  keptBy: 'val_acc';
  earlyStopping: { monitor: 'val_loss'; patience: number; bestEpoch: number; bestValLoss: number; stoppedEpoch: number | null };
  data: { train: number; val: number; extra: number };
}

/** `<out>.checkpoint` beside the model directory, so the final directory is swapped in whole. */
export function checkpointDirFor(outDir: string): string {
  return join(dirname(outDir), `${basename(outDir)}.checkpoint`);
}

function outDirPolicy(o: TrainOptions): OutDirPolicy {
  return { force: o.force ?? false, madeBy: o.madeBy ?? 'train' };
}

async function packageVersion(): Promise<string> {
  try {
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return 'unknown';
  }
}

function checkOptions(o: TrainOptions): void {
  const positive: Array<[string, number]> = [
    ['--epochs', o.epochs],
    ['--batch-size', o.batchSize],
    ['--patience', o.patience],
  ];
  for (const [flag, v] of positive) {
    if (!Number.isSafeInteger(v) || v <= 0) throw new SvhnError('BAD_FLAG', `${flag}: expected a positive integer, got ${v}`);
  }
  if (!(o.lr > 0 && Number.isFinite(o.lr))) throw new SvhnError('BAD_FLAG', `--lr: expected a positive number, got ${o.lr}`);
  const ranges: Array<[string, number | undefined, number, number, string]> = [
    ['--warmup-epochs', o.warmupEpochs, 0, o.epochs, `0 to --epochs (${o.epochs})`],
    ['--weight-decay', o.weightDecay, 0, 1, '0 to 1'],
    ['--label-smoothing', o.labelSmoothing, 0, 0.5, '0 to 0.5'],
    ['--augment-strength', o.augmentStrength, 0, MAX_AUGMENT_STRENGTH, `0 to ${MAX_AUGMENT_STRENGTH}`],
  ];
  for (const [flag, v, lo, hi, what] of ranges) {
    if (v !== undefined && !(Number.isFinite(v) && v >= lo && v <= hi)) throw new SvhnError('BAD_FLAG', `${flag}: expected a number from ${what}, got ${v}`);
  }
  if (o.schedule !== undefined && !(LR_SCHEDULES as readonly string[]).includes(o.schedule)) {
    throw new SvhnError('BAD_FLAG', `--schedule: expected one of ${LR_SCHEDULES.join(', ')}, got '${o.schedule}'`);
  }
  if (taskOf(o.model).name === 'read') {
    // A reader learns from whole photos: the digit crops' augmentation, smoothing and extra split do not apply.
    const digitOnly: Array<[string, boolean]> = [
      ['--extra', o.extra],
      ['--augment', o.augment === true],
      ['--label-smoothing', (o.labelSmoothing ?? 0) > 0],
    ];
    for (const [flag, given] of digitOnly) {
      if (given) throw new SvhnError('BAD_FLAG', `${flag}: applies to digit models; --model reader trains on whole photos (svhn preprocess --format full)`);
    }
    if (!o.classifier) throw new SvhnError('BAD_FLAG', '--classifier: a reader needs the digit model that reads its boxes, e.g. --classifier models/optimized');
  }
  if (o.recalibrateBn && !o.init) {
    throw new SvhnError('BAD_FLAG', "--recalibrate-bn: it replaces a parent model's BatchNorm statistics, so it needs --init MODEL_DIR");
  }
}

/** Fails before any training when the model directory cannot be written. */
async function checkWritable(outDir: string): Promise<void> {
  const parent = dirname(outDir);
  try {
    await makeDirs(parent);
    await access(parent, constants.W_OK);
  } catch (e) {
    throw ioError(parent, 'write the model directory in', e);
  }
}

interface LoadedData {
  task: Task;
  train: ImageSet;
  val: ImageSet;
  extra?: ChunkedSource;
  manifestSha256: string;
  synthetic: boolean;
}

async function loadData(o: TrainOptions): Promise<LoadedData> {
  const task = taskOf(o.model);
  if (task.name === 'read') {
    const { loadPhotoTrainingData } = await import('../tasks/read/data.js');
    return { task, ...(await loadPhotoTrainingData(o)) };
  }
  const { openCache, readCacheSplit, readCacheSplitChunks, staleSourceWarnings } = await import('../data/cache/cache.js');
  const { sampleStratified } = await import('../data/cache/split.js');
  const cache = await openCache(o.dataDir, { verify: true });
  for (const warning of await staleSourceWarnings(o.dataDir, cache)) getLogger().warn(warning);
  const subsample = (set: ImageSet, n: number | null): ImageSet =>
    n === null || n >= set.count ? set : gatherImages(set, sampleStratified(set.labels, n, o.seed));
  const train = subsample(await readCacheSplit(cache, 'train'), o.limit);
  const val = subsample(await readCacheSplit(cache, 'val'), o.valLimit);
  let extra: ChunkedSource | undefined;
  if (o.extra) {
    const entry = cache.manifest.splits.extra;
    if (!entry) {
      throw new SvhnError('MISSING_DATA', `--extra: ${join(cache.dir, 'manifest.json')} has no 'extra' split`, {
        suggestion: 'run `svhn download --split extra` and `svhn preprocess --extra`',
      });
    }
    const chunk = o.extraChunk ?? 10_000;
    extra = { count: entry.count, chunks: () => readCacheSplitChunks(cache, 'extra', chunk) };
  }
  return { task, train, val, extra, manifestSha256: cache.manifestSha256, synthetic: cache.manifest.synthetic };
}

function threadsLabel(n: number): string {
  return `${n} thread${n === 1 ? '' : 's'}`;
}

/**
 * The step runner: `threads` replicas. Where the default (all cores) cannot start its worker
 * threads, one replica with a warning; an explicit --threads N that fails is an error.
 */
async function startTrainer(
  o: TrainOptions,
  t: { model: tf.LayersModel; optimizer: tf.Optimizer; modelSeed: number; backend: BackendName; threads: number },
): Promise<Trainer> {
  const replicas = t.backend === 'tensorflow' ? 1 : t.threads;
  const spec = { model: t.model, optimizer: t.optimizer, modelName: o.model, modelSeed: t.modelSeed, backend: t.backend, maxBatch: o.batchSize };
  try {
    return await createTrainer({ ...spec, replicas });
  } catch (e) {
    if (o.threads !== undefined || replicas === 1) throw e;
    getLogger().warn(`${(e as Error).message}; training on 1 thread`);
    return createTrainer({ ...spec, replicas: 1 });
  }
}

/** A run's fixed inputs: the options checked, the data, the backend and what a checkpoint must match. */
interface Run {
  o: TrainOptions;
  started: number;
  parent: ParentModel | null;
  ckptDir: string;
  ckpt: Checkpoint | undefined;
  data: LoadedData;
  /** A reader's digit model, read before any training. */
  classifier: ClassifierFiles | null;
  backend: BackendName;
  /** A fresh run's config: the recipe is always there (only older checkpoints lack it). */
  config: RunConfig & Recipe;
}

/** A run in progress: its model, optimizer, step runner, random streams and callbacks. */
interface Session extends Run {
  model: tf.LayersModel;
  optimizer: FusedAdamOptimizer;
  trainer: Trainer;
  dropout: SeededDropout[];
  rng: { shuffle: Rng; augment: Rng };
  early: EarlyStopping;
  keeper: BestModelKeeper;
  history: HistoryRecord[];
  wallBefore: number;
}

/** `<out>.lock` beside the model directory: one training run per --out (util/lock.ts). */
export function lockFileFor(outDir: string): string {
  return join(dirname(outDir), `${basename(outDir)}.lock`);
}

/**
 * The recipe, step by step, holding --out's lock (a second run on the same --out is refused,
 * naming the first's pid): check the options and load the data; build the model, its
 * optimizer and step runner (or restore them from the checkpoint); train epoch after epoch,
 * checkpointing each; save the model directory whole.
 */
export async function trainModel(o: TrainOptions): Promise<TrainResult> {
  checkOptions(o);
  if (o.init && (await isSameOrInside(o.outDir, o.init))) {
    // compared as real paths: `ln -s par link; --init link --out par` is the parent too
    throw new SvhnError('BAD_FLAG', `--out ${o.outDir}: is the --init model ${o.init} itself or inside it; a fine-tune goes to a directory of its own`, { suggestion: 'pass another --out' });
  }
  await assertModelOutReplaceable(o.outDir, outDirPolicy(o)); // before any work; again before the swap
  await checkWritable(o.outDir); // the lock goes beside the model directory
  return withLock(lockFileFor(o.outDir), `--out ${o.outDir}`, () => trainLocked(o));
}

async function trainLocked(o: TrainOptions): Promise<TrainResult> {
  const run = await prepareRun(o);
  const session = await startSession(run);
  try {
    await trainEpochs(session);
  } finally {
    await session.trainer.close();
  }
  return saveModelDir(session);
}

/** Fine-tune parent, checkpoint, data and backend, each checked before any training. */
async function prepareRun(o: TrainOptions): Promise<Run> {
  const log = getLogger();
  const started = Date.now();
  const parent = o.init ? await describeParent(o.init, o.model) : null; // before any work: a wrong --init answers at once
  const classifier = o.classifier && taskOf(o.model).name === 'read' ? await (await import('../tasks/read/modelDir.js')).readClassifierFiles(o.classifier) : null;
  const ckptDir = checkpointDirFor(o.outDir);
  const ckpt = o.resume ? await loadCheckpoint(ckptDir) : undefined;
  if (o.resume && !ckpt) {
    throw new SvhnError('BAD_INPUT', `--resume: no checkpoint at ${ckptDir}`, { suggestion: 'train without --resume to start a new run' });
  }

  const data = await loadData(o);
  const { initBackend } = await import('../backend/index.js');
  // Training threads are data-parallel replicas (replicas.ts), each on a single-threaded
  // backend; tfjs-node threads natively and trains as one replica.
  const backend = (await initBackend(o.backend, { threads: 1, perReplica: true })).name;
  if (data.synthetic) {
    log.warn('SYNTHETIC data: this cache holds the offline sample, not SVHN; its accuracy says nothing about SVHN');
  }
  const recipe = recipeOf(o);
  const config: RunConfig & Recipe = {
    model: o.model,
    seed: o.seed,
    batchSize: o.batchSize,
    lr: o.lr,
    limit: o.limit,
    valLimit: o.valLimit,
    extra: o.extra,
    augment: data.task.name === 'read' ? false : (o.augment ?? DEFAULTS.train.augment[data.synthetic ? 'synthetic' : 'other']),
    dataManifestSha256: data.manifestSha256,
    init: parent?.weightsSha256 ?? null,
    ...recipe,
    // A schedule spans the run: its length is part of it. A constant rate may go on for more epochs.
    epochs: recipe.schedule === 'constant' ? null : o.epochs,
  };
  if (ckpt) checkResumable(ckpt, config, parent, backend, ckptDir);
  return { o, started, parent, ckptDir, ckpt, data, classifier, backend, config };
}

/** The recipe's parts beyond the notebook's. */
type Recipe = Required<Pick<RunConfig, 'schedule' | 'warmupEpochs' | 'weightDecay' | 'labelSmoothing' | 'augmentStrength' | 'recalibrateBn'>>;

/** The notebook's values of those parts: a run without the flags, and a checkpoint written before them. */
const NOTEBOOK_RECIPE: Recipe = { schedule: 'constant', warmupEpochs: 0, weightDecay: 0, labelSmoothing: 0, augmentStrength: 1, recalibrateBn: false };

function recipeOf(o: TrainOptions): Recipe {
  const n = NOTEBOOK_RECIPE;
  return {
    schedule: o.schedule ?? n.schedule,
    warmupEpochs: o.warmupEpochs ?? n.warmupEpochs,
    weightDecay: o.weightDecay ?? n.weightDecay,
    labelSmoothing: o.labelSmoothing ?? n.labelSmoothing,
    augmentStrength: o.augmentStrength ?? n.augmentStrength,
    recalibrateBn: o.recalibrateBn ?? n.recalibrateBn,
  };
}

/** A checkpoint continues this run only when every setting that shapes it agrees. */
function checkResumable(ckpt: Checkpoint, config: RunConfig, parent: ParentModel | null, backend: BackendName, ckptDir: string): void {
  checkResumedParent(ckpt.state.parent, parent, ckptDir);
  const saved: RunConfig = { ...NOTEBOOK_RECIPE, epochs: null, ...ckpt.state.config }; // checkpoints from before the recipe flags
  for (const k of Object.keys(config) as (keyof RunConfig)[]) {
    if (k !== 'init' && saved[k] !== config[k]) {
      throw new SvhnError('BAD_INPUT', `--resume: the checkpoint in ${ckptDir} was made with ${k}=${saved[k]}, this run has ${config[k]}`, {
        suggestion: `pass the same flags, or train without --resume`,
      });
    }
  }
  if (ckpt.state.backend !== backend) {
    getLogger().warn(`resuming a ${ckpt.state.backend} run on ${backend}: weights will not be bit-identical to an uninterrupted run`);
  }
}

/**
 * Seeds, model (from the initialisers or the --init parent), AdamW, the step runner and the
 * callbacks; with --resume, all of their state from the checkpoint.
 */
async function startSession(run: Run): Promise<Session> {
  const { o, ckpt, parent, ckptDir, config } = run;
  const log = getLogger();
  // Seed streams, in a fixed order (see the header).
  const root = new Rng(o.seed);
  const modelSeed = root.nextU32();
  const rng = { shuffle: root.fork(), augment: root.fork() };

  const model = buildModel(o.model, { seed: modelSeed });
  if (parent && !ckpt) {
    // A resumed fine-tune restores its own weights from the checkpoint below.
    await copyParentWeights(parent, model).catch((e: unknown) => {
      model.dispose();
      throw e;
    });
    log.info({ parent: parent.dir, weightsSha256: parent.weightsSha256 }, `fine-tuning from ${parent.dir} (${parent.architecture}${parent.synthetic ? ', trained on the SYNTHETIC sample' : ''})`);
    if (config.recalibrateBn) {
      // The parent's moving averages replaced by those of this run's images (recalibrate.ts).
      const measured = recalibrateBatchNorm(model, run.data.train, run.data.task.layout);
      if (measured.layers) log.info(`BatchNorm: the moving statistics of ${measured.layers} layer(s) measured on ${measured.images} training images`);
    }
  }
  const optimizer = new FusedAdamOptimizer(o.lr); // tf.train.adam's arithmetic, fused on wasm
  optimizer.setWeightDecay({ rate: config.weightDecay, variables: decayedVariables(model) });
  model.compile({ optimizer, loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  const dropout = seededDropoutLayers(model);
  const trainer = await startTrainer(o, { model, optimizer, modelSeed, backend: run.backend, threads: o.threads ?? availableParallelism() });
  const { train, val, extra } = run.data;
  log.info(
    { model: o.model, backend: run.backend, threads: trainer.replicas, train: train.count, val: val.count, extra: extra?.count ?? 0 },
    `training ${o.model} on ${run.backend} (${threadsLabel(trainer.replicas)}): ${train.count} train + ${extra?.count ?? 0} extra images, ${val.count} validation`,
  );
  const session: Session = {
    ...run, model, optimizer, trainer, dropout, rng,
    early: new EarlyStopping(o.patience, ckpt?.state.earlyStopping, ckpt?.earlyStoppingBest),
    keeper: new BestModelKeeper(ckpt?.state.bestModel, ckpt?.bestModelBest),
    history: ckpt ? [...ckpt.state.history] : [],
    wallBefore: 0,
  };
  try {
    if (ckpt) await restoreSession(session, ckpt);
    else if (await access(ckptDir).then(() => true, () => false)) {
      log.warn(`a checkpoint exists at ${ckptDir}; starting a new run (${o.resumeHint ?? 'pass --resume to continue it'}); it will be replaced`);
    }
  } catch (e) {
    await trainer.close();
    throw e;
  }
  return session;
}

/** The variables weight decay shrinks: convolution and dense kernels, not biases or BatchNorm's scale and shift. */
function decayedVariables(model: tf.LayersModel): Set<string> {
  return new Set(model.trainableWeights.filter((w) => /(^|\/)kernel$/.test(w.originalName)).map((w) => (w.read() as tf.Variable).name));
}

async function restoreSession(s: Session, ckpt: Checkpoint): Promise<void> {
  restoreWeights(s.model, ckpt.model);
  await restoreOptimizer(s.optimizer, ckpt.optimizer, ckpt.state.optimizer);
  s.rng.shuffle.state = ckpt.state.rng.shuffle;
  s.rng.augment.state = ckpt.state.rng.augment;
  s.dropout.forEach((d, i) => (d.rngState = ckpt.state.rng.dropout[i]!));
  await s.trainer.syncWorkerRngStates(ckpt.state.rng.dropout);
  const savedThreads = ckpt.state.threads ?? 1;
  if (savedThreads !== s.trainer.replicas) {
    getLogger().warn(`resuming a ${threadsLabel(savedThreads)} run on ${threadsLabel(s.trainer.replicas)}: the same training, rounded differently; weights will not be bit-identical to an uninterrupted run`);
  }
  s.wallBefore = ckpt.state.wallTimeSec;
  getLogger().info(`resuming from ${s.ckptDir}: ${ckpt.state.epoch} epoch(s) done`);
}

/** Epochs from the first not yet done, until --epochs or early stopping; each ends in a checkpoint. */
async function trainEpochs(s: Session): Promise<void> {
  let stopped = s.ckpt?.state.earlyStopping.stoppedEpoch != null;
  for (let epoch = (s.ckpt?.state.epoch ?? 0) + 1; epoch <= s.o.epochs && !stopped; epoch++) {
    const record = await trainEpoch(s, epoch);
    s.history.push(record);
    s.keeper.update(epoch, record.val_acc, s.model);
    stopped = s.early.update(epoch, record.val_loss, s.model);
    if (stopped) getLogger().info(`early stopping after epoch ${epoch}: val_loss has not improved for ${s.o.patience} epoch(s); best was epoch ${s.early.state.bestEpoch}`);
    await saveEpochCheckpoint(s, epoch);
    await s.o.onEpochEnd?.(record, { numTensors: tf.memory().numTensors, model: s.model });
  }
}

/**
 * One pass over the training images: per batch, augmentation and label smoothing on the
 * batch's arrays, the step's learning rate from the schedule, one step; then validation.
 */
async function trainEpoch(s: Session, epoch: number): Promise<HistoryRecord> {
  const { o, config, data } = s;
  const perEpoch = epochImageCount(data);
  const stepsPerEpoch = Math.ceil(perEpoch / o.batchSize);
  const schedule = { schedule: config.schedule, lr: o.lr, warmupEpochs: config.warmupEpochs };
  const augmentOptions = scaleAugment(config.augmentStrength);
  const t0 = Date.now(); // the display's rate and history's count from the same start
  const progress = createProgress({
    label: `epoch ${epoch}/${o.epochs} [${s.backend}, ${threadsLabel(s.trainer.replicas)}]`,
    total: perEpoch,
    unit: 'img',
    mode: o.progress,
    plainEverySec: Infinity, // off a TTY: one line per epoch, at its end
    startedAt: t0,
  });
  let seen = 0;
  let lossSum = 0;
  let accSum = 0;
  let batches = 0;
  let lr = NaN; // the rate of the epoch's last step, as history records it
  for await (const b of epochBatches({ train: data.train, extra: data.extra, batchSize: o.batchSize, rng: s.rng.shuffle, layout: data.task.layout })) {
    if (config.augment) augmentBatch(b.xs, b.size, s.rng.augment, augmentOptions);
    if (config.labelSmoothing) smoothLabels(b.ys, b.size, config.labelSmoothing);
    const step = (epoch - 1) * stepsPerEpoch + batches;
    lr = learningRateAt(schedule, step, o.epochs * stepsPerEpoch, stepsPerEpoch);
    s.optimizer.setLearningRate(lr);
    const { loss, acc } = await s.trainer.step(b.xs, b.ys, b.size); // batch means
    seen += b.size;
    lossSum += loss * b.size;
    accSum += acc * b.size;
    batches++;
    progress.update(seen, { batch: `${batches}/${stepsPerEpoch}`, loss: lossSum / seen, acc: accSum / seen });
  }
  const seconds = (Date.now() - t0) / 1000;
  progress.phase?.(`validating ${data.val.count.toLocaleString('en-US')} images`, { rate: imagesPerSec(seen, seconds) });
  const tVal = Date.now();
  const val = await s.trainer.evaluate(data.val); // split over the replicas too
  const valSeconds = (Date.now() - tVal) / 1000;
  const record: HistoryRecord = {
    epoch,
    loss: lossSum / seen,
    acc: accSum / seen,
    val_loss: val.loss,
    val_acc: val.acc,
    seconds,
    imagesPerSec: imagesPerSec(seen, seconds),
    lr,
  };
  // the epoch's line shows history's figure, not one that counts the validation pass's time
  // ... and the epoch's time (its training pass, then validation's) and learning rate (history's lr)
  progress.stop(
    { loss: record.loss, acc: record.acc, val_loss: val.loss, val_acc: val.acc, time: `${seconds.toFixed(1)}s + ${valSeconds.toFixed(1)}s val`, lr: formatLr(lr) },
    { rate: record.imagesPerSec },
  );
  getLogger().debug({ ...record }, `epoch ${epoch} done`);
  return record;
}

/** A learning rate in three significant digits: 0.001, 0.000225, 3e-7 (not toFixed's 0.0000). */
function formatLr(lr: number): string {
  return String(Number(lr.toPrecision(3)));
}

/** The whole training state after `epoch`, written atomically (./checkpoint.ts). */
async function saveEpochCheckpoint(s: Session, epoch: number): Promise<void> {
  const opt = await captureOptimizer(s.optimizer);
  const state: CheckpointState = {
    format: 'svhn-checkpoint',
    version: 1,
    epoch,
    config: s.config,
    backend: s.backend,
    threads: s.trainer.replicas,
    rng: { shuffle: s.rng.shuffle.state, augment: s.rng.augment.state, dropout: s.dropout.map((d) => d.rngState) },
    optimizer: opt.scalars,
    history: s.history,
    earlyStopping: s.early.state,
    bestModel: s.keeper.state,
    wallTimeSec: s.wallBefore + (Date.now() - s.started) / 1000,
    ...(s.parent ? { parent: s.parent } : {}),
  };
  await saveCheckpoint(s.ckptDir, { state, model: captureWeights(s.model), optimizer: opt.weights, earlyStoppingBest: s.early.best, bestModelBest: s.keeper.best });
}

/**
 * The kept weights, metadata, history and curves, swapped in as one directory; then the
 * checkpoint goes.
 */
async function saveModelDir(s: Session): Promise<TrainResult> {
  const { o, model, optimizer, history, early, keeper, data, config } = s;
  const log = getLogger();
  // EarlyStopping(restore_best_weights): the model returns to its lowest-val_loss epoch. The
  // directory keeps the highest-val_acc epoch (ModelCheckpoint's file), which we write here.
  if (early.best) restoreWeights(model, early.best);
  if (!keeper.best) throw new SvhnError('BAD_INPUT', `nothing was trained: --epochs ${o.epochs} with ${history.length} epoch(s) already done`);
  restoreWeights(model, keeper.best);

  // Temperature scaling on the validation split with the kept weights (digit models; a reader's output is no class distribution).
  const calibration = data.task.name === 'classify' && data.val.count > 0 ? calibrateOnValidation(model, data.val) : undefined;
  if (calibration) {
    log.info({ calibration }, `calibration: temperature ${calibration.temperature.toFixed(3)} on ${calibration.images} validation images: NLL ${calibration.nllBefore.toFixed(4)} -> ${calibration.nllAfter.toFixed(4)}, ECE ${calibration.eceBefore.toFixed(4)} -> ${calibration.eceAfter.toFixed(4)}`);
  }

  const perEpoch = epochImageCount(data);
  const wallTimeSec = s.wallBefore + (Date.now() - s.started) / 1000;
  const bestRecord = history.find((r) => r.epoch === keeper.state.bestEpoch)!;
  const metadata: ModelMetadata & TrainExtras = {
    name: basename(o.outDir),
    architecture: o.model,
    ...(data.task.name === 'classify' ? {} : { task: data.task.name }),
    inputShape: data.task.layout.inputShape,
    numClasses: NUM_CLASSES,
    ...(s.classifier ? { classifier: s.classifier.record } : {}),
    params: countParams(model),
    synthetic: data.synthetic,
    dataManifestSha256: data.manifestSha256,
    seed: o.seed,
    backend: s.backend,
    threads: s.trainer.replicas,
    versions: { node: process.versions.node, tfjs: tf.version.tfjs, 'tfjs-layers': tf.version_layers, svhn: await packageVersion() },
    hyperparameters: {
      epochs: o.epochs,
      batchSize: o.batchSize,
      lr: o.lr,
      patience: o.patience,
      augment: config.augment,
      limit: o.limit,
      valLimit: o.valLimit,
      extra: o.extra,
      schedule: config.schedule,
      warmupEpochs: config.warmupEpochs,
      weightDecay: config.weightDecay,
      labelSmoothing: config.labelSmoothing,
      augmentStrength: config.augmentStrength,
      recalibrateBn: config.recalibrateBn,
    },
    epochsRun: history.length,
    bestEpoch: keeper.state.bestEpoch,
    stoppedEarly: early.state.stoppedEpoch !== null,
    validation: { loss: bestRecord.val_loss, acc: bestRecord.val_acc },
    wallTimeSec,
    trainImagesPerSec: runImagesPerSec(history, perEpoch),
    createdAt: new Date().toISOString(),
    madeBy: o.madeBy ?? 'train',
    keptBy: 'val_acc',
    earlyStopping: {
      monitor: 'val_loss',
      patience: o.patience,
      bestEpoch: early.state.bestEpoch,
      bestValLoss: early.state.bestLoss,
      stoppedEpoch: early.state.stoppedEpoch,
    },
    data: { train: data.train.count, val: data.val.count, extra: data.extra?.count ?? 0 },
    ...(s.parent ? { parent: s.parent } : {}),
    ...(calibration ? { calibration } : {}),
  };

  await assertModelOutReplaceable(o.outDir, outDirPolicy(o)); // it may have changed in a long run
  await buildDirAtomic(o.outDir, async (tmp) => {
    await saveLayersModel(model, tmp);
    if (s.classifier) await (await import('../tasks/read/modelDir.js')).writeClassifierCopy(tmp, s.classifier);
    await writeJsonAtomic(join(tmp, METADATA_JSON), metadata);
    await writeJsonAtomic(join(tmp, HISTORY_JSON), history);
    await writeFileAtomic(join(tmp, HISTORY_CSV), historyToCsv(history));
    await writeJsonAtomic(join(tmp, ARGS_JSON), resolvedArgs(s));
    const { MODEL_CARD_MD, renderModelCard } = await import('../models/card.js');
    await writeFileAtomic(join(tmp, MODEL_CARD_MD), renderModelCard(metadata));
    try {
      const { historyChartTitle, renderHistoryChart } = await import('../report/charts.js');
      const png = await renderHistoryChart(history, { title: historyChartTitle(metadata.name, data.synthetic) });
      await writeFileAtomic(join(tmp, CURVES_PNG), png);
    } catch (e) {
      log.warn({ err: e }, `could not draw ${CURVES_PNG}: ${(e as Error).message}; the model is saved without it`);
    }
  });
  await removeCheckpoint(s.ckptDir);
  model.dispose();
  optimizer.dispose();
  log.info(`saved ${o.outDir}: best epoch ${metadata.bestEpoch}, val_acc ${metadata.validation.acc.toFixed(4)}`);
  return { outDir: o.outDir, metadata, history, resumedFromEpoch: s.ckpt ? s.ckpt.state.epoch : null };
}

/**
 * The run's settings as `svhn train` flags, resolved (defaults filled in, the backend and
 * threads it ran on), under the flags' names: args.json, which `svhn train --config` reads back.
 * Where the model goes and how the run reports (--out, --force, --resume, --json) are left out.
 */
function resolvedArgs(s: Session): Record<string, unknown> {
  const { o, config } = s;
  const args: Record<string, unknown> = {
    model: o.model,
    'data-dir': o.dataDir,
    epochs: o.epochs,
    'batch-size': o.batchSize,
    lr: o.lr,
    seed: o.seed,
    ...(o.limit !== null ? { limit: o.limit } : {}),
    ...(o.valLimit !== null ? { 'val-limit': o.valLimit } : {}),
    extra: o.extra,
    augment: config.augment,
    'augment-strength': config.augmentStrength,
    patience: o.patience,
    schedule: config.schedule,
    'warmup-epochs': config.warmupEpochs,
    'weight-decay': config.weightDecay,
    'label-smoothing': config.labelSmoothing,
    ...(o.init ? { init: o.init, 'recalibrate-bn': config.recalibrateBn } : {}),
    ...(o.classifier && s.classifier ? { classifier: o.classifier } : {}),
    backend: s.backend,
    threads: s.trainer.replicas,
  };
  return args;
}
