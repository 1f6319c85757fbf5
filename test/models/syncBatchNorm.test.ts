/**
 * SyncBatchNormalization on one replica (no replica context) against tfjs-layers'
 * BatchNormalization on the cpu backend: the same training-mode output, moving statistics
 * and gradients for x, gamma and beta (to float32 rounding), inference unchanged; on cpu
 * (tf ops) and on wasm (svhn's SIMD passes, backend/kernels/syncBn.ts).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { SyncBatchNormalization } from '../../src/models/syncBatchNorm.js';
import { randomValues, relDiff, useBackend, type Backend } from '../backend/helpers.js';

const args = { axis: -1, momentum: 0.9, epsilon: 1e-3 };

function run(layer: tf.layers.Layer, x: tf.Tensor, dy: tf.Tensor) {
  layer.build(x.shape);
  // Non-trivial gamma and beta, the same for both layers.
  layer.setWeights([
    tf.tensor1d(randomValues(3, x.shape[3]!).map((v) => 1 + 0.3 * v)),
    tf.tensor1d(randomValues(4, x.shape[3]!)),
    tf.zeros([x.shape[3]!]),
    tf.ones([x.shape[3]!]),
  ]);
  const vars = layer.trainableWeights.map((w) => w.read() as tf.Variable);
  const grads = tf.grads((input: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => {
    void gamma; void beta;
    return tf.sum(tf.mul(layer.apply(input, { training: true }) as tf.Tensor, dy));
  });
  const [dx, dGamma, dBeta] = grads([x, vars[0]!, vars[1]!]);
  const y = layer.apply(x, { training: false }) as tf.Tensor; // inference after one training call
  return {
    dx: dx!.dataSync(), dGamma: dGamma!.dataSync(), dBeta: dBeta!.dataSync(),
    moving: layer.getWeights().slice(2).map((w) => w.dataSync()), inference: y.dataSync(),
    train: (layer.apply(x, { training: true }) as tf.Tensor).dataSync(),
  };
}

describe('SyncBatchNormalization (one replica)', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  const cases: Array<[Backend, number[]]> = [['cpu', [4, 5, 6, 8]], ['wasm', [4, 5, 6, 8]], ['wasm', [3, 7, 5, 6]]];
  for (const [backend, shape] of cases) it(`matches tfjs-layers BatchNormalization on cpu: ${backend}, ${shape.join('x')}`, async () => {
    const size = shape.reduce((a, b) => a * b, 1);
    const xs = randomValues(1, size).map((v) => 2 + 3 * v);
    const dys = randomValues(2, size);
    const shape4 = shape as [number, number, number, number];
    await useBackend('cpu');
    const ref = tf.tidy(() => run(tf.layers.batchNormalization(args), tf.tensor4d(xs, shape4), tf.tensor4d(dys, shape4)));
    await useBackend(backend);
    const x = tf.tensor4d(xs, shape4);
    const dy = tf.tensor4d(dys, shape4);
    const before = tf.memory().numTensors;
    const ours = tf.tidy(() => run(new SyncBatchNormalization(args), x, dy));
    expect(relDiff(ours.train, ref.train)).toBeLessThan(1e-5);
    expect(relDiff(ours.dx, ref.dx)).toBeLessThan(1e-5);
    expect(relDiff(ours.dGamma, ref.dGamma)).toBeLessThan(1e-5);
    expect(relDiff(ours.dBeta, ref.dBeta)).toBeLessThan(1e-5);
    for (let i = 0; i < 2; i++) expect(relDiff(ours.moving[i]!, ref.moving[i]!)).toBeLessThan(1e-6);
    expect(relDiff(ours.inference, ref.inference)).toBeLessThan(1e-6);
    // the statistics moved away from their initial zeros and ones
    expect(Math.abs(ours.moving[0]![0]!)).toBeGreaterThan(0.05);
    // Only the layer's own weights remain (4 variables).
    expect(tf.memory().numTensors - before).toBe(4);
    tf.dispose([x, dy]);
  });

  it('saves the same config as BatchNormalization', () => {
    const config = new SyncBatchNormalization({ ...args, name: 'bn' }).getConfig();
    expect(config).toEqual(tf.layers.batchNormalization({ ...args, name: 'bn' }).getConfig());
  });
});
