/**
 * evaluate with a calibrated model: the confidences are the temperature-scaled ones, the raw
 * ECE is the model's own softmax's, --no-calibration evaluates the raw softmax, and the
 * evaluation directory holds reliability.png and report.json's calibration.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { evaluateModel } from '../../src/evaluate/evaluate.js';
import { formatEvaluationText, writeEvaluationOutputs } from '../../src/evaluate/outputs.js';
import { calibrationSummary, softmaxWithTemperature, topOne } from '../../src/metrics/calibration.js';
import { loadLayersModel } from '../../src/models/io.js';
import { writeTinyCache, writeTinyModel } from './fixtures.js';

let tmp: string;
const N = 53;
const T = 2.5;
let rawProbs: Float32Array;
let labels: Uint8Array;

beforeAll(async () => {
  await initBackend('cpu');
  tmp = await mkdtemp(join(tmpdir(), 'svhn-eval-calib-'));
  await writeTinyCache(join(tmp, 'data'), { splits: { test: N }, synthetic: true });
  const dir = join(tmp, 'model');
  await writeTinyModel(dir);
  const meta = JSON.parse(await readFile(join(dir, 'metadata.json'), 'utf8'));
  meta.calibration = { temperature: T, fittedOn: 'val', images: 12, nllBefore: 1, nllAfter: 0.9, eceBefore: 0.2, eceAfter: 0.1 };
  await writeFile(join(dir, 'metadata.json'), JSON.stringify(meta));
  // Reference: the raw model on the whole split at once.
  const images = new Uint8Array(await readFile(join(tmp, 'data/cache/test.images.u8')));
  labels = new Uint8Array(await readFile(join(tmp, 'data/cache/test.labels.u8')));
  const model = await loadLayersModel(dir);
  rawProbs = tf.tidy(() => (model.predict(tf.tensor4d(Float32Array.from(images, (v) => v / 255), [N, 32, 32, 3])) as tf.Tensor).dataSync() as Float32Array);
  model.dispose();
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('evaluate with a temperature', () => {
  it('reports calibrated confidences and ECE, and the raw ECE beside them', async () => {
    const r = await evaluateModel({ modelDir: join(tmp, 'model'), dataDir: join(tmp, 'data'), split: 'test', batchSize: 8 });
    const cal = topOne(softmaxWithTemperature(rawProbs, T, { classes: 10 }), labels, 10);
    const raw = topOne(rawProbs, labels, 10);
    r.predictions.confidence.forEach((c, i) => expect(c).toBeCloseTo(cal.confidence[i]!, 6));
    expect(r.calibration.temperature).toBe(T);
    expect(r.calibration.ece).toBeCloseTo(calibrationSummary(cal.confidence, cal.correct).ece, 5);
    expect(r.calibration.eceRaw).toBeCloseTo(calibrationSummary(raw.confidence, raw.correct).ece, 5);
    expect(r.calibration.bins).toHaveLength(15);
    expect(r.calibration.bins.reduce((s, b) => s + b.count, 0)).toBe(N);
    expect(formatEvaluationText(r)).toMatch(/calibration: ECE \d\.\d{4} at temperature 2\.500 \(ECE raw \d\.\d{4}; 15 bins\)/);
  });

  it('evaluates the raw softmax with calibration: false (--no-calibration)', async () => {
    const r = await evaluateModel({ modelDir: join(tmp, 'model'), dataDir: join(tmp, 'data'), split: 'test', batchSize: 8, calibration: false });
    const raw = topOne(rawProbs, labels, 10);
    r.predictions.confidence.forEach((c, i) => expect(c).toBeCloseTo(raw.confidence[i]!, 6));
    expect(r.calibration).toMatchObject({ temperature: 1, fittedTemperature: T });
    expect(r.calibration.ece).toBe(r.calibration.eceRaw);
    expect(formatEvaluationText(r)).toContain("calibration: ECE raw");
    expect(formatEvaluationText(r)).toContain("--no-calibration: the model's temperature 2.500 not applied");
  });

  it('writes reliability.png and report.json calibration', async () => {
    const r = await evaluateModel({ modelDir: join(tmp, 'model'), dataDir: join(tmp, 'data'), split: 'test', batchSize: 64 });
    const out = join(tmp, 'out');
    const written = await writeEvaluationOutputs(r, out);
    expect(written).toContain(join(out, 'reliability.png'));
    const meta = await sharp(join(out, 'reliability.png')).metadata();
    expect(meta.format).toBe('png');
    const json = JSON.parse(await readFile(join(out, 'report.json'), 'utf8'));
    expect(json.calibration).toMatchObject({ ece: r.calibration.ece, eceRaw: r.calibration.eceRaw, temperature: T });
    expect(json.calibration.bins).toHaveLength(15);
    expect(json.calibration.bins[14]).toEqual({ lower: 14 / 15, upper: 1, ...r.calibration.bins[14] });
    expect(json.files['reliability.png']).toBeDefined();
  });
});
