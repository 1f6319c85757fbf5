/**
 * Batch assembly for training and validation. Images stay uint8 NHWC in memory; each batch is
 * scaled to float32 [0, 1] on its own (64 x 3072 floats = 768 kB), so the dataset is never
 * held as float32 (the notebook's float32 copies ran it out of RAM). Batches are plain JS
 * arrays: the training loop turns them into tensors and owns their disposal, which keeps
 * this module backend-neutral and testable without tfjs.
 */
import { CLASSIFY_LAYOUT, type ExampleLayout } from '../../tasks/layout.js';
import type { Rng } from '../../util/rng.js';

/**
 * A set of images in memory: count x 32 x 32 x 3 uint8 NHWC plus digit labels; for another
 * task, its layout's image and label record sizes (tasks/layout.ts).
 */
export interface ImageSet {
  count: number;
  images: Uint8Array;
  labels: Uint8Array;
}

/** Images [from, to) of a set, sharing its memory (no copy: gatherImages copies). */
export function imageRange(set: ImageSet, from: number, to: number, layout: ExampleLayout = CLASSIFY_LAYOUT): ImageSet {
  const { imageBytes: ib, labelBytes: lb } = layout;
  return { count: to - from, images: set.images.subarray(from * ib, to * ib), labels: set.labels.subarray(from * lb, to * lb) };
}

/** One batch, ready for tf.tensor4d(xs, [size, 32, 32, 3]) / tf.tensor2d(ys, [size, 10]) (another task: its layout's shapes). */
export interface Batch {
  size: number;
  xs: Float32Array; // size x 3072, pixels / 255
  ys: Float32Array; // size x 10, one-hot
  labels: Uint8Array; // size digits (size label records)
}

/** A streamed split (extra): its size, and a fresh pass over it in chunks. */
export interface ChunkedSource {
  count: number;
  chunks: () => AsyncIterable<{ count: number; images: Uint8Array; labels: Uint8Array }>;
}

/** pixel / 255 in float32, by table (exactly the value numpy's float32 division gives). */
const SCALE = Float32Array.from({ length: 256 }, (_, v) => v / 255);

/**
 * uint8 pixels -> float32 in [0, 1], the one scaling used by training, evaluation and
 * prediction alike: writes pixels[i] / 255 to out[offset + i].
 */
export function scalePixels(pixels: Uint8Array, out: Float32Array, offset = 0): void {
  for (let i = 0; i < pixels.length; i++) out[offset + i] = SCALE[pixels[i]!]!;
}

/** The images of `set` at `indices`, gathered into a new (smaller) uint8 set. */
export function gatherImages(set: ImageSet, indices: ArrayLike<number>, layout: ExampleLayout = CLASSIFY_LAYOUT): ImageSet {
  const { imageBytes: ib, labelBytes: lb } = layout;
  const images = new Uint8Array(indices.length * ib);
  const labels = new Uint8Array(indices.length * lb);
  for (let i = 0; i < indices.length; i++) {
    const j = indices[i]!;
    images.set(set.images.subarray(j * ib, (j + 1) * ib), i * ib);
    labels.set(set.labels.subarray(j * lb, (j + 1) * lb), i * lb);
  }
  return { count: indices.length, images, labels };
}

/**
 * Fills batches of `batchSize` from (set, index) pairs pushed in order, across any number of
 * sources, so a batch may mix the in-memory train split with a streamed extra chunk. The
 * last batch of an epoch may be short.
 */
export class BatchAssembler {
  private xs: Float32Array;
  private ys: Float32Array;
  private labels: Uint8Array;
  private n = 0;

  constructor(
    readonly batchSize: number,
    private readonly layout: ExampleLayout = CLASSIFY_LAYOUT,
  ) {
    this.xs = new Float32Array(batchSize * layout.imageBytes);
    this.ys = new Float32Array(batchSize * layout.targetLength);
    this.labels = new Uint8Array(batchSize * layout.labelBytes);
  }

  /** Adds image `index` of `set`; returns a full batch when this one completes it. */
  push(set: ImageSet, index: number): Batch | undefined {
    const { imageBytes: ib, labelBytes: lb, targetLength: tl } = this.layout;
    const src = index * ib;
    scalePixels(set.images.subarray(src, src + ib), this.xs, this.n * ib);
    this.layout.encodeTarget(set.labels, index, this.ys, this.n * tl);
    this.labels.set(set.labels.subarray(index * lb, (index + 1) * lb), this.n * lb);
    this.n++;
    return this.n === this.batchSize ? this.take() : undefined;
  }

  /** The partial batch, if any (end of epoch). */
  flush(): Batch | undefined {
    return this.n > 0 ? this.take() : undefined;
  }

  private take(): Batch {
    const size = this.n;
    const { imageBytes: ib, labelBytes: lb, targetLength: tl } = this.layout;
    // Hand the filled buffers to the caller and start fresh ones: a consumer may keep a batch.
    const batch: Batch = {
      size,
      xs: size === this.batchSize ? this.xs : this.xs.slice(0, size * ib),
      ys: size === this.batchSize ? this.ys : this.ys.slice(0, size * tl),
      labels: size === this.batchSize ? this.labels : this.labels.slice(0, size * lb),
    };
    this.xs = new Float32Array(this.batchSize * ib);
    this.ys = new Float32Array(this.batchSize * tl);
    this.labels = new Uint8Array(this.batchSize * lb);
    this.n = 0;
    return batch;
  }
}

/** 0..n-1 as a Uint32Array. */
export function range(n: number): Uint32Array {
  return Uint32Array.from({ length: n }, (_, i) => i);
}

/** Validation/evaluation batches, in order, no shuffling. */
export function* sequentialBatches(set: ImageSet, batchSize: number, layout: ExampleLayout = CLASSIFY_LAYOUT): Generator<Batch> {
  const asm = new BatchAssembler(batchSize, layout);
  for (let i = 0; i < set.count; i++) {
    const b = asm.push(set, i);
    if (b) yield b;
  }
  const last = asm.flush();
  if (last) yield last;
}

export interface EpochBatchOptions {
  train: ImageSet;
  batchSize: number;
  /** Shuffles this epoch; its state after the epoch is what a checkpoint saves. */
  rng: Rng;
  /** --extra: streamed in chunks, each mixed with an equal share of the train split. */
  extra?: ChunkedSource;
  /** The task's example layout; default the classifier's. */
  layout?: ExampleLayout;
}

/** Images one epoch yields (train + extra). */
export function epochImageCount(opts: Pick<EpochBatchOptions, 'train' | 'extra'>): number {
  return opts.train.count + (opts.extra?.count ?? 0);
}

/**
 * One epoch of shuffled training batches, drawn from a seeded Rng (never Math.random).
 *
 * Without extra: a Fisher-Yates permutation of the train split.
 * With extra: memory stays bounded by the train split plus one extra chunk. The shuffled train
 * order is cut into one share per extra chunk; each share is pooled with its chunk, the pool
 * shuffled, and emitted (a chunk-local shuffle, like tf.data's shuffle buffer). Chunks are read
 * in file order; the order within and the mixing with train change every epoch.
 */
export async function* epochBatches(opts: EpochBatchOptions): AsyncGenerator<Batch> {
  const { train, batchSize, rng, extra } = opts;
  const asm = new BatchAssembler(batchSize, opts.layout);
  const trainOrder = rng.shuffle(range(train.count));
  if (!extra || extra.count === 0) {
    for (const i of trainOrder) {
      const b = asm.push(train, i);
      if (b) yield b;
    }
  } else {
    // Tag pool entries: index < 0 means train image (-1 - i), otherwise extra chunk image.
    let taken = 0;
    let seen = 0;
    for await (const chunk of extra.chunks()) {
      seen += chunk.count;
      // Train share proportional to the extra seen so far, so train spreads over the epoch.
      const upto = Math.round((train.count * seen) / extra.count);
      const share = trainOrder.subarray(taken, upto);
      taken = upto;
      const pool = new Int32Array(share.length + chunk.count);
      for (let k = 0; k < share.length; k++) pool[k] = -1 - share[k]!;
      for (let k = 0; k < chunk.count; k++) pool[share.length + k] = k;
      rng.shuffle(pool);
      const chunkSet: ImageSet = chunk;
      for (const p of pool) {
        const b = p < 0 ? asm.push(train, -1 - p) : asm.push(chunkSet, p);
        if (b) yield b;
      }
    }
    // Should the stream be shorter than announced, the rest of train still comes this epoch.
    for (const i of trainOrder.subarray(taken)) {
      const b = asm.push(train, i);
      if (b) yield b;
    }
  }
  const last = asm.flush();
  if (last) yield last;
}
