import * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import type { HistoryRecord } from '../../src/models/modelDir.js';
import { checkpointDirFor, trainModel, type TrainOptions } from '../../src/train/loop.js';
import { learningRateAt } from '../../src/train/schedule.js';
import { registerTinyModel, writeTinyCache } from './helpers.js';

let root: string;
let dataDir: string;

const base = (out: string, over: Partial<TrainOptions> = {}): TrainOptions => ({
  model: 'tiny',
  dataDir,
  epochs: 3,
  batchSize: 8,
  lr: 1e-2,
  seed: 5,
  limit: null,
  valLimit: null,
  extra: false,
  augment: true,
  patience: 10,
  outDir: join(root, out),
  resume: false,
  backend: 'cpu',
  progress: 'silent',
  ...over,
});

const weights = (dir: string) => readFile(join(dir, 'weights.bin'));

/** sha256 over every weight's bytes, in model order. */
function hashWeights(model: tf.LayersModel): string {
  const h = createHash('sha256');
  for (const w of model.weights) h.update(new Uint8Array(w.read().dataSync().buffer.slice(0)));
  return h.digest('hex');
}

/** History without the timings. */
const metrics = (h: HistoryRecord[]) => h.map(({ epoch, loss, acc, val_loss, val_acc }) => ({ epoch, loss, acc, val_loss, val_acc }));

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'svhn-train-'));
  dataDir = join(root, 'data');
  await writeTinyCache(dataDir, { train: 40, val: 20 });
  registerTinyModel();
  await initBackend('cpu');
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('trainModel', () => {
  it('writes a complete model directory and is bit-identical for the same seed', async () => {
    const counts: number[] = [];
    const a = await trainModel(base('a', { onEpochEnd: (_r, info) => void counts.push(info.numTensors) }));
    const b = await trainModel(base('b'));
    expect(await readdir(a.outDir)).toEqual(expect.arrayContaining(['model.json', 'weights.bin', 'metadata.json', 'history.json', 'history.csv']));
    expect((await weights(a.outDir)).equals(await weights(b.outDir))).toBe(true);
    expect(metrics(a.history)).toEqual(metrics(b.history));
    // No tensor leaks: the count is the same after every epoch.
    expect(counts).toHaveLength(3);
    expect(new Set(counts).size).toBe(1);
    // Training finished: the checkpoint is gone.
    await expect(stat(checkpointDirFor(a.outDir))).rejects.toThrow();
    const meta = JSON.parse(await readFile(join(a.outDir, 'metadata.json'), 'utf8'));
    expect(meta).toMatchObject({ architecture: 'tiny', seed: 5, backend: 'cpu', epochsRun: 3, synthetic: true });
    expect(meta.params.total).toBeGreaterThan(0);
    expect(meta.dataManifestSha256).toMatch(/^[0-9a-f]{64}$/);
    const best = a.history.reduce((m, r) => (r.val_acc > m.val_acc ? r : m));
    expect(meta.bestEpoch).toBe(best.epoch);
    const csv = (await readFile(join(a.outDir, 'history.csv'), 'utf8')).trim().split('\n');
    expect(csv[0]).toBe('epoch,loss,acc,val_loss,val_acc,seconds,imagesPerSec,lr');
    expect(csv).toHaveLength(4);
    // constant schedule: every epoch's last step ran at --lr; the CSV's trailing column says so
    expect(a.history.map((r) => r.lr)).toEqual([1e-2, 1e-2, 1e-2]);
    expect(csv.slice(1).map((l) => l.split(',').at(-1))).toEqual(['0.01', '0.01', '0.01']);
    expect(JSON.parse(await readFile(join(a.outDir, 'history.json'), 'utf8')).map((r: HistoryRecord) => r.lr)).toEqual([1e-2, 1e-2, 1e-2]);
  });

  it('gives different weights for a different seed', async () => {
    const a = await trainModel(base('s1', { epochs: 1 }));
    const b = await trainModel(base('s2', { epochs: 1, seed: 6 }));
    expect((await weights(a.outDir)).equals(await weights(b.outDir))).toBe(false);
  });

  it('resumes a run stopped after epoch 1 of 2 and ends with the same bytes as an uninterrupted run', async () => {
    // The directory keeps the best-val_acc epoch, which may be epoch 1: compare the last epoch's
    // weights too (captured by the hook), and every history number.
    const last: Record<string, string> = {};
    const lastWeights = (key: string) => (r: HistoryRecord, info: { model: tf.LayersModel }) => {
      if (r.epoch === 2) last[key] = hashWeights(info.model);
    };
    const full = await trainModel(base('full', { epochs: 2, onEpochEnd: lastWeights('full') }));
    const out = 'resumed';
    await expect(
      trainModel(base(out, { epochs: 2, onEpochEnd: (r) => { if (r.epoch === 1) throw new Error('killed'); } })),
    ).rejects.toThrow('killed');
    // Interrupted: nothing under the final name, a checkpoint beside it.
    await expect(stat(join(root, out))).rejects.toThrow();
    expect((await stat(checkpointDirFor(join(root, out)))).isDirectory()).toBe(true);
    const resumed = await trainModel(base(out, { epochs: 2, resume: true, onEpochEnd: lastWeights('resumed') }));
    expect(resumed.resumedFromEpoch).toBe(1);
    expect(resumed.history.map((r) => r.epoch)).toEqual([1, 2]);
    expect(last['resumed']).toBe(last['full']);
    expect(metrics(resumed.history)).toEqual(metrics(full.history));
    expect((await weights(resumed.outDir)).equals(await weights(full.outDir))).toBe(true);
  });

  it('resumes a run with the modern recipe bit-exactly, and refuses to resume it under another', async () => {
    // Cosine with warm-up, AdamW, label smoothing, stronger augmentation: every part is a
    // function of the step count and seeded streams that the checkpoint holds.
    const recipe = { epochs: 3, schedule: 'cosine', warmupEpochs: 1, weightDecay: 0.05, labelSmoothing: 0.1, augmentStrength: 2 } as const;
    const last: Record<string, string> = {};
    const lastWeights = (key: string) => (r: HistoryRecord, info: { model: tf.LayersModel }) => {
      if (r.epoch === 3) last[key] = hashWeights(info.model);
    };
    const full = await trainModel(base('recipe-full', { ...recipe, onEpochEnd: lastWeights('full') }));
    expect(full.metadata.hyperparameters).toMatchObject({ schedule: 'cosine', warmupEpochs: 1, weightDecay: 0.05, labelSmoothing: 0.1, augmentStrength: 2 });
    const plain = await trainModel(base('recipe-plain', { epochs: 3 }));
    expect(metrics(plain.history)).not.toEqual(metrics(full.history));
    const out = 'recipe-resumed';
    await expect(
      trainModel(base(out, { ...recipe, onEpochEnd: (r) => { if (r.epoch === 2) throw new Error('killed'); } })),
    ).rejects.toThrow('killed');
    await expect(trainModel(base(out, { ...recipe, schedule: 'onecycle', resume: true }))).rejects.toThrow(/made with schedule=cosine, this run has onecycle/);
    await expect(trainModel(base(out, { ...recipe, epochs: 4, resume: true }))).rejects.toThrow(/made with epochs=3, this run has 4/);
    const resumed = await trainModel(base(out, { ...recipe, resume: true, onEpochEnd: lastWeights('resumed') }));
    expect(resumed.resumedFromEpoch).toBe(2);
    expect(last['resumed']).toBe(last['full']);
    expect(metrics(resumed.history)).toEqual(metrics(full.history));
    // history's lr: the schedule's rate at each epoch's last step, resumed or not
    const steps = Math.ceil(full.metadata.data.train / 8);
    const spec = { schedule: 'cosine' as const, lr: 1e-2, warmupEpochs: 1 };
    const expected = [1, 2, 3].map((e) => learningRateAt(spec, e * steps - 1, 3 * steps, steps));
    expect(full.history.map((r) => r.lr)).toEqual(expected);
    expect(resumed.history.map((r) => r.lr)).toEqual(expected);
    expect(new Set(expected).size).toBe(3);
  });

  it("shows validation as its own phase, and each epoch's line its time, learning rate and history's images/s", async () => {
    const written: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (written.push(String(chunk)), true));
    let r;
    try {
      r = await trainModel(base('phases', { epochs: 2, schedule: 'cosine', progress: 'plain' }));
    } finally {
      spy.mockRestore();
    }
    const lines = written.join('').split('\n').filter((l) => l.startsWith('epoch '));
    expect(lines).toHaveLength(4);
    r.history.forEach((h, i) => {
      expect(lines[2 * i]).toMatch(new RegExp(`^epoch ${i + 1}/2 \\[cpu, \\d+ threads?\\]: validating 20 images$`));
      const end = lines[2 * i + 1]!;
      expect(end).toContain(`: 40/40 (100%) ${Math.round(h.imagesPerSec)}/s `);
      expect(end).toContain(`  time ${h.seconds.toFixed(1)}s + `);
      expect(end).toMatch(/ \d+\.\ds val  lr /);
      expect(end.endsWith(`  lr ${Number(h.lr!.toPrecision(3))}`)).toBe(true);
    });
    expect(lines[1]).toMatch(/  lr 0\.00587$/); // epoch 1's last step: cosine half-way down from 0.01
    expect(lines[3]).toMatch(/  lr 0$/); // the run's last step: cosine's end
  });

  it('stops early on val_loss and keeps the best val_acc epoch', async () => {
    // A huge learning rate makes val_loss climb after the first epochs.
    const r = await trainModel(base('early', { epochs: 6, patience: 1, lr: 5 }));
    expect(r.metadata.stoppedEarly).toBe(true);
    expect(r.history.length).toBeLessThan(6);
    const es = r.metadata.earlyStopping;
    expect(es.stoppedEpoch).toBe(r.history.length);
    expect(Math.min(...r.history.map((h) => h.val_loss))).toBe(es.bestValLoss);
  });

  it('streams the extra split in chunks alongside train', async () => {
    const withExtra = join(root, 'data-extra');
    await writeTinyCache(withExtra, { train: 20, val: 10, extra: 25 });
    const r = await trainModel(base('extra', { dataDir: withExtra, epochs: 1, extra: true, extraChunk: 10 }));
    expect(r.metadata.data).toEqual({ train: 20, val: 10, extra: 25 });
    expect(r.metadata.hyperparameters.extra).toBe(true);
    // Without an extra split in the cache: a clear error naming the fix.
    await expect(trainModel(base('extra2', { epochs: 1, extra: true }))).rejects.toThrow(/--extra: .* has no 'extra' split/);
  });

  it('refuses --resume without a checkpoint, and bad numbers, writing nothing', async () => {
    await expect(trainModel(base('none', { resume: true }))).rejects.toThrow(/--resume: no checkpoint/);
    await expect(trainModel(base('none', { batchSize: 0 }))).rejects.toThrow(/--batch-size/);
    await expect(trainModel(base('none', { model: 'nope' }))).rejects.toThrow(/expected one of .*baseline.*optimized/);
    await expect(stat(join(root, 'none'))).rejects.toThrow();
    expect(tf.getBackend()).toBe('cpu');
  });
});
