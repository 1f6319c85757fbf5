/**
 * `svhn train --model reader` and `svhn read` end to end through the real CLI (bin/svhn.js runs
 * dist/: build first) on a tiny synthetic photo cache (20 photos from the sample's own
 * generator, `svhn preprocess --format full`), with a stand-in digit classifier
 * (test/predict/helpers.ts). Exact resume is checked in-process through the loop's
 * onEpochEnd hook, as test/train/loop.test.ts does for digit models.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSyntheticPhotos } from '../../src/data/synthetic/photoSample.js';
import type { HistoryRecord } from '../../src/models/modelDir.js';
import { trainModel, type TrainOptions } from '../../src/train/loop.js';
import { saveColourModel } from '../predict/helpers.js';
import { svhnAsync, type CliRun } from '../helpers.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
let tmp: string;
const svhn = (args: string[]) => svhnAsync([...args, '--log-format', 'json'], { cwd: tmp, timeoutMs: 120_000 });
const TINY = ['--data-dir', 'data', '--limit', '8', '--val-limit', '4', '--batch-size', '4', '--backend', 'wasm', '--seed', '3'];
const errorLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('svhn: error'));
const bytes = (...p: string[]) => readFile(join(tmp, ...p));

/** One `svhn: error:` line matching `message`, exit `code`. */
function expectRefused(r: CliRun, code: number, message: RegExp): void {
  expect(r.code, r.stderr).toBe(code);
  expect(errorLines(r.stderr), r.stderr).toHaveLength(1);
  expect(errorLines(r.stderr)[0]).toMatch(message);
  expect(r.stderr).not.toMatch(/^\s+at /m);
}

/**
 * A copy of the reader at `from` with its head's centre bias set to `bias` (its weights.bin
 * edited in place of the tiny reader's -2.2 prior), so it finds digits in every photo: the
 * read test then sees numbers, boxes and confidences, not only "no number".
 */
async function eagerReader(from: string, to: string, bias: number): Promise<void> {
  await cp(join(tmp, from), join(tmp, to), { recursive: true });
  const model = JSON.parse((await bytes(to, 'model.json')).toString('utf8'));
  const weights = await bytes(to, 'weights.bin');
  let offset = 0;
  let head = -1;
  for (const w of model.weightsManifest.flatMap((g: { weights: Array<{ name: string; shape: number[] }> }) => g.weights)) {
    if (/bias$/.test(w.name) && w.shape.join() === '5') head = offset; // the 1x1 head's bias: centre, x, y, w, h
    offset += 4 * w.shape.reduce((a: number, b: number) => a * b, 1);
  }
  expect(head).toBeGreaterThanOrEqual(0);
  weights.writeFloatLE(bias, head);
  await writeFile(join(tmp, to, 'weights.bin'), weights);
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'svhn-cli-reader-'));
  await generateSyntheticPhotos({ dataDir: join(tmp, 'data'), size: 'small', seed: 7, splits: ['train', 'test'], counts: { train: 20, test: 4 } });
  const pre = await svhn(['preprocess', '--format', 'full', '--data-dir', 'data']);
  expect(pre.code, pre.stderr).toBe(0);
  await saveColourModel(join(tmp, 'digits'), { conv: true });
  const r = await svhn(['train', '--model', 'reader', '--classifier', 'digits', ...TINY, '--epochs', '2', '--lr', '0.01', '--threads', '2', '--out', 'models/reader', '--json']);
  expect(r.code, r.stderr).toBe(0);
}, 300_000);
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('svhn train --model reader', () => {
  it('writes the detector, its metadata (task read, 48x96x3) and a byte-identical copy of the classifier', async () => {
    expect(await readdir(join(tmp, 'models/reader'))).toEqual(expect.arrayContaining(['model.json', 'weights.bin', 'metadata.json', 'classifier']));
    const meta = JSON.parse((await bytes('models/reader/metadata.json')).toString('utf8'));
    expect(meta).toMatchObject({ task: 'read', inputShape: [48, 96, 3], architecture: 'reader', epochsRun: 2, synthetic: true });
    expect(meta.classifier).toMatchObject({ dir: 'classifier', name: 'colour-test' });
    for (const f of ['model.json', 'weights.bin', 'metadata.json']) {
      expect((await bytes('models/reader/classifier', f)).equals(await bytes('digits', f)), f).toBe(true);
    }
  });

  it('is a stock tfjs layers model: no svhn layer names, and plain @tensorflow/tfjs loads and runs it', async () => {
    const modelJson = JSON.parse((await bytes('models/reader/model.json')).toString('utf8'));
    const classes = new Set<string>((modelJson.modelTopology.model_config ?? modelJson.modelTopology).config.layers.map((l: { class_name: string }) => l.class_name));
    expect([...classes].sort()).toEqual(['Add', 'BatchNormalization', 'Conv2D', 'InputLayer', 'ReLU', 'UpSampling2D']);
    // A fresh process with nothing of svhn's imported: stock tfjs only.
    const script = `
      import * as tf from '@tensorflow/tfjs';
      import { readFileSync } from 'node:fs';
      const dir = process.argv[1];
      const json = JSON.parse(readFileSync(dir + '/model.json', 'utf8'));
      const w = readFileSync(dir + '/weights.bin');
      const model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest.flatMap((g) => g.weights), weightData: w.buffer.slice(w.byteOffset, w.byteOffset + w.length) }));
      const out = model.predict(tf.zeros([1, 48, 96, 3]));
      process.stdout.write(JSON.stringify(out.shape));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, join(tmp, 'models/reader')], { cwd: REPO, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([1, 24, 48, 5]);
  });

  it('refuses digit-only flags, a missing or non-digit --classifier and a missing photo cache, in one line, writing nothing', async () => {
    const base = ['train', '--model', 'reader', '--classifier', 'digits', ...TINY, '--epochs', '1', '--out', 'models/x'];
    for (const flag of [['--extra'], ['--label-smoothing', '0.1'], ['--augment']]) {
      expectRefused(await svhn([...base, ...flag]), 2, new RegExp(`^svhn: error: ${flag[0]}: applies to digit models; --model reader trains on whole photos \\(svhn preprocess --format full\\)`));
    }
    const noClassifier = base.map((a) => (a === 'digits' ? 'nope' : a));
    const missing = await svhn(noClassifier);
    expect(missing.code).not.toBe(0);
    expect(errorLines(missing.stderr)).toHaveLength(1);
    expect(errorLines(missing.stderr)[0]).toMatch(/--classifier nope: no such model directory/);
    const notDigits = await svhn(base.map((a) => (a === 'digits' ? 'models/reader' : a)));
    expectRefused(notDigits, 2, /^svhn: error: --classifier models\/reader: is a read model; expected a digit model/);
    const noCache = await svhn(base.map((a) => (a === 'data' ? 'no-data' : a)));
    expect(noCache.code).not.toBe(0);
    expect(errorLines(noCache.stderr)).toHaveLength(1);
    expect(noCache.stderr).toContain('svhn preprocess --format full');
    expect(existsSync(join(tmp, 'models/x'))).toBe(false);
    expect(existsSync(join(tmp, 'models/x.checkpoint'))).toBe(false);
  });

  it("fine-tunes a reader with --init, the classifier defaulting to the parent's classifier/", async () => {
    const r = await svhn(['train', '--init', 'models/reader', ...TINY, '--epochs', '1', '--out', 'models/reader-ft', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.model).toBe('reader');
    expect(s.hyperparameters.lr).toBe(1e-4);
    const meta = JSON.parse((await bytes('models/reader-ft/metadata.json')).toString('utf8'));
    expect(meta).toMatchObject({ task: 'read', parent: { architecture: 'reader' } });
    for (const f of ['model.json', 'weights.bin', 'metadata.json']) {
      expect((await bytes('models/reader-ft/classifier', f)).equals(await bytes('models/reader/classifier', f)), f).toBe(true);
    }
    expect((await bytes('models/reader-ft/weights.bin')).equals(await bytes('models/reader/weights.bin'))).toBe(false);
  });
});

describe('train --model reader: exact resume', () => {
  const base = (out: string, threads: number, over: Partial<TrainOptions> = {}): TrainOptions => ({
    model: 'reader',
    classifier: join(tmp, 'digits'),
    dataDir: join(tmp, 'data'),
    epochs: 2,
    batchSize: 4,
    lr: 1e-2,
    seed: 5,
    limit: 8,
    valLimit: 4,
    extra: false,
    patience: 10,
    outDir: join(tmp, 'resume', out),
    resume: false,
    backend: 'wasm',
    threads,
    progress: 'silent',
    ...over,
  });

  for (const threads of [2, 1]) {
    it(`killed after epoch 1 and resumed: the same weights.bin as an uninterrupted run (${threads} thread${threads > 1 ? 's' : ''}); no tensor leaks`, async () => {
      const counts: number[] = [];
      const full = await trainModel(base(`full-${threads}`, threads, { onEpochEnd: (_r, info) => void counts.push(info.numTensors) }));
      expect(counts).toHaveLength(2);
      expect(new Set(counts).size).toBe(1);
      const again = await trainModel(base(`again-${threads}`, threads));
      expect((await readFile(join(again.outDir, 'weights.bin'))).equals(await readFile(join(full.outDir, 'weights.bin')))).toBe(true);
      const kill = (r: HistoryRecord) => {
        if (r.epoch === 1) throw new Error('killed');
      };
      await expect(trainModel(base(`resumed-${threads}`, threads, { onEpochEnd: kill }))).rejects.toThrow('killed');
      const resumed = await trainModel(base(`resumed-${threads}`, threads, { resume: true }));
      expect(resumed.resumedFromEpoch).toBe(1);
      expect((await readFile(join(resumed.outDir, 'weights.bin'))).equals(await readFile(join(full.outDir, 'weights.bin')))).toBe(true);
      expect(resumed.history.map(({ loss, val_loss }) => ({ loss, val_loss }))).toEqual(full.history.map(({ loss, val_loss }) => ({ loss, val_loss })));
    });
  }
});

describe('svhn read with the tiny reader', () => {
  for (const reader of ['reader', 'eager']) {
    it(`reads photos (${reader}): well-formed rows, boxes within each photo, exit 0; --min-confidence 1 abstains every number`, async () => {
      if (reader === 'eager') await eagerReader('models/reader', 'models/eager', 3);
      const model = `models/${reader}`;
      const photos = join('data', 'full', 'test');
      const r = await svhn(['read', photos, '--model', model, '--backend', 'wasm', '--format', 'jsonl']);
      expect(r.code, r.stderr).toBe(0);
      const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
      expect(rows).toHaveLength(4);
      for (const row of rows) {
        expect(Object.keys(row)).toEqual(['input', 'number', 'confidence', 'digits', 'abstained', 'best', 'error']);
        expect(row.error).toBeNull();
        expect(row.abstained).toBe(false);
        expect(row.number).toBe(row.best);
        expect(row.number).toMatch(/^\d*$/);
        expect(row.digits.map((d: { digit: number }) => d.digit).join('')).toBe(row.number);
        expect(row.confidence).toBeGreaterThanOrEqual(0);
        expect(row.confidence).toBeLessThanOrEqual(1);
        const { width, height } = await sharp(join(tmp, row.input)).metadata();
        for (const d of row.digits) {
          const [l, t, rt, b] = d.box;
          expect(l).toBeGreaterThanOrEqual(0);
          expect(t).toBeGreaterThanOrEqual(0);
          expect(rt).toBeLessThanOrEqual(width!);
          expect(b).toBeLessThanOrEqual(height!);
          expect(l).toBeLessThanOrEqual(rt);
          expect(t).toBeLessThanOrEqual(b);
        }
      }
      if (reader === 'eager') expect(rows.every((row) => row.number !== '')).toBe(true);
      const csv = await svhn(['read', photos, '--model', model, '--backend', 'wasm']);
      expect(csv.code, csv.stderr).toBe(0);
      const lines = csv.stdout.trim().split('\n');
      expect(lines[0]).toBe('input,number,confidence,boxes,digit_confidences,abstained,best,error');
      expect(lines.slice(1).every((l) => l.split(',').length === 8)).toBe(true);

      const strict = await svhn(['read', photos, '--model', model, '--backend', 'wasm', '--format', 'jsonl', '--min-confidence', '1']);
      expect(strict.code, strict.stderr).toBe(0);
      const held = strict.stdout.trim().split('\n').map((l) => JSON.parse(l));
      for (const row of held) {
        if (row.best !== '') expect(row).toMatchObject({ number: null, abstained: true });
        else expect(row).toMatchObject({ number: '', abstained: false });
      }
      const numbers = rows.filter((row) => row.best !== '').length;
      expect(held.filter((row) => row.abstained)).toHaveLength(numbers);
    });
  }
});
