/**
 * Fine-tuning (trainModel with `init`) on the tiny architecture and the cpu backend: the run
 * starts from the parent's weights, records the parent, repeats bit for bit, and resumes.
 */
import { createHash } from 'node:crypto';
import { readFile, rm, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { loadLayersModel } from '../../src/models/io.js';
import { checkpointDirFor, trainModel, type TrainOptions } from '../../src/train/loop.js';
import { rejection } from '../helpers.js';
import { registerTinyModel, writeTinyCache } from './helpers.js';

let root: string;
let dataDir: string;
let parentDir: string;

const base = (out: string, over: Partial<TrainOptions> = {}): TrainOptions => ({
  model: 'tiny',
  dataDir,
  epochs: 2,
  batchSize: 8,
  lr: 1e-3,
  seed: 11,
  limit: null,
  valLimit: null,
  extra: false,
  augment: false,
  patience: 10,
  outDir: join(root, out),
  resume: false,
  backend: 'cpu',
  progress: 'silent',
  ...over,
});

const bytes = (dir: string, file = 'weights.bin') => readFile(join(dir, file));
const sha = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');

/** name -> values of a saved model's weights (BatchNorm's moving statistics included). */
async function savedWeights(dir: string): Promise<Map<string, Float32Array>> {
  const model = await loadLayersModel(dir);
  const out = new Map(model.weights.map((w) => [w.originalName, new Float32Array(w.read().dataSync())] as const));
  model.dispose();
  return out;
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'svhn-init-'));
  dataDir = join(root, 'data');
  await writeTinyCache(dataDir, { train: 40, val: 20 });
  registerTinyModel();
  await initBackend('cpu');
  parentDir = (await trainModel(base('parent', { epochs: 2, lr: 1e-2, seed: 1 }))).outDir;
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('trainModel with init (fine-tuning)', () => {
  it("starts from the parent's weights: with a vanishing learning rate the trainable weights stay the parent's", async () => {
    const tuned = await trainModel(base('still', { init: parentDir, epochs: 1, lr: 1e-10 }));
    const scratch = await trainModel(base('scratch', { epochs: 1, lr: 1e-10 }));
    const [p, t, s] = await Promise.all([parentDir, tuned.outDir, scratch.outDir].map(savedWeights));
    let compared = 0;
    for (const [name, values] of p) {
      if (/moving_(mean|variance)/.test(name)) continue; // BatchNorm statistics move with the data, not the learning rate
      expect(maxDiff(values, t.get(name)!), name).toBeLessThan(1e-6);
      compared++;
    }
    expect(compared).toBeGreaterThanOrEqual(4);
    expect(maxDiff(p.get('dense_1/kernel')!, s.get('dense_1/kernel')!)).toBeGreaterThan(1e-3); // from scratch: another start
  });

  it('records the parent (path, weight and metadata hashes, its data) and repeats bit for bit for a seed', async () => {
    const a = await trainModel(base('ft-a', { init: parentDir }));
    const b = await trainModel(base('ft-b', { init: parentDir }));
    const c = await trainModel(base('ft-c', { init: parentDir, seed: 12 }));
    expect((await bytes(a.outDir)).equals(await bytes(b.outDir))).toBe(true);
    expect((await bytes(a.outDir)).equals(await bytes(c.outDir))).toBe(false);
    const parentMeta = JSON.parse(await readFile(join(parentDir, 'metadata.json'), 'utf8'));
    const meta = JSON.parse(await readFile(join(a.outDir, 'metadata.json'), 'utf8'));
    expect(meta.parent).toEqual({
      dir: parentDir,
      name: 'parent',
      architecture: 'tiny',
      weightsSha256: await sha(join(parentDir, 'weights.bin')),
      metadataSha256: await sha(join(parentDir, 'metadata.json')),
      dataManifestSha256: parentMeta.dataManifestSha256,
      synthetic: true,
    });
    expect(meta.parent.dataManifestSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(meta.architecture).toBe('tiny');
  });

  it("with recalibrateBn, starts from BatchNorm statistics measured on its own images, not the parent's, and records it", async () => {
    // A vanishing rate: what training moves is negligible, so the statistics show the start.
    const kept = await trainModel(base('rc-off', { init: parentDir, epochs: 1, lr: 1e-10 }));
    const measured = await trainModel(base('rc-on', { init: parentDir, epochs: 1, lr: 1e-10, recalibrateBn: true }));
    const [p, off, on] = await Promise.all([parentDir, kept.outDir, measured.outDir].map(savedWeights));
    const mean = 'batch_normalization_1/moving_mean';
    // Without it, one epoch of 5 steps moves the parent's averages by about 5% of the way.
    expect(maxDiff(p.get(mean)!, off.get(mean)!)).toBeLessThan(0.3 * maxDiff(p.get(mean)!, on.get(mean)!));
    expect(measured.metadata.hyperparameters.recalibrateBn).toBe(true);
    expect(kept.metadata.hyperparameters.recalibrateBn).toBe(false);
    const alone = await rejection(trainModel(base('rc-scratch', { recalibrateBn: true })));
    expect([alone.code, alone.message]).toEqual(['BAD_FLAG', "--recalibrate-bn: it replaces a parent model's BatchNorm statistics, so it needs --init MODEL_DIR"]);
  });

  it('resumes a fine-tune stopped after epoch 1 to the uninterrupted bytes; the checkpoint carries the parent', async () => {
    const full = await trainModel(base('ft-full', { init: parentDir, recalibrateBn: true }));
    const out = 'ft-resumed';
    await expect(trainModel(base(out, { init: parentDir, recalibrateBn: true, onEpochEnd: (r) => { if (r.epoch === 1) throw new Error('killed'); } }))).rejects.toThrow('killed');
    const state = JSON.parse(await readFile(join(checkpointDirFor(join(root, out)), 'state.json'), 'utf8'));
    expect(state.parent.dir).toBe(parentDir);
    expect(state.config.init).toBe(await sha(join(parentDir, 'weights.bin')));

    // Resuming needs the same parent.
    const without = await rejection(trainModel(base(out, { resume: true })));
    expect(without.message).toBe(`--resume: the checkpoint in ${checkpointDirFor(join(root, out))} fine-tunes ${parentDir}`);
    expect(without.suggestion).toContain(`--init ${parentDir}`);
    const other = await rejection(trainModel(base(out, { init: parentDir, resume: true })));
    expect(other.message).toBe(`--resume: the checkpoint in ${checkpointDirFor(join(root, out))} was made with recalibrateBn=true, this run has false`);
    const resumed = await trainModel(base(out, { init: parentDir, recalibrateBn: true, resume: true }));
    expect(resumed.resumedFromEpoch).toBe(1);
    expect((await bytes(resumed.outDir)).equals(await bytes(full.outDir))).toBe(true);
    expect(resumed.metadata.parent?.dir).toBe(parentDir);
  });

  it('refuses a parent whose weights changed since the checkpoint, a checkpoint from scratch under --init, and another architecture', async () => {
    const copy = join(root, 'parent-copy');
    await trainModel(base('parent-copy', { epochs: 1, seed: 2 }));
    await expect(trainModel(base('ft-x', { init: copy, onEpochEnd: () => { throw new Error('killed'); } }))).rejects.toThrow('killed');
    const w = await bytes(copy);
    w[0] ^= 0xff;
    await writeFile(join(copy, 'weights.bin'), w);
    expect((await rejection(trainModel(base('ft-x', { init: copy, resume: true })))).message).toMatch(/--resume: --init .*parent-copy has changed since the checkpoint \(weights\.bin sha256 /);
    // Another --init than the checkpoint's parent is named as such, both models named.
    const other = await rejection(trainModel(base('ft-x', { init: parentDir, resume: true })));
    expect(other.message).toMatch(new RegExp(`^--resume: --init ${parentDir} differs from the parent of the checkpoint in \\S+ft-x\\.checkpoint, ${copy} \\(weights\\.bin sha256 [0-9a-f]{12}\\.\\.\\. vs [0-9a-f]{12}\\.\\.\\.\\)$`));
    expect(other.suggestion).toBe(`pass --init ${copy} to resume it, or train without --resume to fine-tune ${parentDir}`);

    await expect(trainModel(base('scratch-x', { onEpochEnd: () => { throw new Error('killed'); } }))).rejects.toThrow('killed');
    expect((await rejection(trainModel(base('scratch-x', { init: parentDir, resume: true })))).message).toMatch(/trains from scratch, this run has --init/);

    const e = await rejection(trainModel(base('wrong', { model: 'baseline', init: parentDir })));
    expect(e.code).toBe('BAD_FLAG');
    expect(e.message).toBe(`--model baseline: --init ${parentDir} is a tiny model, and a fine-tune keeps the architecture`);
    expect((await rejection(trainModel(base('wrong', { init: join(root, 'nope') })))).message).toMatch(/--init .*nope: no such model directory/);
  });
});
