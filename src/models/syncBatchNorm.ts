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
 * Forward, over the M = N*H*W rows of all replicas, per channel (sums in float64, one pass
 * each on wasm: backend/kernels/syncBn.ts):
 *   mean = sum(x) / M,  var = sum(x^2) / M - mean^2,  y = gamma (x - mean) r + beta,  r = 1/sqrt(var + eps)
 * Backward: the full-batch loss is sum_k w_k L_k (w_k = n_k / N, L_k the shard's mean loss),
 * so with A = sum_k w_k sum(dy_k) and B = sum_k w_k sum(dy_k (x - mean)):
 *   dx_k = gamma r (dy_k - (A/M + (x - mean) r^2 B/M) / w_k)      (in shard-loss units)
 *   dgamma_k = sum(dy_k (x - mean)) r,  dbeta_k = sum(dy_k)        (combined by the trainer)
 */
import * as tf from '@tensorflow/tfjs';
import { batchNormBackward, channelSums } from '../backend/kernels/syncBn.js';
import { replicaContext } from './replicaContext.js';

/** The fields of a tfjs-layers BatchNormalization this file and models/inference.ts read (they are not in its public type). */
export interface BatchNormInternals {
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma?: tf.LayerVariable | null; // absent without scale
  beta?: tf.LayerVariable | null; // absent without center
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
    const rows = x.size / channels;
    const eps = self.epsilon;

    const normalize = tf.customGrad(((xIn: tf.Tensor, gammaIn: tf.Tensor, betaIn: tf.Tensor, save: tf.GradSaveFunc) => {
      // Mean and variance over every replica's rows: per-channel sums of x and x^2 and the
      // row count, added up once (float64: E[x^2] - mean^2 loses nothing at these scales).
      const { sum, sumSq } = channelSums(xIn);
      const local = new Float64Array(2 * channels + 1);
      local.set(sum);
      local.set(sumSq, channels);
      local[2 * channels] = rows;
      const total = allReduce(local);
      const m = total[2 * channels]!;
      const mean64 = total.subarray(0, channels).map((s) => s / m);
      const var64 = mean64.map((mu, c) => Math.max(0, total[channels + c]! / m - mu * mu));
      const mean = tf.tensor1d(Float32Array.from(mean64));
      const variance = tf.tensor1d(Float32Array.from(var64));
      const y = tf.batchNorm(xIn, mean, variance, betaIn as tf.Tensor1D, gammaIn as tf.Tensor1D, eps);
      save([xIn, gammaIn]);
      this.updateMovingStatistics(mean, variance);
      return {
        value: y,
        gradFunc: (dyIn: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
          const [xs, gamma] = saved as [tf.Tensor, tf.Tensor1D];
          const g = gamma.dataSync();
          const r = var64.map((v) => 1 / Math.sqrt(v + eps));
          const k1 = Float32Array.from(r, (rc, c) => g[c]! * rc);
          // dx = dy k1 + (x - mean) k2 + k3', with A, B the replicas' weighted sums (header)
          const { dx, sumDy, sumDyD } = batchNormBackward(dyIn as tf.Tensor, xs, mean64, k1, (sDy, sDyD) => {
            const weighted = new Float64Array(2 * channels);
            for (let c = 0; c < channels; c++) {
              weighted[c] = sDy[c]! * weight;
              weighted[channels + c] = sDyD[c]! * weight;
            }
            const ab = allReduce(weighted);
            const k2 = new Float32Array(channels);
            const k3 = new Float32Array(channels);
            for (let c = 0; c < channels; c++) {
              const gr = g[c]! * r[c]!;
              const c2 = (-gr * r[c]! * r[c]! * ab[channels + c]!) / (m * weight);
              k2[c] = c2;
              k3[c] = (-gr * ab[c]!) / (m * weight) - mean64[c]! * c2;
            }
            return { k2, k3 };
          });
          const dGamma = tf.tensor1d(Float32Array.from(sumDyD, (s, c) => s * r[c]!));
          const dBeta = tf.tensor1d(Float32Array.from(sumDy));
          return [dx, dGamma, dBeta];
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
