/**
 * Custom layers. Importing this module registers them with tfjs' serialization, so
 * loadLayersModel (src/models/io.ts) can rebuild a saved model that uses them; the registry
 * imports it, so `import '../models/registry.js'` is enough.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../util/rng.js';
import { ReluConv2D } from './fusedConv.js';
import { replicaContext } from './replicaContext.js';
import { SyncBatchNormalization } from './syncBatchNorm.js';

export interface SeededDropoutArgs {
  rate: number;
  /** Seeds the per-step mask stream; a checkpoint saves and restores the stream's state. */
  seed: number;
  name?: string;
}

/**
 * Dropout with a reproducible, per-step mask. tfjs' Dropout with a fixed `seed` draws the
 * SAME mask every step, and without one draws from Math.random; this layer draws a fresh
 * seed from its own Rng at each training call, so masks differ per step yet a run repeats
 * bit for bit (and resumes exactly when `rngState` is restored). Inference is the identity,
 * scaling by 1/(1 - rate) at training time like Keras' inverted dropout.
 */
export class SeededDropout extends tf.layers.Layer {
  static className = 'SeededDropout';
  readonly rate: number;
  readonly seed: number;
  private readonly rng: Rng;

  constructor(args: SeededDropoutArgs) {
    super({ name: args.name });
    if (!(args.rate >= 0 && args.rate < 1)) throw new Error(`SeededDropout: rate must be in [0, 1), got ${args.rate}`);
    this.rate = args.rate;
    this.seed = args.seed >>> 0;
    this.rng = new Rng(this.seed);
    this.supportsMasking = true;
  }

  get rngState(): number {
    return this.rng.state;
  }

  set rngState(s: number) {
    this.rng.state = s;
  }

  /** The draw a training call makes, without the call: a replica that sits a step out keeps in step. */
  skipStep(): void {
    if (this.rate !== 0) this.rng.nextU32();
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    if (!kwargs?.training || this.rate === 0) return x;
    // One draw per training step seeds the whole batch's mask; a replica's shard
    // (train/replicas.ts) takes its rows of it, so the batch is masked as on one replica.
    const stepSeed = this.rng.nextU32();
    const rowLength = x.size / x.shape[0]!;
    const mask = dropoutMask(stepSeed, this.rate, (replicaContext()?.offset ?? 0) * rowLength, x.size);
    // The mask tensor lives inside the caller's tape/tidy (mul's gradient keeps it).
    return tf.tidy(() => tf.mul(x, tf.tensor(mask, x.shape, 'float32')));
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), rate: this.rate, seed: this.seed };
  }
}

tf.serialization.registerClass(SeededDropout);

/**
 * Values `from` .. `from + count` of a batch's inverted-dropout mask: element j of the
 * flattened batch draws the (j + 1)-th uint32 u_j of Rng(seed) and is dropped (0) when
 * u_j / 2^32 < rate, else kept and scaled by 1 / (1 - rate), as Keras' Dropout. The stream
 * is a counter, so a shard starts at its own rows in O(1) and draws only those: generating
 * the whole batch's uniforms with tf.randomUniform on every replica cost ~1.5 ms a step
 * for the baseline's 64 x 2304 mask.
 */
export function dropoutMask(seed: number, rate: number, from: number, count: number): Float32Array {
  // Kept when u_j >= rate * 2^32, compared as int32 (u_j - 2^31 >= threshold).
  const threshold = rate * 4294967296 - 2147483648;
  const scaleBits = new Int32Array(new Float32Array([1 / Math.fround(1 - rate)]).buffer)[0]!;
  const mask = new Float32Array(count);
  const bits = new Int32Array(mask.buffer); // written as bit patterns: scale or +0
  // Rng.nextU32 (mulberry32) inlined on a local state, and no branch (a coin flip
  // mispredicts half the time): 0.2 ms for the baseline's shard, against 1.4 through nextU32.
  let s = new Rng(seed).skip(from).state | 0;
  for (let j = 0; j < count; j++) {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t = (t ^ (t + Math.imul(t ^ (t >>> 7), t | 61))) | 0;
    bits[j] = scaleBits & -(+(((t ^ (t >>> 14) ^ 0x80000000) | 0) >= threshold));
  }
  return mask;
}

/** The dropout layers of a model, in layer order (their RNG states go into checkpoints). */
export function seededDropoutLayers(model: tf.LayersModel): SeededDropout[] {
  return model.layers.filter((l): l is SeededDropout => l instanceof SeededDropout);
}

/*
 * Layer factories with Keras' defaults made explicit, so every architecture file reads like
 * the notebook: 'valid' padding, glorot-uniform kernels, zero biases, BatchNorm momentum 0.99
 * and epsilon 1e-3. Kernel initialisers are seeded from the run seed (one derived seed per
 * layer, in layer order), so the same seed builds the same initial weights bit for bit.
 */
/** Derives one seed per layer from the run seed, in build order. */
export class LayerSeeds {
  private readonly rng: Rng;
  constructor(seed: number) {
    this.rng = new Rng(seed);
  }
  next(): number {
    return this.rng.nextU32();
  }
}

/**
 * Conv2D(filters, 3x3, relu) whose training calls fuse bias and ReLU into the convolution
 * and its gradient (./fusedConv.ts); saved and loaded as a plain Conv2D.
 */
export function conv2d(seeds: LayerSeeds, name: string, filters: number, inputShape?: [number, number, number]): tf.layers.Layer {
  return new ReluConv2D({
    name,
    filters,
    kernelSize: 3,
    strides: 1,
    padding: 'valid',
    activation: 'relu',
    kernelInitializer: tf.initializers.glorotUniform({ seed: seeds.next() }),
    biasInitializer: 'zeros',
    ...(inputShape ? { inputShape } : {}),
  });
}

export function dense(seeds: LayerSeeds, name: string, units: number, activation: 'relu' | 'softmax'): tf.layers.Layer {
  return tf.layers.dense({
    name,
    units,
    activation,
    kernelInitializer: tf.initializers.glorotUniform({ seed: seeds.next() }),
    biasInitializer: 'zeros',
  });
}

/** Keras' BatchNormalization, with whole-batch statistics when training on several replicas. */
export function batchNorm(name: string): tf.layers.Layer {
  return new SyncBatchNormalization({ name, axis: -1, momentum: 0.99, epsilon: 1e-3 });
}
