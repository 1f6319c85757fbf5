/**
 * The detector's loss (tasks/read/loss.ts) against the CenterNet formula written out here in
 * float64 from the same targets and outputs (an independent reference), and its gradient.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { GRID_HEIGHT, GRID_WIDTH, HEAD_CHANNELS, LABEL_BYTES, writeLabelRecord } from '../../../src/tasks/read/format.js';
import { detectorLosses } from '../../../src/tasks/read/loss.js';
import { encodeTarget, OUTPUT_LENGTH, TARGET_CHANNELS, TARGET_LENGTH } from '../../../src/tasks/read/targets.js';
import { Rng } from '../../../src/util/rng.js';

const CELLS = GRID_HEIGHT * GRID_WIDTH;

/** Per photo: focal (alpha 2, beta 4 through the targets' weights) + L1 at centres, over max(1, digits). float64. */
function referenceLosses(y: Float32Array, p: Float32Array, n: number): number[] {
  const losses: number[] = [];
  for (let i = 0; i < n; i++) {
    let focal = 0;
    let l1 = 0;
    let digits = 0;
    for (let c = 0; c < CELLS; c++) {
      const t = y.subarray(i * TARGET_LENGTH + c * TARGET_CHANNELS);
      const o = p.subarray(i * OUTPUT_LENGTH + c * HEAD_CHANNELS);
      const prob = 1 / (1 + Math.exp(-o[0]!));
      if (t[1] === 1) {
        digits++;
        focal -= (1 - prob) ** 2 * Math.log(prob);
        for (let k = 0; k < 4; k++) l1 += Math.abs(o[1 + k]! - t[2 + k]!);
      } else {
        focal -= t[0]! * prob ** 2 * Math.log(1 - prob);
      }
    }
    losses.push((focal + l1) / Math.max(1, digits));
  }
  return losses;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('detectorLosses', () => {
  // 3 photos: two digits, none, one; random outputs around the prior
  const labels = new Uint8Array(3 * LABEL_BYTES);
  writeLabelRecord([[10, 8, 22, 40], [24, 9, 37, 41]], labels, 0);
  writeLabelRecord([], labels, LABEL_BYTES);
  writeLabelRecord([[50, 3, 70, 45]], labels, 2 * LABEL_BYTES);
  const y = new Float32Array(3 * TARGET_LENGTH);
  for (let i = 0; i < 3; i++) encodeTarget(labels, i, y, i * TARGET_LENGTH);
  const rng = new Rng(11);
  const p = Float32Array.from({ length: 3 * OUTPUT_LENGTH }, (_, k) => (k % HEAD_CHANNELS === 0 ? rng.uniform(-5, 3) : rng.uniform(-1.5, 1.5)));

  it('equals the formula computed in float64, photo by photo', () => {
    const got = tf.tidy(() => detectorLosses(tf.tensor2d(y, [3, TARGET_LENGTH]), tf.tensor4d(p, [3, GRID_HEIGHT, GRID_WIDTH, HEAD_CHANNELS])).arraySync());
    const want = referenceLosses(y, p, 3);
    expect(got).toHaveLength(3);
    got.forEach((v, i) => expect(Math.abs(v - want[i]!) / Math.max(1, Math.abs(want[i]!))).toBeLessThan(1e-5));
  });

  it('has a finite gradient, even at extreme logits', () => {
    const extreme = p.map((v, k) => (k % HEAD_CHANNELS === 0 ? (k % 2 ? 40 : -40) : v));
    for (const out of [p, extreme]) {
      const g = tf.tidy(() => {
        const yt = tf.tensor2d(y, [3, TARGET_LENGTH]);
        const grad = tf.grad((x: tf.Tensor) => detectorLosses(yt, x).sum())(tf.tensor4d(out, [3, GRID_HEIGHT, GRID_WIDTH, HEAD_CHANNELS]));
        return grad.dataSync() as Float32Array;
      });
      expect(g.every(Number.isFinite)).toBe(true);
      expect(g.some((v) => v !== 0)).toBe(true);
    }
  });

  it('leaks no tensors', () => {
    const before = tf.memory().numTensors;
    const yt = tf.tensor2d(y, [3, TARGET_LENGTH]);
    const pt = tf.tensor4d(p, [3, GRID_HEIGHT, GRID_WIDTH, HEAD_CHANNELS]);
    detectorLosses(yt, pt).dispose();
    tf.dispose([yt, pt]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
