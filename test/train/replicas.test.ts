/**
 * Data-parallel training (src/train/replicas.ts) on the wasm backend: 2 and 3 replicas (1
 * and 2 worker threads) must train the optimized model (BatchNorm and dropout) as 1 replica
 * does, to float32 rounding, step after step, with even, uneven and one-image batches; a
 * thread count repeats bit for bit; trainModel resumes exactly.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { seededDropoutLayers } from '../../src/models/layers.js';
import { buildModel } from '../../src/models/registry.js';
import { FusedAdamOptimizer } from '../../src/train/adam.js';
import { combineShardGradients, createTrainer, shardSizes, type Trainer } from '../../src/train/replicas.js';
import { evaluateSums, packInto, sizeOf, statisticVariables, trainableSize, trainableVariables } from '../../src/train/step.js';
import { relDiff } from '../backend/helpers.js';
import { checkpointDirFor, trainModel, type TrainOptions } from '../../src/train/loop.js';
import { Rng } from '../../src/util/rng.js';
import { makeImages, writeTinyCache } from './helpers.js';

const IMG = 32 * 32 * 3;

function batch(seed: number, n: number): { xs: Float32Array; ys: Float32Array } {
  const rng = new Rng(seed);
  const xs = new Float32Array(n * IMG).map(() => rng.uniform(0, 1));
  const ys = new Float32Array(n * 10);
  for (let i = 0; i < n; i++) ys[i * 10 + Math.floor(rng.uniform(0, 10))] = 1;
  return { xs, ys };
}

/** Weights then BatchNorm moving statistics, flat. */
const stateOf = (model: tf.LayersModel) => [...trainableVariables(model), ...statisticVariables(model)];
const flat = (model: tf.LayersModel) => {
  const out = new Float32Array(sizeOf(stateOf(model)));
  packInto(stateOf(model), out);
  return out;
};

describe('shard arithmetic', () => {
  it('splits batches as evenly as possible, first shards larger', () => {
    expect(shardSizes(64, 2)).toEqual([32, 32]);
    expect(shardSizes(7, 2)).toEqual([4, 3]);
    expect(shardSizes(1, 2)).toEqual([1, 0]);
    expect(shardSizes(10, 3)).toEqual([4, 3, 3]);
  });

  it('combines shard means into the batch mean, weighted by shard size, in replica order', async () => {
    await initBackend('wasm', { threads: 1 });
    const before = tf.memory().numTensors;
    const mine = [tf.tensor1d([1, 10]), tf.tensor2d([[2], [4]])];
    const got = combineShardGradients({ grads: mine, size: 3 }, [
      { grads: new Float32Array([5, -2, 6, 8]), size: 1 },
      { grads: new Float32Array(4), size: 0 },
    ]);
    expect(got.map((t) => t.shape)).toEqual([[2], [2, 1]]);
    expect(got.flatMap((t) => Array.from(t.dataSync()))).toEqual([2, 7, 3, 5]); // 0.75 a + 0.25 b
    const one = combineShardGradients({ grads: mine, size: 2 }, []);
    expect(one.flatMap((t) => Array.from(t.dataSync()))).toEqual([1, 10, 2, 4]);
    expect(() => combineShardGradients({ grads: mine, size: 1 }, [{ grads: new Float32Array(3), size: 1 }])).toThrow(/3 values for 4/);
    tf.dispose([...mine, ...got, ...one]);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('createTrainer: N replicas compute the one-replica step (wasm, optimized model)', () => {
  const trainers: Trainer[] = [];
  const models: tf.LayersModel[] = [];
  beforeAll(async () => {
    await initBackend('wasm', { threads: 1 });
    for (const replicas of [1, 2, 3]) {
      const model = buildModel('optimized', { seed: 3 });
      models.push(model);
      // SGD: Adam's first steps are ~lr * sign(gradient), which turns rounding noise on a
      // near-zero gradient (a conv bias ahead of BatchNorm) into a full-size difference.
      trainers.push(await createTrainer({ model, optimizer: tf.train.sgd(0.005), modelName: 'optimized', modelSeed: 3, backend: 'wasm', replicas, maxBatch: 8 }));
    }
  }, 60_000);
  afterAll(async () => {
    await Promise.all(trainers.map((t) => t.close()));
  });

  it('gives the same loss, accuracy, weights and BatchNorm statistics as 1 replica, step after step', async () => {
    expect(trainers.map((t) => t.replicas)).toEqual([1, 2, 3]);
    expect(flat(models[1]!)).toEqual(flat(models[0]!));
    const start = flat(models[0]!);
    // 1: one image, so the workers sit the step out (bit-identical); 8: even shards; 7: uneven.
    for (const [step, n] of [[0, 1], [1, 8], [2, 7], [3, 8]] as const) {
      const { xs, ys } = batch(100 + step, n);
      const [one, two, three] = await Promise.all(trainers.map((t) => t.step(xs, ys, n)));
      for (const r of [two!, three!]) {
        expect(Math.abs(r.loss - one!.loss)).toBeLessThan(1e-5 * one!.loss);
        expect(r.acc).toBe(one!.acc);
      }
      const reference = flat(models[0]!);
      for (const m of models.slice(1)) {
        if (step === 0) expect(flat(m)).toEqual(reference);
        else expect(relDiff(flat(m), reference)).toBeLessThan(1e-5);
      }
    }
    // and training moved the weights and the statistics
    expect(relDiff(flat(models[0]!), start)).toBeGreaterThan(1e-3);
    const statsAt = trainableSize(models[0]!);
    expect(flat(models[0]!).subarray(statsAt)).not.toEqual(start.subarray(statsAt));
  }, 60_000);

  it('repeats bit for bit for the same thread count and leaves no tensors behind', async () => {
    const again = buildModel('optimized', { seed: 3 });
    const twin = await createTrainer({ model: again, optimizer: new FusedAdamOptimizer(1e-2), modelName: 'optimized', modelSeed: 3, backend: 'wasm', replicas: 2, maxBatch: 8 });
    const fresh = buildModel('optimized', { seed: 3 });
    const first = await createTrainer({ model: fresh, optimizer: new FusedAdamOptimizer(1e-2), modelName: 'optimized', modelSeed: 3, backend: 'wasm', replicas: 2, maxBatch: 8 });
    try {
      for (let step = 0; step < 3; step++) {
        const { xs, ys } = batch(200 + step, 8);
        await first.step(xs, ys, 8);
        await twin.step(xs, ys, 8);
      }
      expect(flat(again)).toEqual(flat(fresh));
      const settled = tf.memory().numTensors;
      await first.step(...(Object.values(batch(9, 8)) as [Float32Array, Float32Array]), 8);
      expect(tf.memory().numTensors).toBe(settled);
    } finally {
      await Promise.all([twin.close(), first.close()]);
    }
  }, 60_000);

  it('evaluates a set split over the replicas as the main thread alone does', async () => {
    const set = { count: 37, ...makeImages(37, 5) };
    const other = { count: 20, ...makeImages(20, 6) };
    for (const [k, trainer] of trainers.entries()) {
      for (const s of [set, other, set]) {
        const alone = evaluateSums(models[k]!, s);
        const split = await trainer.evaluate(s);
        expect(split.acc).toBe(alone.correct / s.count);
        expect(Math.abs(split.loss - alone.lossSum / s.count)).toBeLessThan(1e-6 * alone.lossSum / s.count);
      }
    }
  });

  it('fails with one clear error naming the replica when a worker cannot start', async () => {
    const model = buildModel('optimized', { seed: 3 });
    await expect(createTrainer({ model, optimizer: tf.train.sgd(0.1), modelName: 'no-such-model', modelSeed: 3, backend: 'wasm', replicas: 2, maxBatch: 8 }))
      .rejects.toThrow(/training replica 2 \(a worker thread\) failed: --model: expected one of/);
    tf.dispose(model.weights.map((w) => w.read()));
  });

  it('keeps the workers\' dropout streams on the main model\'s', async () => {
    const main = seededDropoutLayers(models[1]!).map((d) => d.rngState);
    expect(await trainers[1]!.workerRngStates()).toEqual([main]);
    await trainers[1]!.syncWorkerRngStates([1, 2]);
    expect(await trainers[2]!.workerRngStates()).toEqual([seededDropoutLayers(models[2]!).map((d) => d.rngState), seededDropoutLayers(models[2]!).map((d) => d.rngState)]);
    expect(await trainers[1]!.workerRngStates()).toEqual([[1, 2]]);
    await trainers[1]!.syncWorkerRngStates(main);
  });
});

describe('trainModel with --threads 2 (wasm, baseline)', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'svhn-replicas-'));
    await writeTinyCache(join(root, 'data'), { train: 40, val: 20 });
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });
  const run = (out: string, over: Partial<TrainOptions> = {}) => trainModel({
    model: 'baseline', dataDir: join(root, 'data'), epochs: 2, batchSize: 10, lr: 1e-3, seed: 7, limit: null, valLimit: null,
    extra: false, augment: false, patience: 5, outDir: join(root, out), resume: false, backend: 'wasm', threads: 2, progress: 'silent', ...over,
  });
  const weights = (out: string) => readFile(join(root, out, 'weights.bin'));

  it('repeats bit for bit, records 2 threads, and resumes exactly after a stop', async () => {
    const counts: number[] = [];
    const a = await run('a', { onEpochEnd: (_r, info) => void counts.push(info.numTensors) });
    const b = await run('b');
    expect(a.metadata.threads).toBe(2);
    expect((await weights('a')).equals(await weights('b'))).toBe(true);
    expect(new Set(counts).size).toBe(1); // no tensors pile up epoch to epoch
    await expect(run('c', { onEpochEnd: (r) => { if (r.epoch === 1) throw new Error('killed'); } })).rejects.toThrow('killed');
    const state = JSON.parse(await readFile(join(checkpointDirFor(join(root, 'c')), 'state.json'), 'utf8'));
    expect(state.threads).toBe(2);
    const c = await run('c', { resume: true });
    expect(c.resumedFromEpoch).toBe(1);
    expect(c.history.map((h) => h.val_loss)).toEqual(a.history.map((h) => h.val_loss));
    expect((await weights('c')).equals(await weights('a'))).toBe(true);
    await expect(stat(checkpointDirFor(join(root, 'c')))).rejects.toThrow();
    // One thread: the same training, rounded differently.
    const one = await run('one', { threads: 1 });
    expect(one.metadata.threads).toBe(1);
    expect(one.history[1]!.loss).toBeCloseTo(a.history[1]!.loss, 4);
  }, 120_000);
});
