import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { evaluateModel } from '../../src/evaluate/evaluate.js';
import { assertEvaluationDirReplaceable, evaluationDirProblem, writeEvaluationOutputs } from '../../src/evaluate/outputs.js';
import { loadLayersModel } from '../../src/models/io.js';
import { IMAGE_BYTES } from '../../src/config.js';
import { writeTinyCache, writeTinyModel } from './fixtures.js';

let tmp: string;
const N = 53; // not a multiple of the batch size: the last batch is short

beforeAll(async () => {
  await initBackend('cpu');
  tmp = await mkdtemp(join(tmpdir(), 'svhn-eval-'));
  await writeTinyCache(join(tmp, 'data'), { splits: { test: N, val: 12 }, synthetic: true });
  await writeTinyModel(join(tmp, 'model'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('evaluateModel', () => {
  it('equals one whole-split prediction, in batches, with no leaked tensors', async () => {
    const before = tf.memory().numTensors;
    const r = await evaluateModel({ modelDir: join(tmp, 'model'), dataDir: join(tmp, 'data'), split: 'test', batchSize: 8, keepSamples: 5, keepErrors: 4 });
    expect(tf.memory().numTensors).toBe(before);

    // Reference: the whole split at once, tfjs' own cross-entropy.
    const images = new Uint8Array(await readFile(join(tmp, 'data/cache/test.images.u8')));
    const labels = new Uint8Array(await readFile(join(tmp, 'data/cache/test.labels.u8')));
    const model = await loadLayersModel(join(tmp, 'model'));
    const [pred, conf, loss] = tf.tidy(() => {
      const x = tf.tensor4d(Float32Array.from(images, (v) => v / 255), [N, 32, 32, 3]);
      const p = model.predict(x) as tf.Tensor2D;
      const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 10);
      return [p.argMax(1).arraySync() as number[], p.max(1).arraySync() as number[], tf.metrics.categoricalCrossentropy(y, p).mean().arraySync() as number];
    });
    model.dispose();
    expect(Array.from(r.predictions.predicted)).toEqual(pred);
    expect(Array.from(r.predictions.labels)).toEqual(Array.from(labels));
    r.predictions.confidence.forEach((c, i) => expect(c).toBeCloseTo(conf[i]!, 6));
    expect(r.loss).toBeCloseTo(loss, 5);
    const correct = pred.filter((p, i) => p === labels[i]).length;
    expect(r.accuracy).toBe(correct / N);
    expect(r.confusion.flat().reduce((a, b) => a + b, 0)).toBe(N);
    expect(r.confusion[labels[0]!]![pred[0]!]).toBeGreaterThan(0);
    expect(r.data.count).toBe(N);
    expect(r.synthetic).toBe(true); // the cache says synthetic

    // Kept samples and errors carry the right pixels.
    expect(r.samples.count).toBe(5);
    expect(r.samples.images.subarray(0, IMAGE_BYTES)).toEqual(images.subarray(0, IMAGE_BYTES));
    expect(r.errors.count).toBe(Math.min(4, N - correct));
    for (let e = 0; e < r.errors.count; e++) {
      const i = r.errors.indices[e]!;
      expect(pred[i]).not.toBe(labels[i]);
      expect(r.errors.images.subarray(e * IMAGE_BYTES, (e + 1) * IMAGE_BYTES)).toEqual(images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES));
    }
  });

  it('keeps the most confident mistakes for the errors grid, most confident first, ties by index', async () => {
    const r = await evaluateModel({ modelDir: join(tmp, 'model'), dataDir: join(tmp, 'data'), split: 'test', batchSize: 8, keepSamples: 0, keepErrors: 4 });
    const { labels, predicted, confidence } = r.predictions;
    const wrong = [...labels.keys()].filter((i) => labels[i] !== predicted[i]);
    expect(wrong.length).toBeGreaterThan(4); // so there is a choice to make
    const expected = wrong.sort((a, b) => confidence[b]! - confidence[a]! || a - b).slice(0, 4);
    expect(r.errors.indices).toEqual(expected);
    expect(r.errors.confidence).toEqual(expected.map((i) => confidence[i]));
    const images = new Uint8Array(await readFile(join(tmp, 'data/cache/test.images.u8')));
    r.errors.indices.forEach((i, e) => expect(r.errors.images.subarray(e * IMAGE_BYTES, (e + 1) * IMAGE_BYTES)).toEqual(images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES)));
    expect(r.errors.indices).not.toEqual(wrong.slice().sort((a, b) => a - b).slice(0, 4)); // not the first four in index order
  });

  it('writes report.json, confusion.csv and the PNGs, marked SYNTHETIC', async () => {
    const r = await evaluateModel({ modelDir: join(tmp, 'model'), dataDir: join(tmp, 'data'), split: 'val', batchSize: 256, keepSamples: 6, keepErrors: 6 });
    const out = join(tmp, 'out');
    const written = await writeEvaluationOutputs(r, out);
    const json = JSON.parse(await readFile(join(out, 'report.json'), 'utf8'));
    expect(json.SYNTHETIC).toMatch(/SYNTHETIC/);
    expect(json.accuracy).toBe(r.accuracy);
    expect(json.predictions).toHaveLength(12);
    expect(json.predictions[3]).toEqual({ index: 3, true: r.predictions.labels[3], predicted: r.predictions.predicted[3], confidence: expect.any(Number) });
    expect(json.classificationReport['macro avg']['f1-score']).toBe(r.report.macroAvg.f1);
    expect(json.classificationReportText).toContain('weighted avg');
    expect(json.model.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    // A clean CSV (header + 10 rows, as pandas.read_csv and Excel expect); the mark is a sibling file.
    const csv = (await readFile(join(out, 'confusion.csv'), 'utf8')).split('\n');
    expect(csv).toHaveLength(12); // ends in a newline
    expect(csv[0]).toBe('true,' + Array.from({ length: 10 }, (_, p) => `pred_${p}`).join(','));
    expect(csv[1]).toBe('0,' + r.confusion[0]!.join(','));
    expect(csv.join('\n')).not.toMatch(/SYNTHETIC|#/);
    expect(await readFile(join(out, 'SYNTHETIC.txt'), 'utf8')).toMatch(/^SYNTHETIC: offline sample data, not SVHN/);
    expect(json.files['SYNTHETIC.txt']).toBeDefined();
    expect(written).toContain(join(out, 'SYNTHETIC.txt'));
    for (const png of ['confusion.png', 'f1.png', 'samples.png']) {
      const meta = await sharp(join(out, png)).metadata();
      expect(meta.format, png).toBe('png');
      expect(written).toContain(join(out, png));
    }
  });

  it('writes the directory whole or not at all, and report.json vouches for the other files', async () => {
    const r = await evaluateModel({ modelDir: join(tmp, 'model'), dataDir: join(tmp, 'data'), split: 'test', batchSize: 64, keepSamples: 4, keepErrors: 4 });
    // A failure after report.json used to leave it, and the first PNGs, under the final name.
    const failing = Object.create(r, { errors: { get: () => { throw new Error('disk full'); } } }) as typeof r;
    const out = join(tmp, 'whole');
    await expect(writeEvaluationOutputs(failing, out)).rejects.toThrow('disk full');
    expect(existsSync(out)).toBe(false);
    expect((await readdir(tmp)).filter((f) => f.startsWith('.tmp-'))).toEqual([]);

    await writeEvaluationOutputs(r, out);
    const json = JSON.parse(await readFile(join(out, 'report.json'), 'utf8'));
    expect(Object.keys(json.files).sort()).toEqual(['SYNTHETIC.txt', 'confusion.csv', 'confusion.png', 'errors.png', 'f1.png', 'reliability.png', 'samples.png']);
    expect(await evaluationDirProblem(out, json.files)).toBeUndefined();
    await unlink(join(out, 'samples.png'));
    expect(await evaluationDirProblem(out, json.files)).toBe('samples.png is missing');
    await writeFile(join(out, 'f1.png'), 'truncated');
    expect(await evaluationDirProblem(out, json.files)).toBe('f1.png differs from what report.json records');
    expect(await evaluationDirProblem(out, undefined)).toMatch(/lists no files/);
    // A failed rewrite leaves the earlier directory as it was.
    await expect(writeEvaluationOutputs(failing, out)).rejects.toThrow('disk full');
    expect(await readFile(join(out, 'f1.png'), 'utf8')).toBe('truncated');
  });

  it('refuses an output directory that holds other files, since it is replaced whole', async () => {
    const mine = join(tmp, 'mine');
    await mkdir(mine);
    await writeFile(join(mine, 'notes.txt'), 'keep me');
    await expect(assertEvaluationDirReplaceable(mine, { fromFlag: true })).rejects.toThrow(/^--out .*mine: expected a new directory or an earlier evaluation \(it is replaced whole\), got one holding notes\.txt$/);
    await expect(assertEvaluationDirReplaceable(join(tmp, 'whole'), { fromFlag: true })).resolves.toBeUndefined(); // SYNTHETIC.txt included
    await expect(assertEvaluationDirReplaceable(join(tmp, 'absent'), { fromFlag: true })).resolves.toBeUndefined();
  });

  it('rejects a missing or incomplete model, another input shape and a missing split', async () => {
    const base = { dataDir: join(tmp, 'data'), split: 'test' as const, batchSize: 16 };
    await expect(evaluateModel({ ...base, modelDir: join(tmp, 'nope') })).rejects.toThrow(/no such model directory/);
    await writeTinyModel(join(tmp, 'gray'), { inputShape: [28, 28, 1] });
    await expect(evaluateModel({ ...base, modelDir: join(tmp, 'gray') })).rejects.toThrow(/takes input \[28, 28, 1\], expected \[32, 32, 3\]/);
    await writeTinyModel(join(tmp, 'broken'));
    await unlink(join(tmp, 'broken', 'weights.bin'));
    await expect(evaluateModel({ ...base, modelDir: join(tmp, 'broken') })).rejects.toThrow(/incomplete.*weights/);
    await writeTinyCache(join(tmp, 'data2'), { splits: { train: 5 } });
    await expect(evaluateModel({ ...base, dataDir: join(tmp, 'data2'), modelDir: join(tmp, 'model') })).rejects.toThrow(/has no 'test' split/);
    await writeFile(join(tmp, 'model', 'metadata.json'), '{oops');
    await expect(evaluateModel({ ...base, modelDir: join(tmp, 'model') })).rejects.toThrow(/cannot read .*metadata.json: expected JSON, got invalid JSON at position 1$/);
    await writeTinyModel(join(tmp, 'model')); // restore for other tests
    expect(existsSync(join(tmp, 'model', 'metadata.json'))).toBe(true);
  });
});
