/**
 * The detector's loss, after CenterNet (Zhou et al. 2019): a focal loss on the centre logits
 * against the targets' bumps (targets.ts), and L1 on the offset and log size at each centre.
 */
import * as tf from '@tensorflow/tfjs';
import { GRID_HEIGHT, GRID_WIDTH, HEAD_CHANNELS } from './format.js';
import { TARGET_CHANNELS } from './targets.js';

/**
 * Each photo's loss, [size]: the focal loss over all cells plus the L1 of offset and log size
 * at the centre cells, divided by the photo's digit count (at least 1), so a photo weighs the
 * same whatever its length, and a batch's mean does not depend on how it is split over replicas.
 * `y` [size, TARGET_LENGTH], `p` the detector's output [size, GRID_HEIGHT, GRID_WIDTH, 5].
 */
export function detectorLosses(y: tf.Tensor, p: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => {
    const n = p.shape[0]!;
    const cells = GRID_HEIGHT * GRID_WIDTH;
    // Channels picked by a product with a 0/1 matrix, not tf.split: the split and its gradient
    // are strided copies that the wasm backend runs in JS, a product is one XNNPACK call each
    // way (and exact: every output is one input times 1 plus zeros). Each comes out [n, cells, k].
    const pick = (x: tf.Tensor, channels: number, from: number, count: number) => {
      const m = new Float32Array(channels * count);
      for (let k = 0; k < count; k++) m[(from + k) * count + k] = 1;
      return tf.matMul(x.reshape([n * cells, channels]), tf.tensor2d(m, [channels, count])).reshape([n, cells, count]);
    };
    const negWeight = pick(y, TARGET_CHANNELS, 0, 1);
    const centre = pick(y, TARGET_CHANNELS, 1, 1);
    const offset = pick(y, TARGET_CHANNELS, 2, 2);
    const logSize = pick(y, TARGET_CHANNELS, 4, 2);
    const logit = pick(p, HEAD_CHANNELS, 0, 1);
    const predOffset = pick(p, HEAD_CHANNELS, 1, 2);
    const predLogSize = pick(p, HEAD_CHANNELS, 3, 2);
    const prob = tf.sigmoid(logit);
    const logP = tf.neg(tf.softplus(tf.neg(logit))); // log sigmoid, stable
    const logNotP = tf.neg(tf.softplus(logit)); // log (1 - sigmoid)
    // focal: -(1 - p)^2 log p at centres, -(1 - bump)^4 p^2 log(1 - p) elsewhere (alpha 2, beta 4)
    const pos = tf.mul(centre, tf.mul(tf.square(tf.sub(1, prob)), logP));
    const neg = tf.mul(tf.mul(tf.sub(1, centre), negWeight), tf.mul(tf.square(prob), logNotP));
    const focal = tf.neg(tf.sum(tf.add(pos, neg), [1, 2]));
    const l1 = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(centre, tf.abs(tf.sub(a, b))), [1, 2]);
    const regression = tf.add(l1(predOffset, offset), l1(predLogSize, logSize));
    const digits = tf.maximum(tf.sum(centre, [1, 2]), 1);
    return tf.div(tf.add(focal, regression), digits) as tf.Tensor1D;
  });
}
