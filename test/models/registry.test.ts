import * as tf from '@tensorflow/tfjs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { loadLayersModel, saveLayersModel } from '../../src/models/io.js';
import { SeededDropout } from '../../src/models/layers.js';
import { buildModel, countParams, listModels, taskOf } from '../../src/models/registry.js';

beforeAll(async () => {
  await initBackend('cpu');
});

/** Loads DIR's model.json + weights.bin with nothing but @tensorflow/tfjs, prints its predictions on the test's input. */
const STOCK_LOAD = `
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
const dir = process.argv[1];
const json = JSON.parse(readFileSync(dir + '/model.json', 'utf8'));
const w = readFileSync(dir + '/weights.bin');
const model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest[0].weights, weightData: w.buffer.slice(w.byteOffset, w.byteOffset + w.byteLength) }));
const x = tf.randomUniform([2, 32, 32, 3], 0, 1, 'float32', 1);
console.log(JSON.stringify(Array.from(model.predict(x).dataSync())));
`;

/** [class name, output shape] per layer, as Keras' model.summary() lists them. */
function summary(model: tf.LayersModel): Array<[string, (number | null)[]]> {
  return model.layers.map((l) => [l.getClassName(), l.outputShape as (number | null)[]]);
}

describe('model registry', () => {
  it('lists the digit models and the reader, each under its task, and rejects an unknown name with the valid ones', () => {
    expect(listModels()).toEqual(['baseline', 'optimized', 'resnet', 'reader']);
    expect(listModels('classify')).toEqual(['baseline', 'optimized', 'resnet']);
    expect(listModels('read')).toEqual(['reader']);
    expect(taskOf('reader').layout.inputShape).toEqual([48, 96, 3]);
    expect(taskOf('optimized').layout.inputShape).toEqual([32, 32, 3]);
    expect(() => buildModel('resnet50', { seed: 1 })).toThrow("--model: expected one of baseline, optimized, resnet, reader, got 'resnet50'");
  });

  it('builds the resnet as ResNet-20: 19 convolutions, 3 stages, 272,474 trainable parameters', () => {
    const m = buildModel('resnet', { seed: 1 });
    const convs = m.layers.filter((l) => l.getClassName() === 'Conv2D');
    expect(convs).toHaveLength(21); // 19 3x3 + 2 1x1 projections
    expect(convs.filter((l) => (l.getConfig().kernelSize as number[])[0] === 1)).toHaveLength(2);
    expect(convs.every((l) => l.getConfig().padding === 'same' && l.getConfig().useBias === false)).toBe(true);
    expect(m.layers.filter((l) => l.getClassName() === 'Add')).toHaveLength(9);
    const shapes = m.layers.filter((l) => l.getClassName() === 'Add').map((l) => (l.outputShape as number[]).slice(1));
    expect(shapes).toEqual([...Array(3).fill([32, 32, 16]), ...Array(3).fill([16, 16, 32]), ...Array(3).fill([8, 8, 64])]);
    expect(summary(m).slice(-3)).toEqual([
      ['GlobalAveragePooling2D', [null, 64]],
      ['SeededDropout', [null, 64]],
      ['Dense', [null, 10]],
    ]);
    expect(countParams(m)).toEqual({ total: 274_042, trainable: 272_474, nonTrainable: 1568 });
    m.dispose();
  });

  it('builds the baseline exactly as the notebook: layers, output shape, 315,722 parameters', () => {
    const m = buildModel('baseline', { seed: 1 });
    expect(summary(m)).toEqual([
      ['Conv2D', [null, 30, 30, 32]],
      ['MaxPooling2D', [null, 15, 15, 32]],
      ['Conv2D', [null, 13, 13, 64]],
      ['MaxPooling2D', [null, 6, 6, 64]],
      ['Flatten', [null, 2304]],
      ['SeededDropout', [null, 2304]],
      ['Dense', [null, 128]],
      ['SeededDropout', [null, 128]],
      ['Dense', [null, 10]],
    ]);
    expect(m.outputs[0]!.shape).toEqual([null, 10]);
    expect(countParams(m)).toEqual({ total: 315_722, trainable: 315_722, nonTrainable: 0 });
    expect(m.layers.filter((l) => l instanceof SeededDropout).map((l) => (l as SeededDropout).rate)).toEqual([0.5, 0.3]);
    m.dispose();
  });

  it('builds the optimized model exactly as the notebook: 161,098 = 160,650 trainable + 448 non-trainable', () => {
    const m = buildModel('optimized', { seed: 1 });
    const block = (f: number, hw: number): Array<[string, (number | null)[]]> => [
      ['Conv2D', [null, hw, hw, f]],
      ['SyncBatchNormalization', [null, hw, hw, f]], // saved as BatchNormalization (models/io.ts)
      ['MaxPooling2D', [null, Math.floor(hw / 2), Math.floor(hw / 2), f]],
    ];
    expect(summary(m)).toEqual([
      ...block(32, 30),
      ...block(64, 13),
      ...block(128, 4),
      ['Flatten', [null, 512]],
      ['SeededDropout', [null, 512]],
      ['Dense', [null, 128]],
      ['SeededDropout', [null, 128]],
      ['Dense', [null, 10]],
    ]);
    expect(m.outputs[0]!.shape).toEqual([null, 10]);
    expect(countParams(m)).toEqual({ total: 161_098, trainable: 160_650, nonTrainable: 448 });
    const bn = m.layers.filter((l) => l.getClassName() === 'SyncBatchNormalization').map((l) => l.getConfig());
    expect(bn).toHaveLength(3);
    expect(bn.every((c) => c['momentum'] === 0.99 && c['epsilon'] === 1e-3)).toBe(true);
    const conv = m.layers.filter((l) => l.getClassName() === 'Conv2D').map((l) => l.getConfig());
    expect(conv.every((c) => c['padding'] === 'valid' && c['activation'] === 'relu')).toBe(true);
    m.dispose();
  });

  it('initialises from the seed: same seed same weights, other seed other kernels, zero biases', () => {
    const bytes = (m: tf.LayersModel) => m.getWeights().map((w) => Array.from(w.dataSync()));
    const [a, b, c] = [buildModel('optimized', { seed: 3 }), buildModel('optimized', { seed: 3 }), buildModel('optimized', { seed: 4 })];
    expect(bytes(a)).toEqual(bytes(b));
    expect(bytes(a)[0]).not.toEqual(bytes(c)[0]);
    const convBias = a.layers[0]!.getWeights()[1]!.dataSync();
    expect(Array.from(convBias).every((v) => v === 0)).toBe(true);
    // glorot-uniform limit for a 3x3x3 -> 32 kernel: sqrt(6 / (27 + 288))
    const limit = Math.sqrt(6 / (27 + 288));
    const k = a.layers[0]!.getWeights()[0]!.dataSync();
    expect(Math.max(...Array.from(k).map(Math.abs))).toBeLessThanOrEqual(limit);
    expect(Math.max(...Array.from(k).map(Math.abs))).toBeGreaterThan(limit * 0.9);
    [a, b, c].forEach((m) => m.dispose());
  });

  it('saves and loads every model through io.ts with identical predictions', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'svhn-models-'));
    const bn = { baseline: 0, optimized: 3, resnet: 21 } as Record<string, number>;
    const dropouts = { baseline: 2, optimized: 2, resnet: 1 } as Record<string, number>;
    try {
      for (const name of ['baseline', 'optimized', 'resnet']) {
        const m = buildModel(name, { seed: 9 });
        await saveLayersModel(m, join(dir, name));
        const loaded = await loadLayersModel(join(dir, name));
        const x = tf.randomUniform([2, 32, 32, 3], 0, 1, 'float32', 1);
        const [p, q] = [m.predict(x) as tf.Tensor, loaded.predict(x) as tf.Tensor];
        expect(Array.from(q.dataSync())).toEqual(Array.from(p.dataSync()));
        // model.json is plain Keras layers: the seeded training dropout is saved as Dropout.
        const json = JSON.parse(await readFile(join(dir, name, 'model.json'), 'utf8'));
        const classes: string[] = json.modelTopology.config.layers.map((l: { class_name: string }) => l.class_name);
        expect(classes.filter((c) => c === 'Dropout')).toHaveLength(dropouts[name]!);
        expect(classes).not.toContain('SeededDropout');
        expect(loaded.layers.filter((l) => l instanceof SeededDropout)).toHaveLength(0);
        expect(loaded.layers.filter((l) => l.getClassName() === 'Dropout')).toHaveLength(dropouts[name]!);
        // ... and the synchronized BatchNorm as BatchNormalization.
        expect(classes).not.toContain('SyncBatchNormalization');
        expect(classes.filter((c) => c === 'BatchNormalization')).toHaveLength(bn[name]!);
        expect(loaded.layers.filter((l) => l.getClassName() === 'BatchNormalization')).toHaveLength(bn[name]!);
        // Stock tfjs in a process that never imported svhn rebuilds it and predicts the same.
        const stock = spawnSync(process.execPath, ['--input-type=module', '-e', STOCK_LOAD, join(dir, name)], { encoding: 'utf8' });
        expect(stock.stderr.split('\n').filter((l) => /error/i.test(l))).toEqual([]);
        const stockProbs = JSON.parse(stock.stdout.trim().split('\n').pop()!) as number[];
        const mine = Array.from((m.predict(tf.randomUniform([2, 32, 32, 3], 0, 1, 'float32', 1)) as tf.Tensor).dataSync());
        stockProbs.forEach((v, i) => expect(v).toBeCloseTo(mine[i]!, 5));
        tf.dispose([x, p, q]);
        m.dispose();
        loaded.dispose();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('SeededDropout', () => {
  const run = (layer: SeededDropout, x: tf.Tensor, training: boolean) => {
    const y = layer.apply(x, { training }) as tf.Tensor;
    const v = Array.from(y.dataSync());
    y.dispose();
    return v;
  };

  it('draws a new mask each training step, reproducibly from its seed and saved state, and is the identity at inference', () => {
    const x = tf.ones([4, 50]);
    const a = new SeededDropout({ rate: 0.5, seed: 11 });
    const b = new SeededDropout({ rate: 0.5, seed: 11 });
    const a1 = run(a, x, true);
    const state = a.rngState;
    const a2 = run(a, x, true);
    expect(a1).not.toEqual(a2); // tfjs' own Dropout with a seed would repeat the mask here
    expect(run(b, x, true)).toEqual(a1);
    expect(run(b, x, true)).toEqual(a2);
    a.rngState = state;
    expect(run(a, x, true)).toEqual(a2);
    expect(new Set(a1)).toEqual(new Set([0, 2])); // inverted dropout scales kept units by 1/(1 - rate)
    expect(run(a, x, false)).toEqual(Array.from(x.dataSync()));
    const before = tf.memory().numTensors;
    run(a, x, true);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });
});
