/**
 * BatchNorm folding at load (models/inference.ts): the folded model predicts what the saved
 * one predicts (probabilities within 1e-5, same digits), on cpu and on wasm; the resnet's
 * BatchNorms, ReLUs and Adds are gone from it; the notebook models come back as they are;
 * the directory's files are untouched; and loading, predicting and disposing leaves no tensor.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { foldBatchNorms, wholeBatch } from '../../src/models/inference.js';
import { loadLayersModel, loadModelDir, saveLayersModel } from '../../src/models/io.js';
import { buildModel } from '../../src/models/registry.js';
import { randomValues, relDiff, useBackend } from '../backend/helpers.js';

let tmp: string;

/** Saves `model` with BatchNorm statistics far from their initial 0 and 1 (so folding matters) and a metadata.json. */
async function saveWithStatistics(model: tf.LayersModel, dir: string): Promise<void> {
  let seed = 1;
  for (const layer of model.layers) {
    if (!layer.getClassName().endsWith('BatchNormalization')) continue;
    // gamma, beta, moving mean, moving variance (> 0)
    layer.setWeights(layer.getWeights().map((w, i) => tf.tensor(randomValues(seed++, w.size, 0.5).map((v) => (i === 3 ? 0.3 + v * v : i === 0 ? 1 + v : v)), w.shape)));
  }
  await saveLayersModel(model, dir);
  await writeFile(join(dir, 'metadata.json'), JSON.stringify({ name: model.name, architecture: model.name }));
  model.dispose();
}

const images = (n: number, seed: number) => tf.tensor4d(randomValues(seed, n * 32 * 32 * 3).map((v) => Math.min(1, Math.abs(v) / 2)), [n, 32, 32, 3]);

function predictValues(model: tf.LayersModel, x: tf.Tensor): Float32Array {
  return tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync() as Float32Array);
}

function argmaxes(p: Float32Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < p.length; i += 10) {
    const row = Array.from(p.subarray(i, i + 10));
    out.push(row.indexOf(Math.max(...row)));
  }
  return out;
}

beforeAll(async () => {
  await useBackend('cpu');
  tmp = await mkdtemp(join(tmpdir(), 'svhn-inference-'));
  for (const name of ['resnet', 'optimized']) await saveWithStatistics(buildModel(name, { seed: 3 }), join(tmp, name));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('folding BatchNorms into convolutions at load', () => {
  it('the resnet: its 21 convolutions left, no BatchNorm, ReLU or Add; the saved parameter count reported', async () => {
    await useBackend('cpu');
    const { model, params } = await loadModelDir(join(tmp, 'resnet'));
    const kinds = model.layers.map((l) => l.getClassName());
    expect(kinds.filter((k) => k === 'Conv2D')).toHaveLength(12); // the stem, each block's first (bias + ReLU), the 2 shortcuts (bias)
    expect(kinds.filter((k) => k === 'SvhnResidualConv2D')).toHaveLength(9); // each block's second, with Add and ReLU
    expect(kinds.filter((k) => /BatchNorm|ReLU|Add/.test(k))).toEqual([]);
    expect(params).toBe(274_042);
    model.dispose();
  });

  for (const backend of ['cpu', 'wasm'] as const) {
    it(`the resnet on ${backend} predicts the saved model's probabilities within 1e-5, the same digits`, async () => {
      await useBackend(backend);
      const saved = await loadLayersModel(join(tmp, 'resnet'));
      const { model } = await loadModelDir(join(tmp, 'resnet'));
      const x = images(backend === 'cpu' ? 6 : 64, 9);
      const want = predictValues(saved, x);
      const got = predictValues(model, x);
      x.dispose();
      saved.dispose();
      model.dispose();
      expect(Math.max(...want.map((v, i) => Math.abs(v - got[i]!)))).toBeLessThanOrEqual(1e-5);
      expect(argmaxes(got)).toEqual(argmaxes(want));
      if (backend === 'wasm') expect(new Set(argmaxes(want)).size).toBeGreaterThan(1); // not one digit for all
    });
  }

  it('leaves the notebook models as they are (their BatchNorms follow a ReLU)', async () => {
    await useBackend('cpu');
    const model = await loadLayersModel(join(tmp, 'optimized'));
    expect(foldBatchNorms(model)).toBe(model);
    model.dispose();
  });

  it('folds only what it may in other graphs: a BatchNorm read twice, an Add without ReLU, a conv with its own bias', async () => {
    await useBackend('cpu');
    const input = tf.input({ shape: [32, 32, 3] });
    const conv = (filters: number, useBias: boolean, x: tf.SymbolicTensor) =>
      tf.layers.conv2d({ filters, kernelSize: 3, padding: 'same', useBias, biasInitializer: 'randomNormal', kernelInitializer: tf.initializers.glorotNormal({ seed: filters }) }).apply(x) as tf.SymbolicTensor;
    const bn = (x: tf.SymbolicTensor) => tf.layers.batchNormalization({ axis: -1 }).apply(x) as tf.SymbolicTensor;
    const relu = (x: tf.SymbolicTensor) => tf.layers.activation({ activation: 'relu' }).apply(x) as tf.SymbolicTensor;
    const a = bn(conv(8, true, input)); // read by the ReLU and the Add: folded with its bias, ReLU kept
    const b = relu(a);
    const c = bn(conv(8, false, b)); // into an Add that no ReLU follows: folded, Add kept
    const sum = tf.layers.add().apply([c, a]) as tf.SymbolicTensor;
    const head = tf.layers.dense({ units: 10, activation: 'softmax' }).apply(tf.layers.flatten().apply(sum)) as tf.SymbolicTensor;
    const dir = join(tmp, 'odd');
    await saveWithStatistics(tf.model({ inputs: input, outputs: head }), dir);
    const saved = await loadLayersModel(dir);
    const { model } = await loadModelDir(dir);
    expect(model.layers.map((l) => l.getClassName())).toEqual(['InputLayer', 'Conv2D', 'Activation', 'Conv2D', 'Add', 'Flatten', 'Dense']);
    const x = images(4, 11);
    expect(relDiff(predictValues(model, x), predictValues(saved, x))).toBeLessThanOrEqual(1e-5);
    x.dispose();
    saved.dispose();
    model.dispose();
  });

  it('predicts each image bit for bit the same in one batch of 40 as in batches of 32 (wholeBatch)', async () => {
    await useBackend('wasm');
    const { model } = await loadModelDir(join(tmp, 'resnet'));
    const x = images(40, 13);
    const whole = tf.tidy(() => (model.predict(x, wholeBatch(40)) as tf.Tensor).dataSync());
    const by32 = tf.tidy(() => (model.predict(x, { batchSize: 32 }) as tf.Tensor).dataSync());
    x.dispose();
    model.dispose();
    expect(Array.from(whole)).toEqual(Array.from(by32));
  });

  it('changes no file of the model directory, and leaves no tensor behind', async () => {
    await useBackend('wasm');
    const dir = join(tmp, 'resnet');
    const files = async () => Promise.all(['model.json', 'weights.bin'].map((f) => readFile(join(dir, f))));
    const before = await files();
    const tensors = tf.memory().numTensors;
    const { model } = await loadModelDir(dir);
    const x = images(40, 12);
    predictValues(model, x);
    const loaded = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) predictValues(model, x);
    expect(tf.memory().numTensors).toBe(loaded);
    x.dispose();
    model.dispose();
    expect(tf.memory().numTensors).toBe(tensors);
    const after = await files();
    expect(after.map((b, i) => b.equals(before[i]!))).toEqual([true, true]);
  });
});
