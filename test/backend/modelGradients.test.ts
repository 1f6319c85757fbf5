/**
 * Whole-model gradients of both CNNs on wasm (svhn's kernels) against the cpu backend:
 * same weights, same 4 images, dropout left out, BatchNorm in training mode (batch
 * statistics). The resnet is the registry's own (models/resnet.ts), its seeded dropout on:
 * the mask is drawn in JS, the same on both backends. Metric per parameter tensor: max|wasm - cpu| / max|cpu|; the worst over all
 * tensors must be <= 1e-4. Then a few optimizer steps on wasm keep numTensors flat.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { randomValues, relDiff, useBackend, type Backend } from './helpers.js';
import { buildTestModel } from './models.js';
import { buildModel } from '../../src/models/registry.js';
import { Rng } from '../../src/util/rng.js';

// Small on purpose: the cpu backend side dominates this file's time.
const BATCH = 4;

function batch(seed: number, n = BATCH): { x: Float32Array; y: Float32Array; n: number } {
  const rng = new Rng(seed);
  const x = new Float32Array(n * 32 * 32 * 3);
  for (let i = 0; i < x.length; i++) x[i] = rng.next();
  const y = new Float32Array(n * 10);
  for (let i = 0; i < n; i++) y[i * 10 + rng.int(10)] = 1;
  return { x, y, n };
}

type ModelUnderTest = 'baseline' | 'optimized' | 'resnet';

function build(name: ModelUnderTest, seed: number): tf.LayersModel {
  return name === 'resnet' ? buildModel('resnet', { seed }) : buildTestModel(name, { seed, dropout: false });
}

async function gradients(
  backend: Backend, name: ModelUnderTest, weights: Float32Array[], data: { x: Float32Array; y: Float32Array; n: number },
): Promise<Map<string, Float32Array>> {
  await useBackend(backend);
  const model = build(name, 1);
  model.setWeights(model.getWeights().map((w, i) => tf.tensor(weights[i], w.shape)));
  const x = tf.tensor4d(data.x, [data.n, 32, 32, 3]);
  const y = tf.tensor2d(data.y, [data.n, 10]);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(
    () => tf.mean(tf.metrics.categoricalCrossentropy(y, model.apply(x, { training: true }) as tf.Tensor)) as tf.Scalar,
    vars,
  );
  const out = new Map<string, Float32Array>();
  out.set('loss', value.dataSync() as Float32Array);
  // Layer names get a per-process counter (conv2d_Conv2D13): key by position and kind.
  vars.forEach((v, i) => out.set(`${i}:${v.name.replace(/\d+/g, '')}`, grads[v.name].dataSync() as Float32Array));
  tf.dispose([value, x, y, ...Object.values(grads)]);
  model.dispose();
  return out;
}

describe('whole-model gradients, wasm vs cpu', () => {
  for (const name of ['baseline', 'optimized', 'resnet'] as const) {
    it(`${name}: every parameter's gradient within 1e-4 relative`, async () => {
      await useBackend('cpu');
      // Random weights with negative biases/BN shifts too, so pooled maxima are often <= 0.
      const ref = build(name, 7);
      const weights = ref.getWeights().map((w, i) => {
        const v = w.dataSync() as Float32Array;
        const isKernel = w.shape.length > 1;
        return isKernel ? Float32Array.from(v) : randomValues(900 + i, v.length, 0.5);
      });
      // Moving variance must stay positive (unused in training mode, but keep it valid).
      ref.getWeights().forEach((w, i) => {
        if (ref.weights[i].name.includes('moving_variance')) weights[i] = weights[i].map((v) => Math.abs(v) + 0.5);
      });
      ref.dispose();
      // The resnet on 2 images: the cpu backend's 21 convolutions take most of this file's time
      // (and block the test worker while they run).
      const data = batch(11, name === 'resnet' ? 2 : BATCH);
      const cpu = await gradients('cpu', name, weights, data);
      const wasm = await gradients('wasm', name, weights, data);
      expect([...wasm.keys()]).toEqual([...cpu.keys()]);
      const diffs = [...cpu.keys()].map((k) => ({ k, d: relDiff(wasm.get(k)!, cpu.get(k)!) }));
      const worst = diffs.reduce((a, b) => (b.d > a.d ? b : a));
      expect(worst.d, `worst: ${worst.k}`).toBeLessThanOrEqual(1e-4);
      // The gradients are not trivially zero.
      let largest = 0;
      for (const g of cpu.values()) for (const v of g) largest = Math.max(largest, Math.abs(v));
      expect(largest).toBeGreaterThan(1e-3);
      if (process.env.SVHN_TEST_VERBOSE) console.log(name, diffs.map(({ k, d }) => `${k} ${d.toExponential(2)}`).join('\n'));
    });
  }
});

describe('training on wasm', () => {
  it('keeps numTensors and heap buffers flat over optimizer steps (all three models, dropout on)', async () => {
    await useBackend('wasm');
    for (const name of ['baseline', 'optimized', 'resnet'] as const) {
      const model = name === 'resnet' ? buildModel('resnet', { seed: 3 }) : buildTestModel(name, { seed: 3, dropout: true });
      model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
      const data = batch(12);
      const x = tf.tensor4d(data.x, [BATCH, 32, 32, 3]);
      const y = tf.tensor2d(data.y, [BATCH, 10]);
      const backend = tf.backend() as unknown as { numDataIds(): number };
      const counts: number[] = [];
      const buffers: number[] = [];
      const losses: number[] = [];
      for (let step = 0; step < 4; step++) {
        const [loss] = (await model.trainOnBatch(x, y)) as number[];
        losses.push(loss);
        counts.push(tf.memory().numTensors);
        buffers.push(backend.numDataIds()); // heap buffers: shared (Identity) ones must be freed too
      }
      expect(losses.every(Number.isFinite)).toBe(true);
      // Step 1 creates Adam's slots; after that the count must not move.
      expect(counts.slice(1)).toEqual([counts[1], counts[1], counts[1]]);
      expect(buffers.slice(1)).toEqual([buffers[1], buffers[1], buffers[1]]);
      tf.dispose([x, y]);
      model.dispose();
    }
  });

  it('is bit-reproducible: the same seed and batches give identical weights (optimized, dropout on)', async () => {
    await useBackend('wasm');
    const trainTwice = async (): Promise<Float32Array[]> => {
      // Dropout left out: tfjs-layers' Dropout draws from an unseeded generator.
      const model = buildTestModel('optimized', { seed: 5, dropout: false });
      model.compile({ optimizer: tf.train.adam(1e-2), loss: 'categoricalCrossentropy' });
      for (let step = 0; step < 2; step++) {
        const data = batch(20 + step);
        const x = tf.tensor4d(data.x, [BATCH, 32, 32, 3]);
        const y = tf.tensor2d(data.y, [BATCH, 10]);
        await model.trainOnBatch(x, y);
        tf.dispose([x, y]);
      }
      const weights = model.getWeights().map((w) => w.dataSync() as Float32Array);
      model.dispose();
      return weights;
    };
    const a = await trainTwice();
    const b = await trainTwice();
    expect(a.length).toBe(b.length);
    a.forEach((w, i) => expect(Buffer.from(w.buffer).equals(Buffer.from(b[i].buffer)), `weight ${i}`).toBe(true));
  });
});
