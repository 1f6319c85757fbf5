/**
 * The batched prediction stage: input items in, one row per item out, in input order.
 *
 *   items --(decode, `decodeConcurrency` files in flight)--> 32x32x3 uint8
 *         --(batches of `batchSize`, x / 255 like training)--> model.predict --> rows
 *
 * Memory is bounded by decodeConcurrency + batchSize images whatever the number of inputs.
 * Tensors: each batch's input lives inside one tf.tidy; the probabilities tensor is read
 * back with data() and disposed in a finally, so tf.memory().numTensors is flat across batches.
 */
import * as tf from '@tensorflow/tfjs';
import { IMAGE_BYTES, IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH, NUM_CLASSES } from '../config.js';
import { SvhnError } from '../errors.js';
import { scalePixels } from '../data/cache/batches.js';
import { decodeImageFile } from '../data/images/decode.js';
import { wholeBatch } from '../models/inference.js';
import { mapOrdered } from '../util/mapOrdered.js';
import type { InputItem } from './inputs.js';

/**
 * Files being read and decoded at once. model.predict blocks the JS thread for a whole
 * batch; decodes already queued keep libuv's threads busy meanwhile, so a deeper queue
 * overlaps more of decoding with prediction (bench:predict on 2 cores: ~135-185 img/s at 8,
 * ~195-225 at 32). 32 small images are well under a megabyte.
 */
export const DECODE_CONCURRENCY = 32;

export interface TopEntry {
  digit: number;
  prob: number;
}

export interface PredictionRow {
  input: string; // file path, or file.mat#i / cache:split#i
  predicted: number | null; // null when the input failed or the model abstained
  confidence: number | null; // probability of `best` (null when the input failed)
  top: TopEntry[]; // top-k digits, most probable first (ties: lower digit first)
  label: number | null; // true digit when known (MAT files, cache splits)
  error: string | null; // why the input could not be predicted
  /** The most probable digit, given even when the row abstains (null when the input failed). */
  best: number | null;
  /** `confidence` is below the run's minimum confidence: no digit in `predicted` (false for failed inputs). */
  abstained: boolean;
}

/** A row plus the 32x32x3 image the model saw (null for failed inputs), for grids. */
export interface PredictedItem {
  row: PredictionRow;
  image: Uint8Array | null;
}

export interface PredictOptions {
  model: tf.LayersModel;
  batchSize: number;
  topK: number;
  /** Image files decoded at once (libvips works on libuv's thread pool). Default DECODE_CONCURRENCY. */
  decodeConcurrency?: number;
  /**
   * Rows whose top probability is below this abstain (`predicted` null, `best` still given);
   * 0..1, default 0: never.
   */
  minConfidence?: number;
  /** Replaces decodeImageFile (tests). */
  decode?: (path: string) => Promise<Uint8Array>;
}

export function isMinConfidence(p: number): boolean {
  return Number.isFinite(p) && p >= 0 && p <= 1;
}

/** `--min-confidence` / `min_confidence`: a decimal number 0..1, or a one-line reason. */
export function parseMinConfidence(value: string): number | string {
  const n = /^\s*(\d+(\.\d*)?|\.\d+)\s*$/.test(value) ? Number(value) : NaN;
  if (!isMinConfidence(n)) return `expected a number from 0 to 1 (0.5 abstains below 50%), got '${value.slice(0, 20)}'`;
  return n;
}

/** Top k of one probability row; ties go to the lower digit. */
export function topK(probs: Float32Array | number[], k: number): TopEntry[] {
  const order = Array.from(probs, (p, digit) => ({ digit, prob: p }));
  order.sort((a, b) => b.prob - a.prob || a.digit - b.digit);
  return order.slice(0, Math.min(k, order.length));
}

interface Decoded {
  item: InputItem;
  image: Uint8Array | null;
  label: number | null;
  error: string | null;
}

/** Predicts one batch of decoded items (some may be failures) and returns their rows in order. */
async function predictBatch(model: tf.LayersModel, batch: Decoded[], k: number, minConfidence: number): Promise<PredictedItem[]> {
  const ok = batch.filter((d) => d.image !== null);
  let probs: Float32Array | undefined;
  if (ok.length > 0) {
    const x = new Float32Array(ok.length * IMAGE_BYTES);
    ok.forEach((d, i) => scalePixels(d.image!, x, i * IMAGE_BYTES)); // training's scaling
    // The input tensor dies with the tidy; the output escapes it and is disposed after reading.
    // The whole batch in one pass (wholeBatch).
    const out = tf.tidy(() => model.predict(tf.tensor4d(x, [ok.length, IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_CHANNELS]), wholeBatch(ok.length)) as tf.Tensor);
    try {
      probs = (await out.data()) as Float32Array;
    } finally {
      out.dispose();
    }
  }
  let next = 0;
  return batch.map((d) => {
    if (d.image === null) {
      return { row: { input: d.item.id, predicted: null, confidence: null, top: [], label: d.label, error: d.error, best: null, abstained: false }, image: null };
    }
    const p = probs!.subarray(next * NUM_CLASSES, (next + 1) * NUM_CLASSES);
    next++;
    const top = topK(p, k);
    const best = top[0]!;
    const abstained = best.prob < minConfidence;
    return { row: { input: d.item.id, predicted: abstained ? null : best.digit, confidence: best.prob, top, label: d.label, error: null, best: best.digit, abstained }, image: d.image };
  });
}

/** Rows for every item, in input order, batched. */
export async function* predictItems(items: AsyncIterable<InputItem> | Iterable<InputItem>, opts: PredictOptions): AsyncGenerator<PredictedItem> {
  if (!Number.isSafeInteger(opts.batchSize) || opts.batchSize < 1) throw new SvhnError('BAD_FLAG', `--batch-size: expected a positive integer, got ${opts.batchSize}`);
  if (!Number.isSafeInteger(opts.topK) || opts.topK < 1 || opts.topK > NUM_CLASSES) {
    throw new SvhnError('BAD_FLAG', `--top-k: expected 1..${NUM_CLASSES}, got ${opts.topK}`);
  }
  const minConfidence = opts.minConfidence ?? 0;
  if (!isMinConfidence(minConfidence)) throw new SvhnError('BAD_FLAG', `--min-confidence: expected a number from 0 to 1, got ${minConfidence}`);
  const decode = opts.decode ?? decodeImageFile;
  const decodeOne = async (item: InputItem): Promise<Decoded> => {
    if (item.kind === 'pixels') return { item, image: item.image, label: item.label, error: null };
    if (item.kind === 'error') return { item, image: null, label: null, error: item.error };
    try {
      return { item, image: await decode(item.path), label: null, error: null };
    } catch (e) {
      return { item, image: null, label: null, error: e instanceof Error ? e.message : String(e) };
    }
  };

  let batch: Decoded[] = [];
  for await (const d of mapOrdered(items, decodeOne, opts.decodeConcurrency ?? DECODE_CONCURRENCY)) {
    // Failed items ride along in the batch (as rows without a prediction) so rows stay in input order.
    batch.push(d);
    if (batch.length >= opts.batchSize) {
      yield* await predictBatch(opts.model, batch, opts.topK, minConfidence);
      batch = [];
    }
  }
  if (batch.length > 0) yield* await predictBatch(opts.model, batch, opts.topK, minConfidence);
}
