/**
 * Adam with tfjs-core's exact arithmetic, one kernel per variable where the backend has one.
 * tfjs-core's AdamOptimizer runs 12 broadcast ops per variable per step; on the wasm backend
 * svhn's 'SvhnAdamUpdate' kernel (backend/kernels/adam.ts) does them in one pass with
 * bit-identical results. Everything else (state variables, getWeights/setWeights, the beta
 * powers the checkpoint reads, the class name in a saved config) is tfjs's AdamOptimizer, and
 * on backends without the kernel (tensorflow, cpu) so is the update.
 */
import * as tf from '@tensorflow/tfjs';
import { ADAM_UPDATE, type AdamUpdateAttrs } from '../backend/kernels/adam.js';

interface AdamState {
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: Array<{ originalName: string; variable: tf.Variable } | undefined>;
  accumulatedSecondMoment: Array<{ originalName: string; variable: tf.Variable } | undefined>;
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  incrementIterations(): void;
}

export interface WeightDecay {
  /** Decoupled weight decay per step, as a fraction of the learning rate (AdamW's lambda). */
  rate: number;
  /** Names of the variables it applies to (the kernels: not biases, not BatchNorm's gamma and beta). */
  variables: ReadonlySet<string>;
}

export class FusedAdamOptimizer extends tf.AdamOptimizer {
  private decay: WeightDecay | null = null;

  constructor(learningRate: number, beta1 = 0.9, beta2 = 0.999, epsilon?: number) {
    super(learningRate, beta1, beta2, epsilon);
  }

  /** The rate of the next steps (a learning-rate schedule sets it before each step: train/schedule.ts). */
  setLearningRate(lr: number): void {
    (this as unknown as AdamState).learningRate = lr;
  }

  /**
   * AdamW (Loshchilov & Hutter 2019): before each Adam step every listed variable is
   * multiplied by 1 - lr * rate, as torch.optim.AdamW does, so the decay is not scaled by
   * Adam's per-weight normalisation as an L2 term in the loss would be.
   */
  setWeightDecay(decay: WeightDecay | null): void {
    this.decay = decay && decay.rate > 0 ? decay : null;
  }

  private applyDecay(names: string[]): void {
    const d = this.decay;
    if (!d) return;
    const factor = Math.fround(1 - Math.fround((this as unknown as AdamState).learningRate * d.rate));
    tf.tidy(() => {
      for (const name of names) {
        if (!d.variables.has(name)) continue;
        const value = tf.engine().registeredVariables[name]!;
        value.assign(tf.mul(value, factor));
      }
    });
  }

  override applyGradients(variableGradients: Parameters<tf.AdamOptimizer['applyGradients']>[0]): void {
    this.applyDecay(Array.isArray(variableGradients) ? variableGradients.map((v) => v.name) : Object.keys(variableGradients));
    if (!tf.getKernel(ADAM_UPDATE, tf.getBackend())) {
      super.applyGradients(variableGradients);
      return;
    }
    const list = Array.isArray(variableGradients)
      ? variableGradients.map((v) => ({ name: v.name, g: v.tensor }))
      : Object.keys(variableGradients).map((name) => ({ name, g: variableGradients[name] }));
    this.update(list);
  }

  /**
   * One step from two replicas' shard gradients, each variable's gradient being
   * first * firstScale + second * secondScale (train/replicas.ts): on wasm the kernel combines
   * them in its pass (float32 products and sum), elsewhere tf ops do first.
   */
  applyShardGradients(list: Array<{ name: string; first: tf.Tensor; second: tf.Tensor }>, firstScale: number, secondScale: number): void {
    this.applyDecay(list.map((v) => v.name));
    if (!tf.getKernel(ADAM_UPDATE, tf.getBackend())) {
      const combined = list.map(({ name, first, second }) => ({
        name,
        tensor: tf.tidy(() => tf.add(tf.mul(first, firstScale), tf.mul(second, secondScale))),
      }));
      try {
        super.applyGradients(combined);
      } finally {
        tf.dispose(combined.map((c) => c.tensor));
      }
      return;
    }
    this.update(list.map(({ name, first, second }) => ({ name, g: first, g2: second })), { gScale: firstScale, g2Scale: secondScale });
  }

  private update(list: Array<{ name: string; g: tf.Tensor | null | undefined; g2?: tf.Tensor }>, scales: Pick<AdamUpdateAttrs, 'gScale' | 'g2Scale'> = {}): void {
    const self = this as unknown as AdamState;
    // The same float32 scalars tfjs-core derives: sub(1, accBeta) on float32 values.
    const oneMinusAccBeta1 = Math.fround(1 - self.accBeta1.dataSync()[0]!);
    const oneMinusAccBeta2 = Math.fround(1 - self.accBeta2.dataSync()[0]!);
    const attrs: AdamUpdateAttrs = {
      beta1: self.beta1, beta2: self.beta2, oneMinusAccBeta1, oneMinusAccBeta2, epsilon: self.epsilon, learningRate: self.learningRate, ...scales,
    };
    tf.tidy(() => {
      list.forEach(({ name, g, g2 }, i) => {
        const value = tf.engine().registeredVariables[name]!;
        self.accumulatedFirstMoment[i] ??= { originalName: `${name}/m`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
        self.accumulatedSecondMoment[i] ??= { originalName: `${name}/v`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
        if (g == null) return;
        const m = self.accumulatedFirstMoment[i].variable;
        const v = self.accumulatedSecondMoment[i].variable;
        const [newValue, newM, newV] = tf.engine().runKernel(
          ADAM_UPDATE, { value, m, v, g, ...(g2 ? { g2 } : {}) }, attrs as unknown as tf.NamedAttrMap,
        ) as unknown as [tf.Tensor, tf.Tensor, tf.Tensor];
        m.assign(newM);
        v.assign(newV);
        value.assign(newValue);
      });
      self.accBeta1.assign(tf.mul(self.accBeta1, self.beta1));
      self.accBeta2.assign(tf.mul(self.accBeta2, self.beta2));
    });
    self.incrementIterations();
  }
}

/** Whether `o` is a FusedAdamOptimizer (tfjs' Optimizer makes `instanceof` true for every optimizer). */
export function combinesShards(o: tf.Optimizer): o is FusedAdamOptimizer {
  return typeof (o as Partial<FusedAdamOptimizer>).applyShardGradients === 'function';
}
