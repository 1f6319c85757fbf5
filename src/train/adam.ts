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

export class FusedAdamOptimizer extends tf.AdamOptimizer {
  constructor(learningRate: number, beta1 = 0.9, beta2 = 0.999, epsilon?: number) {
    super(learningRate, beta1, beta2, epsilon);
  }

  override applyGradients(variableGradients: Parameters<tf.AdamOptimizer['applyGradients']>[0]): void {
    if (!tf.getKernel(ADAM_UPDATE, tf.getBackend())) {
      super.applyGradients(variableGradients);
      return;
    }
    const self = this as unknown as AdamState;
    const list = Array.isArray(variableGradients)
      ? variableGradients.map((v) => ({ name: v.name, gradient: v.tensor }))
      : Object.keys(variableGradients).map((name) => ({ name, gradient: variableGradients[name] }));
    // The same float32 scalars tfjs-core derives: sub(1, accBeta) on float32 values.
    const oneMinusAccBeta1 = Math.fround(1 - self.accBeta1.dataSync()[0]!);
    const oneMinusAccBeta2 = Math.fround(1 - self.accBeta2.dataSync()[0]!);
    const attrs: AdamUpdateAttrs = {
      beta1: self.beta1, beta2: self.beta2, oneMinusAccBeta1, oneMinusAccBeta2, epsilon: self.epsilon, learningRate: self.learningRate,
    };
    tf.tidy(() => {
      list.forEach(({ name, gradient }, i) => {
        const value = tf.engine().registeredVariables[name]!;
        self.accumulatedFirstMoment[i] ??= { originalName: `${name}/m`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
        self.accumulatedSecondMoment[i] ??= { originalName: `${name}/v`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
        if (gradient == null) return;
        const m = self.accumulatedFirstMoment[i].variable;
        const v = self.accumulatedSecondMoment[i].variable;
        const [newValue, newM, newV] = tf.engine().runKernel(
          ADAM_UPDATE, { value, m, v, g: gradient }, attrs as unknown as tf.NamedAttrMap,
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
