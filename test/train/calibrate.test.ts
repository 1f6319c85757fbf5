/**
 * Temperature scaling end to end in the stages: a tiny training run writes `calibration` in
 * metadata.json (the temperature its validation probabilities give), and loadModelDir applies
 * it: probabilities equal softmax(log p / T) of the raw ones; { calibration: false } and models
 * without the field give the raw softmax.
 */
import * as tf from '@tensorflow/tfjs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { IMAGE_BYTES, NUM_CLASSES } from '../../src/config.js';
import { fitTemperature, softmaxWithTemperature } from '../../src/metrics/calibration.js';
import { loadModelDir } from '../../src/models/io.js';
import { trainModel } from '../../src/train/loop.js';
import { predictProbabilities } from '../../src/train/calibrate.js';
import { makeImages, registerTinyModel, writeTinyCache } from './helpers.js';

let root: string;
let modelDir: string;
const VAL_SEED = 8; // writeTinyCache seeds train 7, val 8

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'svhn-calib-'));
  const dataDir = join(root, 'data');
  await writeTinyCache(dataDir, { train: 40, val: 30 });
  registerTinyModel();
  await initBackend('cpu');
  modelDir = join(root, 'tiny');
  await trainModel({
    model: 'tiny', dataDir, epochs: 2, batchSize: 8, lr: 1e-2, seed: 3, limit: null, valLimit: null, extra: false,
    augment: false, patience: 10, outDir: modelDir, resume: false, backend: 'cpu', progress: 'silent',
  });
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const val = () => ({ count: 30, ...makeImages(30, VAL_SEED) });

describe('train: temperature scaling on the validation split', () => {
  it('writes calibration in metadata.json, the temperature of the kept weights on val', async () => {
    const meta = JSON.parse(await readFile(join(modelDir, 'metadata.json'), 'utf8'));
    expect(meta.calibration).toMatchObject({ fittedOn: 'val', images: 30 });
    const c = meta.calibration;
    expect(c.temperature).toBeGreaterThan(0);
    expect(c.temperature).not.toBe(1); // the run is overconfident or under-: the test below is not vacuous
    expect(c.nllAfter).toBeLessThanOrEqual(c.nllBefore);
    for (const k of ['eceBefore', 'eceAfter']) expect(c[k]).toBeGreaterThanOrEqual(0);
    // The same fit, redone from the saved model's raw output on the same images.
    const raw = await loadModelDir(modelDir, { calibration: false });
    try {
      const probs = predictProbabilities(raw.model, val());
      const fit = fitTemperature(probs, val().labels, { classes: NUM_CLASSES });
      expect(fit.temperature).toBeCloseTo(c.temperature, 4);
      expect(fit.nllBefore).toBeCloseTo(c.nllBefore, 4);
    } finally {
      raw.model.dispose();
    }
  });
});

describe('loadModelDir applies the temperature', () => {
  it("answers softmax(log p / T) of the raw probabilities; { calibration: false } the raw; and disposes whole", async () => {
    const meta = JSON.parse(await readFile(join(modelDir, 'metadata.json'), 'utf8'));
    const set = val();
    const before = tf.memory().numTensors;
    const raw = await loadModelDir(modelDir, { calibration: false });
    const cal = await loadModelDir(modelDir);
    try {
      expect(raw.temperature).toBe(1);
      expect(raw.fittedTemperature).toBe(meta.calibration.temperature);
      expect(cal.temperature).toBe(meta.calibration.temperature);
      const p = predictProbabilities(raw.model, set);
      const q = predictProbabilities(cal.model, set);
      const want = softmaxWithTemperature(p, cal.temperature, { classes: NUM_CLASSES });
      for (let i = 0; i < q.length; i++) expect(Math.abs(q[i]! - want[i]!)).toBeLessThan(1e-6);
    } finally {
      raw.model.dispose();
      cal.model.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('loads an older model without the field with T = 1: the raw softmax', async () => {
    const old = join(root, 'old');
    await cp(modelDir, old, { recursive: true });
    const meta = JSON.parse(await readFile(join(old, 'metadata.json'), 'utf8'));
    delete meta.calibration;
    await writeFile(join(old, 'metadata.json'), JSON.stringify(meta));
    const a = await loadModelDir(old);
    const b = await loadModelDir(modelDir, { calibration: false });
    try {
      expect(a.temperature).toBe(1);
      expect(a.fittedTemperature).toBe(1);
      const set = { count: 4, images: val().images.subarray(0, 4 * IMAGE_BYTES), labels: val().labels.subarray(0, 4) };
      expect(Array.from(predictProbabilities(a.model, set))).toEqual(Array.from(predictProbabilities(b.model, set)));
    } finally {
      a.model.dispose();
      b.model.dispose();
    }
  });

  it('refuses a temperature that is not a positive number', async () => {
    const bad = join(root, 'bad');
    await cp(modelDir, bad, { recursive: true });
    const meta = JSON.parse(await readFile(join(bad, 'metadata.json'), 'utf8'));
    meta.calibration.temperature = -2;
    await writeFile(join(bad, 'metadata.json'), JSON.stringify(meta));
    await expect(loadModelDir(bad)).rejects.toThrow(/calibration\.temperature is -2; expected a number > 0/);
  });
});
