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
import { basename, dirname, join, resolve } from 'node:path';
import { DEFAULTS, IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH, NUM_CLASSES, type BackendChoice } from '../config.js';
import { SvhnError, ioError } from '../errors.js';
import { getLogger } from '../log.js';
import { createProgress } from '../progress.js';
import { buildDirAtomic, writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { Rng } from '../util/rng.js';
import { epochBatches, epochImageCount, gatherImages, type ChunkedSource, type ImageSet } from '../data/batches.js';
import { CURVES_PNG, HISTORY_CSV, HISTORY_JSON, METADATA_JSON, type HistoryRecord, type ModelMetadata } from '../models/modelDir.js';
import { saveLayersModel } from '../models/io.js';
import { buildModel, countParams } from '../models/registry.js';
import { seededDropoutLayers } from '../models/layers.js';
import type { BackendName } from '../backend/index.js';
import { FusedAdamOptimizer } from './adam.js';
import { createTrainer, type Trainer } from './replicas.js';
import { augmentBatch } from './augment.js';
import { BestModelKeeper, EarlyStopping } from './callbacks.js';
import {
  captureOptimizer,
  captureWeights,
  loadCheckpoint,
  removeCheckpoint,
  restoreOptimizer,
  restoreWeights,
  saveCheckpoint,
  type CheckpointState,
  type RunConfig,
} from './checkpoint.js';
import { historyToCsv } from './history.js';
import { checkResumedParent, copyParentWeights, describeParent } from './init.js';
import { makeDirs } from '../util/mkdirs.js';
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
  outDir: string; // the model directory, swapped in whole at the end
  resume: boolean; // continue from <outDir>.checkpoint
  /** Fine-tune: a model directory of the same architecture whose weights the run starts from. */
  init?: string | null;
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
  keptBy: 'val_acc';
  earlyStopping: { monitor: 'val_loss'; patience: number; bestEpoch: number; bestValLoss: number; stoppedEpoch: number | null };
  data: { train: number; val: number; extra: number };
}

/** `<out>.checkpoint` beside the model directory, so the final directory is swapped in whole. */
export function checkpointDirFor(outDir: string): string {
  return join(dirname(outDir), `${basename(outDir)}.checkpoint`);
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
  train: ImageSet;
  val: ImageSet;
  extra?: ChunkedSource;
  manifestSha256: string;
  synthetic: boolean;
}

async function loadData(o: TrainOptions): Promise<LoadedData> {
  const { openCache, readCacheSplit, readCacheSplitChunks, staleSourceWarnings } = await import('../data/cache.js');
  const { sampleStratified } = await import('../data/split.js');
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
  return { train, val, extra, manifestSha256: cache.manifestSha256, synthetic: cache.manifest.synthetic };
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

/** `<out>.lock` beside the model directory: one training run per --out (util/lock.ts). */
export function lockFileFor(outDir: string): string {
  return join(dirname(outDir), `${basename(outDir)}.lock`);
}

/** Trains while holding --out's lock: a second run on the same --out is refused, naming the first's pid. */
export async function trainModel(o: TrainOptions): Promise<TrainResult> {
  checkOptions(o);
  await checkWritable(o.outDir); // the lock goes beside the model directory
  return withLock(lockFileFor(o.outDir), `--out ${o.outDir}`, () => trainModelLocked(o));
}

async function trainModelLocked(o: TrainOptions): Promise<TrainResult> {
  const log = getLogger();
  const started = Date.now();
  const parent = o.init ? await describeParent(o.init, o.model) : null; // before any work: a wrong --init answers at once
  if (parent && resolve(o.outDir) === parent.dir) {
    throw new SvhnError('BAD_FLAG', `--out ${o.outDir}: is the --init model itself; a fine-tune goes to a directory of its own`, { suggestion: 'pass another --out' });
  }
  const ckptDir = checkpointDirFor(o.outDir);
  const ckpt = o.resume ? await loadCheckpoint(ckptDir) : undefined;
  if (o.resume && !ckpt) {
    throw new SvhnError('BAD_INPUT', `--resume: no checkpoint at ${ckptDir}`, { suggestion: 'train without --resume to start a new run' });
  }

  const data = await loadData(o);
  const { initBackend } = await import('../backend/index.js');
  // Training threads are data-parallel replicas (replicas.ts), each on a single-threaded
  // backend; tfjs-node threads natively and trains as one replica.
  const backend = await initBackend(o.backend, { threads: 1 });
  const requestedThreads = o.threads ?? availableParallelism();
  if (data.synthetic) {
    log.warn('SYNTHETIC data: this cache holds the offline sample, not SVHN; its accuracy says nothing about SVHN');
  }
  const augment = o.augment ?? DEFAULTS.train.augment[data.synthetic ? 'synthetic' : 'other'];

  const config: RunConfig = {
    model: o.model,
    seed: o.seed,
    batchSize: o.batchSize,
    lr: o.lr,
    limit: o.limit,
    valLimit: o.valLimit,
    extra: o.extra,
    augment,
    dataManifestSha256: data.manifestSha256,
    init: parent?.weightsSha256 ?? null,
  };
  if (ckpt) {
    checkResumedParent(ckpt.state.parent, parent, ckptDir);
    for (const k of Object.keys(config) as (keyof RunConfig)[]) {
      if (k !== 'init' && ckpt.state.config[k] !== config[k]) {
        throw new SvhnError('BAD_INPUT', `--resume: the checkpoint in ${ckptDir} was made with ${k}=${ckpt.state.config[k]}, this run has ${config[k]}`, {
          suggestion: `pass the same flags, or train without --resume`,
        });
      }
    }
    if (ckpt.state.backend !== backend.name) {
      log.warn(`resuming a ${ckpt.state.backend} run on ${backend.name}: weights will not be bit-identical to an uninterrupted run`);
    }
  }

  // Seed streams, in a fixed order (see the header).
  const root = new Rng(o.seed);
  const modelSeed = root.nextU32();
  const shuffleRng = root.fork();
  const augmentRng = root.fork();

  const model = buildModel(o.model, { seed: modelSeed });
  if (parent && !ckpt) {
    // A resumed fine-tune restores its own weights from the checkpoint below.
    await copyParentWeights(parent, model).catch((e: unknown) => {
      model.dispose();
      throw e;
    });
    log.info({ parent: parent.dir, weightsSha256: parent.weightsSha256 }, `fine-tuning from ${parent.dir} (${parent.architecture}${parent.synthetic ? ', trained on the SYNTHETIC sample' : ''})`);
  }
  const optimizer = new FusedAdamOptimizer(o.lr); // tf.train.adam's arithmetic, fused on wasm
  model.compile({ optimizer, loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  const dropout = seededDropoutLayers(model);
  const trainer = await startTrainer(o, { model, optimizer, modelSeed, backend: backend.name, threads: requestedThreads });
  const threads = trainer.replicas;
  log.info(
    { model: o.model, backend: backend.name, threads, train: data.train.count, val: data.val.count, extra: data.extra?.count ?? 0 },
    `training ${o.model} on ${backend.name} (${threadsLabel(threads)}): ${data.train.count} train + ${data.extra?.count ?? 0} extra images, ${data.val.count} validation`,
  );
  const early = new EarlyStopping(o.patience, ckpt?.state.earlyStopping, ckpt?.earlyStoppingBest);
  const keeper = new BestModelKeeper(ckpt?.state.bestModel, ckpt?.bestModelBest);
  const history: HistoryRecord[] = ckpt ? [...ckpt.state.history] : [];
  let wallBefore = 0;
  let startEpoch = 1;
  const perEpoch = epochImageCount(data);

  try {
    if (ckpt) {
      restoreWeights(model, ckpt.model);
      await restoreOptimizer(optimizer, ckpt.optimizer, ckpt.state.optimizer);
      shuffleRng.state = ckpt.state.rng.shuffle;
      augmentRng.state = ckpt.state.rng.augment;
      dropout.forEach((d, i) => (d.rngState = ckpt.state.rng.dropout[i]!));
      await trainer.syncWorkerRngStates(ckpt.state.rng.dropout);
      const savedThreads = ckpt.state.threads ?? 1;
      if (savedThreads !== threads) {
        log.warn(`resuming a ${threadsLabel(savedThreads)} run on ${threadsLabel(threads)}: the same training, rounded differently; weights will not be bit-identical to an uninterrupted run`);
      }
      wallBefore = ckpt.state.wallTimeSec;
      startEpoch = ckpt.state.epoch + 1;
      log.info(`resuming from ${ckptDir}: ${ckpt.state.epoch} epoch(s) done`);
    } else if (await access(ckptDir).then(() => true, () => false)) {
      log.warn(`a checkpoint exists at ${ckptDir}; starting a new run (pass --resume to continue it); it will be replaced`);
    }

    const batchesPerEpoch = Math.ceil(perEpoch / o.batchSize);
    let stopped = ckpt?.state.earlyStopping.stoppedEpoch != null;
    for (let epoch = startEpoch; epoch <= o.epochs && !stopped; epoch++) {
      const progress = createProgress({
        label: `epoch ${epoch}/${o.epochs} [${backend.name}, ${threadsLabel(threads)}]`,
        total: perEpoch,
        unit: 'img',
        mode: o.progress,
        plainEverySec: Infinity, // off a TTY: one line per epoch, at its end
      });
      const t0 = Date.now();
      let seen = 0;
      let lossSum = 0;
      let accSum = 0;
      let batches = 0;
      for await (const b of epochBatches({ train: data.train, extra: data.extra, batchSize: o.batchSize, rng: shuffleRng })) {
        if (augment) augmentBatch(b.xs, b.size, augmentRng);
        const { loss, acc } = await trainer.step(b.xs, b.ys, b.size); // batch means
        seen += b.size;
        lossSum += loss * b.size;
        accSum += acc * b.size;
        batches++;
        progress.update(seen, { batch: `${batches}/${batchesPerEpoch}`, loss: lossSum / seen, acc: accSum / seen });
      }
      const seconds = (Date.now() - t0) / 1000;
      const val = await trainer.evaluate(data.val); // split over the replicas too
      const record: HistoryRecord = {
        epoch,
        loss: lossSum / seen,
        acc: accSum / seen,
        val_loss: val.loss,
        val_acc: val.acc,
        seconds,
        imagesPerSec: seconds > 0 ? seen / seconds : 0,
      };
      history.push(record);
      progress.stop({ loss: record.loss, acc: record.acc, val_loss: val.loss, val_acc: val.acc });
      log.debug({ ...record }, `epoch ${epoch} done`);

      keeper.update(epoch, val.acc, model);
      stopped = early.update(epoch, val.loss, model);
      if (stopped) log.info(`early stopping after epoch ${epoch}: val_loss has not improved for ${o.patience} epoch(s); best was epoch ${early.state.bestEpoch}`);

      const opt = await captureOptimizer(optimizer);
      const state: CheckpointState = {
        format: 'svhn-checkpoint',
        version: 1,
        epoch,
        config,
        backend: backend.name,
        threads,
        rng: { shuffle: shuffleRng.state, augment: augmentRng.state, dropout: dropout.map((d) => d.rngState) },
        optimizer: opt.scalars,
        history,
        earlyStopping: early.state,
        bestModel: keeper.state,
        wallTimeSec: wallBefore + (Date.now() - started) / 1000,
        ...(parent ? { parent } : {}),
      };
      await saveCheckpoint(ckptDir, { state, model: captureWeights(model), optimizer: opt.weights, earlyStoppingBest: early.best, bestModelBest: keeper.best });
      await o.onEpochEnd?.(record, { numTensors: tf.memory().numTensors, model });
    }

  } finally {
    await trainer.close();
  }

  // EarlyStopping(restore_best_weights): the model returns to its lowest-val_loss epoch. The
  // directory keeps the highest-val_acc epoch (ModelCheckpoint's file), which we write here.
  if (early.best) restoreWeights(model, early.best);
  if (!keeper.best) throw new SvhnError('BAD_INPUT', `nothing was trained: --epochs ${o.epochs} with ${history.length} epoch(s) already done`);
  restoreWeights(model, keeper.best);

  const wallTimeSec = wallBefore + (Date.now() - started) / 1000;
  const trainSeconds = history.reduce((s, r) => s + r.seconds, 0);
  const trainImages = history.length * perEpoch;
  const bestRecord = history.find((r) => r.epoch === keeper.state.bestEpoch)!;
  const metadata: ModelMetadata & TrainExtras = {
    name: basename(o.outDir),
    architecture: o.model,
    inputShape: [IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_CHANNELS],
    numClasses: NUM_CLASSES,
    params: countParams(model),
    synthetic: data.synthetic,
    dataManifestSha256: data.manifestSha256,
    seed: o.seed,
    backend: backend.name,
    threads,
    versions: { node: process.versions.node, tfjs: tf.version.tfjs, 'tfjs-layers': tf.version_layers, svhn: await packageVersion() },
    hyperparameters: {
      epochs: o.epochs,
      batchSize: o.batchSize,
      lr: o.lr,
      patience: o.patience,
      augment,
      limit: o.limit,
      valLimit: o.valLimit,
      extra: o.extra,
    },
    epochsRun: history.length,
    bestEpoch: keeper.state.bestEpoch,
    stoppedEarly: early.state.stoppedEpoch !== null,
    validation: { loss: bestRecord.val_loss, acc: bestRecord.val_acc },
    wallTimeSec,
    trainImagesPerSec: trainSeconds > 0 ? trainImages / trainSeconds : 0,
    createdAt: new Date().toISOString(),
    keptBy: 'val_acc',
    earlyStopping: {
      monitor: 'val_loss',
      patience: o.patience,
      bestEpoch: early.state.bestEpoch,
      bestValLoss: early.state.bestLoss,
      stoppedEpoch: early.state.stoppedEpoch,
    },
    data: { train: data.train.count, val: data.val.count, extra: data.extra?.count ?? 0 },
    ...(parent ? { parent } : {}),
  };

  await buildDirAtomic(o.outDir, async (tmp) => {
    await saveLayersModel(model, tmp);
    await writeJsonAtomic(join(tmp, METADATA_JSON), metadata);
    await writeJsonAtomic(join(tmp, HISTORY_JSON), history);
    await writeFileAtomic(join(tmp, HISTORY_CSV), historyToCsv(history));
    try {
      const { renderHistoryChart } = await import('../report/charts.js');
      const png = await renderHistoryChart(history, { title: `${o.model}${data.synthetic ? ' (SYNTHETIC data)' : ''}` });
      await writeFileAtomic(join(tmp, CURVES_PNG), png);
    } catch (e) {
      log.warn({ err: e }, `could not draw ${CURVES_PNG}: ${(e as Error).message}; the model is saved without it`);
    }
  });
  await removeCheckpoint(ckptDir);
  model.dispose();
  optimizer.dispose();
  log.info(`saved ${o.outDir}: best epoch ${metadata.bestEpoch}, val_acc ${metadata.validation.acc.toFixed(4)}`);
  return { outDir: o.outDir, metadata, history, resumedFromEpoch: ckpt ? ckpt.state.epoch : null };
}
