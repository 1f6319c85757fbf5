/**
 * Custom layers. Importing this module registers them with tfjs' serialization, so
 * loadLayersModel (src/models/io.ts) can rebuild a saved model that uses them; the registry
 * imports it, so `import '../models/registry.js'` is enough.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../util/rng.js';
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
    // One draw per training step; the mask tensor lives inside the caller's tape/tidy.
    const stepSeed = this.rng.nextU32();
    const ctx = replicaContext();
    if (!ctx) return tf.tidy(() => tf.dropout(x, this.rate, undefined, stepSeed));
    // A replica's shard (train/replicas.ts): its rows of the whole batch's mask, the same
    // operations as tf.dropout (uniform + keep, floor, / keep), so the batch is masked as on one replica.
    return tf.tidy(() => {
      const keep = 1 - this.rate;
      const u = tf.randomUniform([ctx.total, ...x.shape.slice(1)], 0, 1, 'float32', stepSeed);
      const mask = tf.div(tf.floor(tf.add(u.slice(ctx.offset, ctx.size), keep)), keep);
      return tf.mul(x, mask);
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), rate: this.rate, seed: this.seed };
  }
}

tf.serialization.registerClass(SeededDropout);

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

export function conv2d(seeds: LayerSeeds, name: string, filters: number, inputShape?: [number, number, number]): tf.layers.Layer {
  return tf.layers.conv2d({
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
