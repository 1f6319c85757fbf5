/**
 * The model summary of `svhn info` (models/summary.ts): parameter totals of the registry's
 * builders, FLOPs of a model small enough to count by hand, and a saved directory read back
 * with its data and metrics.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { EVALUATION_DIRS, REPORT_JSON } from '../../src/models/modelDir.js';
import { buildModel, countParams, listModels } from '../../src/models/registry.js';
import { formatModelInfo, summarizeArchitecture, summarizeModelDir } from '../../src/models/summary.js';
import { writeTinyModel } from '../evaluate/fixtures.js';
import { rejection } from '../helpers.js';

let tmp: string;

beforeAll(async () => {
  await initBackend('cpu');
  tmp = await mkdtemp(join(tmpdir(), 'svhn-summary-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('summarizeArchitecture', () => {
  // baseline: README and the notebook's Keras summary; optimized: its Keras summary (161,098 = 160,650 + 448
  // BatchNorm moving statistics); resnet: 272,474 trainable (resnet.ts) + 1,568 moving statistics (19 BatchNorms).
  const KNOWN = {
    baseline: { total: 315_722, trainable: 315_722, nonTrainable: 0 },
    optimized: { total: 161_098, trainable: 160_650, nonTrainable: 448 },
    resnet: { total: 274_042, trainable: 272_474, nonTrainable: 1_568 },
    // reader (tasks/read/detector.ts): convolutions 432 + 4,608 + 9,216 + 13,824 + 4 x 20,736, back up
    // 1,536 (1x1, 48 -> 32) + 9,216, head 32 x 5 + 5; BatchNorm scale and shift 2 x 384 trainable,
    // moving statistics 2 x 384
    reader: { total: 123_477, trainable: 122_709, nonTrainable: 768 },
  } as Record<string, { total: number; trainable: number; nonTrainable: number }>;

  it.each(listModels())('%s: parameter totals equal the known counts, countParams() and the per-layer sum', (name) => {
    const model = buildModel(name, { seed: 1 });
    const s = summarizeArchitecture(model);
    expect(s.params).toEqual(KNOWN[name]);
    expect(s.params).toEqual(countParams(model));
    expect(s.params.total).toBe(model.countParams());
    expect(s.layers.reduce((a, l) => a + l.params, 0)).toBe(s.params.total);
    expect(s.layers.reduce((a, l) => a + l.trainableParams, 0)).toBe(s.params.trainable);
    // a digit model ends in 10 class probabilities, the reader's detector in its 24 x 48 grid of 5 values
    expect(s.layers.at(-1)?.outputShape).toEqual(name === 'reader' ? [null, 24, 48, 5] : [null, 10]);
    model.dispose();
  });

  it('optimized: the shapes of its doc comment and 10,278,144 FLOPs per image', () => {
    const model = buildModel('optimized', { seed: 1 });
    const s = summarizeArchitecture(model);
    expect(s.layers.filter((l) => l.type === 'Conv2D' || l.type === 'MaxPooling2D').map((l) => l.outputShape)).toEqual([
      [null, 30, 30, 32], [null, 15, 15, 32], [null, 13, 13, 64], [null, 6, 6, 64], [null, 4, 4, 128], [null, 2, 2, 128],
    ]);
    // conv 30*30*32*(3*3*3) + 13*13*64*(3*3*32) + 4*4*128*(3*3*64), dense 512*128 + 128*10 multiply-adds, 2 FLOPs each
    const macs = 30 * 30 * 32 * 27 + 13 * 13 * 64 * 288 + 4 * 4 * 128 * 576 + 512 * 128 + 128 * 10;
    expect(s.flopsPerImage).toBe(2 * macs);
    expect(s.flopsPerImage).toBe(10_278_144);
    model.dispose();
  });

  it('baseline and resnet: FLOPs per image equal the multiply-adds counted from their doc comments', () => {
    // baseline: 30x30x32 conv of 3x3x3, 13x13x64 of 3x3x32, dense 2304->128, 128->10
    const baseline = 30 * 30 * 32 * 27 + 13 * 13 * 64 * 288 + 2304 * 128 + 128 * 10;
    // resnet (ResNet-20, ~41 M multiply-adds as He et al. count it): stem, then per stage 6 3x3 convs
    // (the first of stages 2 and 3 strided, from half the filters) and a 1x1 shortcut there; dense 64->10
    const conv = (hw: number, out: number, k: number, inC: number) => hw * hw * out * k * k * inC;
    const resnet =
      conv(32, 16, 3, 3) +
      6 * conv(32, 16, 3, 16) +
      conv(16, 32, 3, 16) + 5 * conv(16, 32, 3, 32) + conv(16, 32, 1, 16) +
      conv(8, 64, 3, 32) + 5 * conv(8, 64, 3, 64) + conv(8, 64, 1, 32) +
      64 * 10;
    for (const [name, macs] of [['baseline', baseline], ['resnet', resnet]] as const) {
      const model = buildModel(name, { seed: 1 });
      expect(summarizeArchitecture(model).flopsPerImage, name).toBe(2 * macs);
      model.dispose();
    }
    expect(2 * resnet).toBe(81_626_368);
  });

  it('counts a one-conv, one-dense model by hand: 2 FLOPs per multiply-add, nothing for bias, relu or flatten', () => {
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: 3, activation: 'relu', name: 'c' }), // 6x6x4
        tf.layers.flatten({ name: 'f' }), // 144
        tf.layers.dense({ units: 10, name: 'd' }),
      ],
    });
    const s = summarizeArchitecture(model);
    // conv: 36 positions x 4 filters x (3*3*3) = 3,888 multiply-adds; dense: 144 x 10 = 1,440
    expect(s.layers.map((l) => [l.name, l.type, l.outputShape, l.params, l.flops])).toEqual([
      ['c', 'Conv2D', [null, 6, 6, 4], 3 * 3 * 3 * 4 + 4, 2 * 3888],
      ['f', 'Flatten', [null, 144], 0, 0],
      ['d', 'Dense', [null, 10], 144 * 10 + 10, 2 * 1440],
    ]);
    expect(s.flopsPerImage).toBe(10_656);
    model.dispose();
  });
});

describe('summarizeModelDir', () => {
  it('reads a saved model, its metadata and evaluation/report.json', async () => {
    const dir = join(tmp, 'tiny');
    await writeTinyModel(dir, { synthetic: true });
    const before = await summarizeModelDir(dir);
    expect(before.metrics).toEqual({ validation: { acc: 0.5, loss: 1.5 }, calibration: null, test: null }); // no calibration recorded: T = 1
    expect(before.data).toMatchObject({ synthetic: true, dataManifestSha256: '0'.repeat(64), parent: null, madeBy: null, images: null });
    expect(before.params).toEqual({ total: 30_730, trainable: 30_730, nonTrainable: 0 });
    expect(before.flopsPerImage).toBe(2 * 3072 * 10);
    expect(before.input.shape).toEqual([null, 32, 32, 3]);

    await mkdir(join(dir, EVALUATION_DIRS.test));
    await writeFile(join(dir, EVALUATION_DIRS.test, REPORT_JSON), JSON.stringify({ synthetic: true, accuracy: 0.625, loss: 1.25 }));
    const after = await summarizeModelDir(dir);
    expect(after.metrics.test).toEqual({ accuracy: 0.625, loss: 1.25, synthetic: true, file: join(dir, EVALUATION_DIRS.test, REPORT_JSON) });
    const text = formatModelInfo(after);
    expect(text).toContain('Total params: 30,730');
    expect(text).toContain('Test: accuracy 0.6250, loss 1.2500 (SYNTHETIC data)'); // an evaluation from before issue 24: no interval

    const accuracyInterval = { low: 0.3057, high: 0.8632, method: 'wilson', level: 0.95 };
    await writeFile(join(dir, EVALUATION_DIRS.test, REPORT_JSON), JSON.stringify({ synthetic: true, accuracy: 0.625, loss: 1.25, accuracyInterval }));
    const withCi = await summarizeModelDir(dir);
    expect(withCi.metrics.test?.accuracyInterval).toEqual({ low: 0.3057, high: 0.8632 });
    expect(formatModelInfo(withCi)).toContain('Test: accuracy 0.6250 (95% CI 0.306-0.863, Wilson), loss 1.2500 (SYNTHETIC data)');
  });

  it('fails with one line naming the folder or file', async () => {
    expect((await rejection(summarizeModelDir(join(tmp, 'absent')))).message).toBe(`svhn info ${join(tmp, 'absent')}: no such model directory`);
    const dir = join(tmp, 'damaged');
    await writeTinyModel(dir);
    await writeFile(join(dir, 'model.json'), '{"modelTopology": ');
    const e = await rejection(summarizeModelDir(dir));
    expect(e.message).toContain(join(dir, 'model.json'));
    expect(e.message).not.toContain('\n');
  });
});
