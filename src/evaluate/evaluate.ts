/**
 * Evaluating a model directory on a cache split, or on a labelled set of your own images
 * already decoded (data/images/labelled.ts), batch by batch:
 *
 *   <dataDir>/cache/<split>.images.u8 | labelled images
 *     --(chunks of batchSize, uint8)--> / 255 float32
 *     --> model.predict --> probabilities [n, 10] --> argmax, confidence, cross-entropy
 *     --> confusion matrix / loss accumulators
 *
 * Memory stays bounded by the batch: only one batch of pixels is ever in float32, and the
 * tensors of a batch are disposed before the next one is read (the notebook's kernel died
 * predicting all 26,032 test images at once). Per-sample results are kept as small typed
 * arrays (5 bytes per image), plus the pixels of a few samples and errors for the grids.
 */
import * as tf from '@tensorflow/tfjs';
import { basename, dirname, resolve } from 'node:path';
import { IMAGE_BYTES, IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH, NUM_CLASSES } from '../config.js';
import { SvhnError } from '../errors.js';
import { getLogger } from '../log.js';
import { calibrationSummary, type ReliabilityBin } from '../metrics/calibration.js';
import { classificationReport, type ClassificationReport } from '../metrics/classification.js';
import { ConfusionAccumulator, type ConfusionMatrix } from '../metrics/confusion.js';
import { MeanAccumulator } from '../metrics/mean.js';
import { calibrateProbabilities } from '../models/calibration.js';
import { wholeBatch } from '../models/inference.js';
import { loadModelDir } from '../models/io.js';
import type { ModelMetadata } from '../models/modelDir.js';
import { scalePixels } from '../data/cache/batches.js';
import { openCache, readCacheSplitChunks, staleSourceWarnings } from '../data/cache/cache.js';
import type { LabelledImages, LabelledKind, SkippedFile } from '../data/images/labelled.js';

export type EvalSplit = 'test' | 'val';

/** What to evaluate on: a split of the preprocess cache, or a labelled set (its sha256 from hashLabelledImages). */
export type EvalData = { dataDir: string; split: EvalSplit } | { labelled: LabelledImages & { sha256: string } };

export type EvaluateOptions = EvalData & {
  modelDir: string;
  batchSize: number; // images per predict call; bounds memory
  /** How many first images to keep pixels of (sample-prediction grid). */
  keepSamples?: number;
  /** How many misclassified images to keep pixels of (errors grid): the most confident ones. */
  keepErrors?: number;
  /** Apply the model's temperature (metadata.json calibration; default true); false: the raw softmax (--no-calibration). */
  calibration?: boolean;
  /** Called after each batch with images done so far. */
  onProgress?: (done: number, total: number) => void;
};

/** How well the confidences match the accuracy (metrics/calibration.ts), with the temperature evaluate applied and without. */
export interface CalibrationResult {
  /** The temperature the probabilities were divided by: the model's, or 1 with --no-calibration or none recorded. */
  temperature: number;
  /** What the model's metadata.json records (1 when absent). */
  fittedTemperature: number;
  ece: number; // of the probabilities evaluated (calibrated unless --no-calibration)
  eceRaw: number; // of the model's own softmax
  bins: ReliabilityBin[]; // of the probabilities evaluated
  binsRaw: ReliabilityBin[];
}

/** A labelled set's description in a result: where from, what was skipped. */
export interface LabelledDataSource {
  kind: LabelledKind;
  path: string;
  sha256: string; // content hash (data/images/labelled.ts)
  files: string[]; // per image, in evaluation order
  skipped: SkippedFile[];
}

/** A few images with their outcome, pixels included, for grids. */
export interface SampleSet {
  count: number;
  images: Uint8Array; // count x 32 x 32 x 3
  indices: number[]; // positions in the split
  labels: number[];
  predicted: number[];
  confidence: number[];
}

export interface EvaluationResult {
  model: {
    dir: string;
    name: string;
    architecture: string;
    params: number;
    synthetic: boolean;
    metadata: ModelMetadata;
  };
  /** split 'labelled': a folder or CSV (`source`), no cache (dataDir is the folder or the CSV's, manifestSha256 null). */
  data: { dataDir: string; split: EvalSplit | 'labelled'; count: number; synthetic: boolean; manifestSha256: string | null; source?: LabelledDataSource };
  /**
   * True when the data evaluated comes from the offline synthetic sample: not SVHN numbers.
   * The mark follows the data: a model trained on the sample (model.synthetic) evaluated on
   * real SVHN or your own images gives real numbers on that data.
   */
  synthetic: boolean;
  backend: string;
  accuracy: number;
  loss: number; // mean categorical cross-entropy per image (of the calibrated probabilities unless --no-calibration)
  calibration: CalibrationResult;
  confusion: ConfusionMatrix;
  report: ClassificationReport;
  seconds: number; // wall time of the whole pass (read + scale + predict)
  imagesPerSec: number;
  /** Per image, in split order. */
  predictions: { labels: Uint8Array; predicted: Uint8Array; confidence: Float32Array };
  samples: SampleSet; // the first images, in split order
  errors: SampleSet; // the most confident mistakes, most confident first (ties by index)
}

/** Keras' epsilon: probabilities are clipped to [eps, 1 - eps] before the log, as in training's loss. */
const EPSILON = 1e-7;


function emptySamples(capacity: number): SampleSet & { capacity: number } {
  return { count: 0, capacity, images: new Uint8Array(capacity * IMAGE_BYTES), indices: [], labels: [], predicted: [], confidence: [] };
}

function keepSample(set: SampleSet & { capacity: number }, images: Uint8Array, i: number, index: number, label: number, pred: number, conf: number): void {
  if (set.count >= set.capacity) return;
  set.images.set(images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES), set.count * IMAGE_BYTES);
  set.indices.push(index);
  set.labels.push(label);
  set.predicted.push(pred);
  set.confidence.push(conf);
  set.count++;
}

/**
 * Keeps the `capacity` most confident mistakes seen so far: when full, a new one replaces the
 * least confident kept (the later index of a tie), if it is more confident. Ties keep the
 * earlier index, since images arrive in index order. O(capacity) a mistake; capacity is a grid's.
 */
function keepConfidentError(set: SampleSet & { capacity: number }, images: Uint8Array, i: number, index: number, label: number, pred: number, conf: number): void {
  if (set.count < set.capacity) return keepSample(set, images, i, index, label, pred, conf);
  if (set.capacity === 0) return;
  let worst = 0;
  for (let k = 1; k < set.count; k++) {
    const c = set.confidence[k]!;
    const w = set.confidence[worst]!;
    if (c < w || (c === w && set.indices[k]! > set.indices[worst]!)) worst = k;
  }
  if (conf <= set.confidence[worst]!) return;
  set.images.set(images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES), worst * IMAGE_BYTES);
  set.indices[worst] = index;
  set.labels[worst] = label;
  set.predicted[worst] = pred;
  set.confidence[worst] = conf;
}

/** The set reordered most confident first, ties by index (what people look for in an errors grid). */
function byConfidence(set: SampleSet): SampleSet {
  const order = [...set.indices.keys()].sort((a, b) => set.confidence[b]! - set.confidence[a]! || set.indices[a]! - set.indices[b]!);
  const images = new Uint8Array(set.count * IMAGE_BYTES);
  order.forEach((k, e) => images.set(set.images.subarray(k * IMAGE_BYTES, (k + 1) * IMAGE_BYTES), e * IMAGE_BYTES));
  const pick = <T>(a: T[]) => order.map((k) => a[k]!);
  return { count: set.count, images, indices: pick(set.indices), labels: pick(set.labels), predicted: pick(set.predicted), confidence: pick(set.confidence) };
}

function trimSamples(set: SampleSet & { capacity: number }): SampleSet {
  const { capacity: _capacity, ...rest } = set;
  return { ...rest, images: rest.images.slice(0, rest.count * IMAGE_BYTES) };
}

interface OpenedEvalData {
  data: EvaluationResult['data'];
  chunks: () => AsyncIterable<{ start: number; count: number; images: Uint8Array; labels: Uint8Array }>;
}

async function* setChunks(set: LabelledImages, batch: number): AsyncGenerator<{ start: number; count: number; images: Uint8Array; labels: Uint8Array }> {
  for (let start = 0; start < set.count; start += batch) {
    const count = Math.min(batch, set.count - start);
    yield { start, count, images: set.images.subarray(start * IMAGE_BYTES, (start + count) * IMAGE_BYTES), labels: set.labels.subarray(start, start + count) };
  }
}

async function openEvalData(opts: EvaluateOptions): Promise<OpenedEvalData> {
  if ('labelled' in opts) {
    const set = opts.labelled;
    if (set.count === 0) throw new SvhnError('MISSING_DATA', `${set.source.flag} ${set.source.path}: no images to evaluate on`);
    const { kind, path } = set.source;
    return {
      data: {
        dataDir: resolve(kind === 'folder' ? path : dirname(path)),
        split: 'labelled',
        count: set.count,
        synthetic: false,
        manifestSha256: null,
        source: { kind, path: resolve(path), sha256: set.sha256, files: set.files, skipped: set.skipped },
      },
      chunks: () => setChunks(set, opts.batchSize),
    };
  }
  const cache = await openCache(opts.dataDir, { verify: [opts.split] }); // labels 0..9 and sha256, as train checks
  for (const warning of await staleSourceWarnings(opts.dataDir, cache)) getLogger().warn(warning);
  const entry = cache.manifest.splits[opts.split];
  if (!entry) {
    throw new SvhnError('MISSING_DATA', `--split ${opts.split}: the cache in ${cache.dir} has no '${opts.split}' split (it has ${Object.keys(cache.manifest.splits).join(', ') || 'none'})`, {
      suggestion: 're-run `svhn preprocess`',
    });
  }
  if (entry.count === 0) throw new SvhnError('MISSING_DATA', `--split ${opts.split}: the '${opts.split}' split in ${cache.dir} is empty`);
  return {
    data: { dataDir: resolve(opts.dataDir), split: opts.split, count: entry.count, synthetic: cache.manifest.synthetic, manifestSha256: cache.manifestSha256 },
    chunks: () => readCacheSplitChunks(cache, opts.split, opts.batchSize),
  };
}

/** Evaluates one model directory on a split of the cache or a labelled set. The backend must already be set. */
export async function evaluateModel(opts: EvaluateOptions): Promise<EvaluationResult> {
  const log = getLogger();
  // The raw model: evaluate wants its softmax too (the raw ECE), and applies the temperature
  // itself with the function loadModelDir's calibrated models end in.
  const { model, metadata, params, fittedTemperature } = await loadModelDir(opts.modelDir, { calibration: false });
  const temperature = opts.calibration === false ? 1 : fittedTemperature;
  try {
    const source = await openEvalData(opts);
    const total = source.data.count;

    const confusion = new ConfusionAccumulator(NUM_CLASSES);
    const loss = new MeanAccumulator();
    const labelsAll = new Uint8Array(total);
    const predictedAll = new Uint8Array(total);
    const confidenceAll = new Float32Array(total);
    const confidenceRaw = new Float32Array(total);
    const correctRaw = new Uint8Array(total);
    const samples = emptySamples(opts.keepSamples ?? 0);
    const errors = emptySamples(opts.keepErrors ?? 0);
    const xs = new Float32Array(opts.batchSize * IMAGE_BYTES); // reused: one batch of floats at a time
    const start = performance.now();

    for await (const chunk of source.chunks()) {
      const n = chunk.count;
      scalePixels(chunk.images.subarray(0, n * IMAGE_BYTES), xs); // training's scaling
      // tidy owns the input and every intermediate; probabilities leave as plain arrays.
      const [raw, probs] = tf.tidy(() => {
        const x = tf.tensor4d(xs.subarray(0, n * IMAGE_BYTES), [n, IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_CHANNELS]);
        const p = model.predict(x, wholeBatch(n)) as tf.Tensor;
        const rawValues = p.dataSync() as Float32Array;
        return [rawValues, temperature === 1 ? rawValues : (calibrateProbabilities(p, temperature).dataSync() as Float32Array)];
      });
      const predicted = new Uint8Array(n);
      let batchLossSum = 0;
      for (let i = 0; i < n; i++) {
        const row = probs.subarray(i * NUM_CLASSES, (i + 1) * NUM_CLASSES);
        let best = 0;
        let sum = 0;
        for (let c = 0; c < NUM_CLASSES; c++) {
          sum += row[c]!;
          if (row[c]! > row[best]!) best = c;
        }
        const label = chunk.labels[i]!;
        const rawRow = raw.subarray(i * NUM_CLASSES, (i + 1) * NUM_CLASSES);
        let rawBest = 0;
        for (let c = 1; c < NUM_CLASSES; c++) if (rawRow[c]! > rawRow[rawBest]!) rawBest = c;
        // Keras' categorical cross-entropy on probabilities: normalise, clip, -log p(true).
        const p = Math.min(1 - EPSILON, Math.max(EPSILON, row[label]! / sum));
        batchLossSum += -Math.log(p);
        const index = chunk.start + i;
        predicted[i] = best;
        labelsAll[index] = label;
        predictedAll[index] = best;
        confidenceAll[index] = row[best]!;
        confidenceRaw[index] = rawRow[rawBest]!;
        correctRaw[index] = rawBest === label ? 1 : 0;
        keepSample(samples, chunk.images, i, index, label, best, row[best]!);
        if (best !== label) keepConfidentError(errors, chunk.images, i, index, label, best, row[best]!);
      }
      // Weighted by batch size, so the short last batch counts for its n images only.
      loss.addSum(batchLossSum, n);
      confusion.update(chunk.labels, predicted);
      opts.onProgress?.(chunk.start + n, total);
    }
    const seconds = (performance.now() - start) / 1000;
    const matrix = confusion.result();
    const report = classificationReport(matrix);
    const calibrated = calibrationSummary(confidenceAll, Uint8Array.from(predictedAll, (p, i) => (p === labelsAll[i] ? 1 : 0)));
    const uncalibrated = calibrationSummary(confidenceRaw, correctRaw);
    for (const w of report.warnings) log.warn(`${metadata.name ?? basename(opts.modelDir)}: ${w}`);
    return {
      model: {
        dir: resolve(opts.modelDir),
        name: metadata.name || basename(resolve(opts.modelDir)),
        architecture: String(metadata.architecture ?? 'unknown'),
        params: metadata.params?.total ?? params,
        synthetic: Boolean(metadata.synthetic),
        metadata,
      },
      data: source.data,
      synthetic: source.data.synthetic,
      backend: tf.getBackend(),
      accuracy: report.accuracy,
      loss: loss.result(),
      calibration: { temperature, fittedTemperature, ece: calibrated.ece, eceRaw: uncalibrated.ece, bins: calibrated.bins, binsRaw: uncalibrated.bins },
      confusion: matrix,
      report,
      seconds,
      imagesPerSec: seconds > 0 ? total / seconds : 0,
      predictions: { labels: labelsAll, predicted: predictedAll, confidence: confidenceAll },
      samples: trimSamples(samples),
      errors: byConfidence(trimSamples(errors)),
    };
  } finally {
    model.dispose(); // its weights are tensors too
  }
}
