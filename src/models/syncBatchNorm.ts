/**
 * BatchNormalization whose training-mode statistics cover the whole batch when the batch is
 * split over data-parallel replicas (src/train/replicas.ts), as PyTorch's SyncBatchNorm: the
 * per-channel sums are added over the replicas (models/replicaContext.ts), in the forward
 * pass for the mean and variance and in the backward pass for their gradients. With one
 * replica it computes what tfjs-layers' BatchNormalization computes (the batch's moments,
 * tf.batchNorm, the same moving-average update), checked against it in
 * test/models/syncBatchNorm.test.ts. Inference is tfjs-layers' own code.
 *
 * Saved models name it BatchNormalization (models/io.ts): same config, same weights.
 *
 * Forward, over the M = N*H*W rows of all replicas, per channel:
 *   mean = sum(x) / M,  var = sum((x - mean)^2) / M,  y = gamma (x - mean) r + beta,  r = 1/sqrt(var + eps)
 * Backward: the full-batch loss is sum_k w_k L_k (w_k = n_k / N, L_k the shard's mean loss),
 * so with A = sum_k w_k sum(dy_k) and B = sum_k w_k sum(dy_k (x - mean)):
 *   dx_k = gamma r (dy_k - (A/M + (x - mean) r^2 B/M) / w_k)      (in shard-loss units)
 *   dgamma_k = sum(dy_k (x - mean)) r,  dbeta_k = sum(dy_k)        (combined by the trainer)
 */
import * as tf from '@tensorflow/tfjs';
import { replicaContext } from './replicaContext.js';

interface BatchNormInternals {
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma: tf.LayerVariable | null;
  beta: tf.LayerVariable | null;
  movingMean: tf.LayerVariable;
  movingVariance: tf.LayerVariable;
}

/** tfjs-layers does not export the class itself; its factory's instances have it as constructor. */
const BatchNormalization = tf.layers.batchNormalization({}).constructor as new (
  args: Parameters<typeof tf.layers.batchNormalization>[0],
) => tf.layers.Layer;

/** Identity all-reduce for one replica. */
const alone = (v: Float64Array) => v;

export class SyncBatchNormalization extends BatchNormalization {
  static className = 'SyncBatchNormalization';

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }): tf.Tensor | tf.Tensor[] {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    const self = this as unknown as BatchNormInternals;
    const channelsLast = self.axis === -1 || self.axis === x.rank - 1;
    if (!kwargs?.training || !channelsLast || x.rank < 2 || !self.center || !self.scale) return super.call(inputs, kwargs);
    const channels = x.shape[x.rank - 1]!;
    const ctx = replicaContext();
    const allReduce = ctx?.allReduce ?? alone;
    const weight = ctx ? ctx.size / ctx.total : 1;
    const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
    const rows = x.size / channels;
    const eps = self.epsilon;

    const normalize = tf.customGrad(((xIn: tf.Tensor, gammaIn: tf.Tensor, betaIn: tf.Tensor, save: tf.GradSaveFunc) => {
      const xt = xIn as tf.Tensor;
      // Mean over every replica's rows: sum(x) and the row count, added up.
      const local = new Float64Array(channels + 1);
      local.set(tf.tidy(() => tf.sum(xt, axes).dataSync()));
      local[channels] = rows;
      const total = allReduce(local);
      const m = total[channels]!;
      const mean = tf.tensor1d(Float32Array.from(total.subarray(0, channels), (s) => s / m));
      // Variance: centred squares, added up (two passes, as tf.moments).
      const sq = allReduce(Float64Array.from(tf.tidy(() => tf.sum(tf.square(tf.sub(xt, mean)), axes).dataSync())));
      const variance = tf.tensor1d(Float32Array.from(sq, (s) => s / m));
      const y = tf.batchNorm(xt, mean, variance, betaIn as tf.Tensor1D, gammaIn as tf.Tensor1D, eps);
      save([xt, mean, variance, gammaIn as tf.Tensor]);
      this.updateMovingStatistics(mean, variance);
      // mean and variance were saved: the engine keeps them for the gradient, then frees them.
      return {
        value: y,
        gradFunc: (dyIn: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
          const dy = dyIn as tf.Tensor;
          const [xs, mu, v, gamma] = saved as [tf.Tensor, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D];
          const centred = tf.sub(xs, mu);
          const sumDy = tf.sum(dy, axes);
          const sumDyD = tf.sum(tf.mul(dy, centred), axes);
          const sums = new Float64Array(2 * channels);
          sums.set(sumDy.dataSync());
          sums.set(sumDyD.dataSync(), channels);
          const ab = allReduce(sums.map((s) => s * weight));
          const r = v.dataSync().map((vi) => 1 / Math.sqrt(vi + eps));
          const g = gamma.dataSync();
          // dx = dy * k1 + centred * k2 + k3, per channel
          const k1 = new Float32Array(channels);
          const k2 = new Float32Array(channels);
          const k3 = new Float32Array(channels);
          for (let c = 0; c < channels; c++) {
            const gr = g[c]! * r[c]!;
            k1[c] = gr;
            k2[c] = (-gr * r[c]! * r[c]! * ab[channels + c]!) / (m * weight);
            k3[c] = (-gr * ab[c]!) / (m * weight);
          }
          const dx = tf.add(tf.add(tf.mul(dy, tf.tensor1d(k1)), tf.mul(centred, tf.tensor1d(k2))), tf.tensor1d(k3));
          const dGamma = tf.mul(sumDyD, tf.tensor1d(r));
          return [dx, dGamma, sumDy];
        },
      };
    }) as unknown as Parameters<typeof tf.customGrad>[0]);
    return (normalize as unknown as (...t: tf.Tensor[]) => tf.Tensor)(x, self.gamma!.read(), self.beta!.read());
  }

  /** tfjs-layers' moving average: v <- v - (v - value) * (1 - momentum). */
  private updateMovingStatistics(mean: tf.Tensor, variance: tf.Tensor): void {
    const self = this as unknown as BatchNormInternals;
    tf.tidy(() => {
      const decay = 1 - self.momentum;
      for (const [variable, value] of [[self.movingMean, mean], [self.movingVariance, variance]] as const) {
        const orig = variable.read();
        variable.write(tf.sub(orig, tf.mul(tf.sub(orig, value), decay)));
      }
    });
  }
}

tf.serialization.registerClass(SyncBatchNormalization as unknown as tf.serialization.SerializableConstructor<tf.layers.Layer>);
