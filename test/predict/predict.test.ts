import * as tf from '@tensorflow/tfjs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSvhnMat } from '../../src/data/mat/mat.js';
import type { InputItem } from '../../src/predict/inputs.js';
import { csvHeader, formatCsvRow, formatJsonlRow, openRowSink } from '../../src/predict/output.js';
import { mapOrdered } from '../../src/util/mapOrdered.js';
import { parseMinConfidence, predictItems, topK, type PredictedItem, type PredictionRow } from '../../src/predict/predict.js';
import { gridCaption, gridFileName, gridTitle, runPredict } from '../../src/predict/run.js';
import { PROTOTYPES, buildColourModel, saveColourModel, solidRgb } from './helpers.js';

const MAT = join(import.meta.dirname, '../fixtures/mat/small_c_u8.mat');

async function* from<T>(xs: T[]): AsyncGenerator<T> {
  for (const x of xs) yield x;
}

async function collect<T>(gen: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of gen) out.push(x);
  return out;
}

/** The colour model's answer computed without tfjs: nearest prototype to the mean colour, and the margin to the runner-up. */
function nearestPrototype(image: Uint8Array): { digit: number; margin: number } {
  const mean = [0, 0, 0];
  for (let i = 0; i < image.length; i++) mean[i % 3]! += image[i]! / 255 / 1024;
  const d = PROTOTYPES.map((p) => p.reduce((s, v, c) => s + (mean[c]! - v / 255) ** 2, 0));
  const order = d.map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
  return { digit: order[0]![1], margin: order[1]![0] - order[0]![0] };
}

describe('mapOrdered', () => {
  it('keeps source order and never runs more than `concurrency` calls at once', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const fn = async (i: number) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setTimeout(r, (i * 7) % 5)); // finish out of order
      inFlight--;
      return i * 10;
    };
    const out = await collect(mapOrdered(from(Array.from({ length: 40 }, (_, i) => i)), fn, 4));
    expect(out).toEqual(Array.from({ length: 40 }, (_, i) => i * 10));
    expect(maxInFlight).toBe(4);
  });
});

describe('topK', () => {
  it('sorts by probability, ties to the lower digit', () => {
    expect(topK([0.1, 0.3, 0.3, 0.05, 0.25, 0, 0, 0, 0, 0], 3)).toEqual([
      { digit: 1, prob: 0.3 },
      { digit: 2, prob: 0.3 },
      { digit: 4, prob: 0.25 },
    ]);
  });
});

describe('parseMinConfidence', () => {
  it('takes decimals 0..1 and gives a reason for anything else', () => {
    expect(['0', '1', '0.5', '.25', '1.0', '0.999999'].map(parseMinConfidence)).toEqual([0, 1, 0.5, 0.25, 1, 0.999999]);
    for (const bad of ['1.5', '-0.1', 'abc', '', '1e-1', '0x1', 'NaN', 'Infinity', '0.5x']) expect(parseMinConfidence(bad), bad).toMatch(/expected a number from 0 to 1/);
  });
});

describe('predictItems', () => {
  const model = buildColourModel();
  afterAll(() => model.dispose());

  it('predicts each digit colour, keeps error rows in place, and leaks no tensors across batches', async () => {
    const items: InputItem[] = [];
    for (let i = 0; i < 23; i++) {
      const digit = i % 10;
      items.push({ kind: 'file', id: `f${i}`, path: `digit:${digit}` });
      if (i === 7) items.push({ kind: 'file', id: 'broken', path: 'broken' });
      if (i === 15) items.push({ kind: 'error', id: 'unlistable', error: 'cannot list folder: EACCES' });
    }
    const decode = async (path: string) => {
      if (path === 'broken') throw new Error('not a readable image: corrupt header');
      return new Uint8Array(solidRgb(Number(path.split(':')[1]), 32, 32));
    };
    const before = tf.memory().numTensors;
    const rows = (await collect(predictItems(from(items), { model, batchSize: 4, topK: 3, decode }))).map((r) => r.row);
    expect(tf.memory().numTensors).toBe(before);
    expect(rows.map((r) => r.input)).toEqual(items.map((i) => i.id));
    for (const r of rows) {
      if (r.input === 'broken') expect(r).toMatchObject({ predicted: null, confidence: null, top: [], error: 'not a readable image: corrupt header' });
      else if (r.input === 'unlistable') expect(r.error).toMatch(/EACCES/);
      else {
        expect(r.error).toBeNull();
        expect(r.predicted).toBe(Number(r.input.slice(1)) % 10);
        expect(r.top).toHaveLength(3);
        expect(r.top[0]!.prob).toBe(r.confidence);
        expect(r.top[0]!.prob).toBeGreaterThanOrEqual(r.top[1]!.prob);
      }
    }
  });

  it('abstains exactly below --min-confidence, not at it or above, and keeps the best digit', async () => {
    // Solid colours are near-certain; a red/green split averages to (0.5, 0.5, 0), between several prototypes.
    const split = new Uint8Array(32 * 32 * 3);
    for (let i = 0; i < 32 * 32; i++) split.set(i % 32 < 16 ? PROTOTYPES[2]! : PROTOTYPES[3]!, i * 3);
    const items: InputItem[] = [
      { kind: 'pixels', id: 'red', image: new Uint8Array(solidRgb(2, 32, 32)), label: 2 },
      { kind: 'pixels', id: 'split', image: split, label: 2 },
      { kind: 'error', id: 'gone', error: 'ENOENT' },
    ];
    const run = async (minConfidence?: number) => (await collect(predictItems(from(items), { model, batchSize: 2, topK: 3, minConfidence }))).map((r) => r.row);
    const plain = await run();
    expect(plain.map((r) => r.abstained)).toEqual([false, false, false]);
    expect(plain.map((r) => r.best)).toEqual([2, plain[1]!.top[0]!.digit, null]);
    const p = plain[1]!.confidence!;
    expect(p).toBeLessThan(0.6); // really split
    expect(plain[0]!.confidence!).toBeGreaterThan(0.9);
    const at = await run(p);
    expect(at).toEqual(plain); // at P: no abstention
    const above = await run(p + Number.EPSILON);
    expect(above[0]).toEqual(plain[0]);
    expect(above[1]).toEqual({ ...plain[1], predicted: null, abstained: true }); // best, confidence, top unchanged
    expect(above[2]).toEqual(plain[2]); // a failed input does not abstain
    expect((await run(1)).map((r) => r.abstained)).toEqual([true, true, false]); // softmax never reaches exactly 1 here
    for (const bad of [-0.1, 1.5, Number.NaN]) await expect(run(bad)).rejects.toThrow(/--min-confidence: expected a number from 0 to 1/);
  });

  it('predicts a .mat file with its labels, matching an independent computation', async () => {
    const mat = await readSvhnMat(MAT);
    const items: InputItem[] = Array.from({ length: mat.count }, (_, i) => ({
      kind: 'pixels',
      id: `m#${i}`,
      image: mat.images.subarray(i * 3072, (i + 1) * 3072),
      label: mat.labels[i]!,
    }));
    const out: PredictedItem[] = await collect(predictItems(from(items), { model, batchSize: 16, topK: 2 }));
    expect(out).toHaveLength(mat.count);
    let checked = 0;
    out.forEach(({ row }, i) => {
      expect(row.label).toBe(mat.labels[i]);
      const ref = nearestPrototype(mat.images.subarray(i * 3072, (i + 1) * 3072));
      if (ref.margin > 1e-3) {
        expect(row.predicted).toBe(ref.digit);
        checked++;
      }
    });
    expect(checked).toBeGreaterThan(mat.count / 2);
  });
});

describe('output formats', () => {
  const row: PredictionRow = {
    input: 'dir/with, comma "q".png',
    predicted: 3,
    confidence: 0.9123456,
    top: [
      { digit: 3, prob: 0.9123456 },
      { digit: 8, prob: 0.05 },
    ],
    label: 5,
    error: null,
    best: 3,
    abstained: false,
  };
  const failed: PredictionRow = { input: 'bad.png', predicted: null, confidence: null, top: [], label: null, error: 'empty file (0 bytes)', best: null, abstained: false };
  const unsure: PredictionRow = { ...row, predicted: null, abstained: true };

  it('writes CSV with a header, quoting, empty cells where nothing applies', () => {
    expect(csvHeader(2)).toBe('input,predicted,confidence,top1,top1_prob,top2,top2_prob,label,error,best,abstained\n');
    expect(formatCsvRow(row, 2)).toBe('"dir/with, comma ""q"".png",3,0.912346,3,0.912346,8,0.050000,5,,3,false\n');
    expect(formatCsvRow(failed, 2)).toBe('bad.png,,,,,,,,empty file (0 bytes),,false\n');
    expect(formatCsvRow(unsure, 2)).toBe('"dir/with, comma ""q"".png",,0.912346,3,0.912346,8,0.050000,5,,3,true\n');
  });

  it('writes one JSON object per line', () => {
    expect(JSON.parse(formatJsonlRow(row))).toEqual({
      input: row.input,
      predicted: 3,
      confidence: 0.912346,
      top: [
        { digit: 3, prob: 0.912346 },
        { digit: 8, prob: 0.05 },
      ],
      label: 5,
      error: null,
      best: 3,
      abstained: false,
    });
    expect(formatJsonlRow(failed).endsWith('}\n')).toBe(true);
    expect(JSON.parse(formatJsonlRow(unsure))).toMatchObject({ predicted: null, confidence: 0.912346, best: 3, abstained: true });
  });

  it('writes --out only under its final name when complete, and leaves nothing on abort', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'svhn-sink-'));
    try {
      const out = join(dir, 'rows.csv');
      const sink = await openRowSink({ format: 'csv', topK: 2, out });
      await sink.write(row);
      expect(await readdir(dir)).not.toContain('rows.csv');
      await sink.close();
      expect((await readFile(out, 'utf8')).split('\n')).toHaveLength(3);
      const aborted = await openRowSink({ format: 'jsonl', topK: 2, out: join(dir, 'never.jsonl') });
      await aborted.write(row);
      await aborted.abort();
      expect(await readdir(dir)).toEqual(['rows.csv']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('gridCaption', () => {
  it('shows prediction and confidence, and the true label when known', () => {
    const base: PredictionRow = { input: 'a.png', predicted: 3, confidence: 0.974, top: [], label: null, error: null, best: 3, abstained: false };
    expect(gridCaption(base)).toBe('3 97%');
    expect(gridCaption({ ...base, label: 5 })).toBe('3 97% (true 5)');
    const unsure = { ...base, predicted: null, confidence: 0.17, abstained: true };
    expect(gridCaption(unsure)).toBe('unsure (3 17%)');
    expect(gridCaption({ ...unsure, label: 5 })).toBe('unsure (3 17%) (true 5)');
  });

  it("names each tile by its file's base name (the grid cuts it to fit)", () => {
    expect(gridFileName('photos/2024/house 12.png')).toBe('house 12.png');
    expect(gridFileName('data/test_32x32.mat#3')).toBe('test_32x32.mat#3');
    expect(gridFileName('cache:test#5')).toBe('cache:test#5');
  });

  it('titles the grid with the model, and marks a model trained on the synthetic sample', () => {
    expect(gridTitle('optimized', false)).toBe('SVHN model predictions (optimized)');
    expect(gridTitle('demo', true)).toBe('SVHN model predictions (demo), model trained on SYNTHETIC data');
  });
});

describe('runPredict', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'svhn-run-'));
    await saveColourModel(join(dir, 'model'));
    for (const d of [2, 4, 8]) {
      await sharp(solidRgb(d, 30 + d, 20), { raw: { width: 30 + d, height: 20, channels: 3 } }).png().toFile(join(dir, `img${d}.png`));
    }
    await writeFile(join(dir, 'img5.png'), ''); // zero bytes
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('streams rows to a stream, counts failures, and draws a grid', async () => {
    const stream = new PassThrough();
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    const summary = await runPredict({
      inputs: [dir, MAT],
      modelDir: join(dir, 'model'),
      format: 'jsonl',
      stream,
      topK: 3,
      recursive: false,
      batchSize: 8,
      dataDir: 'data',
      backend: 'cpu',
      grid: join(dir, 'grid.png'),
      gridCount: 6,
      progress: 'silent',
    });
    const rows = Buffer.concat(chunks).toString('utf8').trim().split('\n').map((l) => JSON.parse(l) as PredictionRow);
    expect(rows).toHaveLength(4 + 64);
    expect(rows.slice(0, 4).map((r) => [r.predicted, r.error === null])).toEqual([
      [2, true],
      [4, true],
      [null, false],
      [8, true],
    ]);
    expect(summary).toMatchObject({ total: 68, predicted: 67, failed: 1, labelled: 64, backend: 'cpu' });
    const meta = await sharp(join(dir, 'grid.png')).metadata();
    expect(meta.format).toBe('png');
    expect(meta.width).toBeGreaterThan(3 * 128);
  });
});
