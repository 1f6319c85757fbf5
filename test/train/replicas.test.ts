/**
 * Data-parallel training (src/train/replicas.ts) on the wasm backend with a worker replica:
 * every step must equal, bit for bit, the same arithmetic done by hand in this thread: the
 * main model's gradient on the first shard, a copy of the model (with the worker's dropout
 * streams and the step's starting weights and BatchNorm statistics) on the second, gradients
 * and moving statistics combined by shard size, one Adam step. Uneven batches included, and
 * no tensors left behind.
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
import { replicaDropoutState } from '../../src/train/replicaWorker.js';
import { assignFrom, packInto, shardGradients, sizeOf, statisticVariables, trainableSize, trainableVariables } from '../../src/train/step.js';
import { checkpointDirFor, trainModel, type TrainOptions } from '../../src/train/loop.js';
import { Rng } from '../../src/util/rng.js';
import { writeTinyCache } from './helpers.js';

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

  it('combines shard means into the batch mean, weighted by shard size', () => {
    const out = new Float32Array(2);
    combineShardGradients([{ grads: new Float32Array([1, 10]), size: 3 }, { grads: new Float32Array([5, -2]), size: 1 }], out);
    expect(Array.from(out)).toEqual([Math.fround(0.75 * 1 + 0.25 * 5), Math.fround(0.75 * 10 - 0.25 * 2)]);
    combineShardGradients([{ grads: new Float32Array([4, 4]), size: 2 }, { grads: new Float32Array(2), size: 0 }], out);
    expect(Array.from(out)).toEqual([4, 4]);
  });
});

describe('createTrainer with 2 replicas (a worker thread), wasm', () => {
  let trainer: Trainer;
  let model: tf.LayersModel;
  beforeAll(async () => {
    await initBackend('wasm', { threads: 1 });
    model = buildModel('optimized', { seed: 3 });
    trainer = await createTrainer({ model, optimizer: new FusedAdamOptimizer(1e-2), modelName: 'optimized', modelSeed: 3, backend: 'wasm', replicas: 2, maxBatch: 8 });
  }, 60_000);
  afterAll(async () => {
    await trainer?.close();
  });

  it('gives bit-identical weights to the same shards computed by hand, step after step', async () => {
    expect(trainer.replicas).toBe(2);
    // The reference: the main replica's twin and the worker's twin, same initial weights.
    const main = buildModel('optimized', { seed: 3 });
    const twin = buildModel('optimized', { seed: 3 });
    seededDropoutLayers(twin).forEach((d) => (d.rngState = replicaDropoutState(d.seed, 1)));
    const optimizer = new FusedAdamOptimizer(1e-2);
    expect(flat(main)).toEqual(flat(model));
    const before = tf.memory().numTensors;
    for (const [step, n] of [[0, 8], [1, 7], [2, 8]] as const) {
      const { xs, ys } = batch(100 + step, n);
      const got = await trainer.step(xs, ys, n);

      const [n0, n1] = shardSizes(n, 2) as [number, number];
      assignFrom(stateOf(twin), flat(main));
      const g0 = shardGradients(main, xs, ys, n0);
      const g1 = shardGradients(twin, xs.subarray(n0 * IMG), ys.subarray(n0 * 10), n1);
      const size = sizeOf(stateOf(main));
      const p0 = new Float32Array(size);
      const p1 = new Float32Array(size);
      packInto([...g0.grads, ...statisticVariables(main)], p0);
      packInto([...g1.grads, ...statisticVariables(twin)], p1);
      tf.dispose([...g0.grads, ...g1.grads]);
      const combined = new Float32Array(size);
      combineShardGradients([{ grads: p0, size: n0 }, { grads: p1, size: n1 }], combined);
      assignFrom(statisticVariables(main), combined.subarray(trainableSize(main)));
      let at = 0;
      const grads = trainableVariables(main).map((v) => {
        const t = tf.tensor(combined.slice(at, at + v.size), v.shape);
        at += v.size;
        return { name: v.name, tensor: t };
      });
      optimizer.applyGradients(grads);
      tf.dispose(grads.map((g) => g.tensor));

      expect(got.loss).toBeCloseTo((g0.loss * n0 + g1.loss * n1) / n, 6);
      expect(got.acc).toBe((g0.correct + g1.correct) / n);
      const a = flat(model);
      const b = flat(main);
      expect(a).toEqual(b);
      // The statistics moved, and differ from either shard's alone.
      const statsAt = trainableSize(main);
      expect(a.subarray(statsAt)).not.toEqual(p0.subarray(statsAt));
      expect(a.subarray(statsAt)).not.toEqual(p1.subarray(statsAt));
    }
    // Each step leaves the tensor count where it was (the twins' own weights aside).
    const settled = tf.memory().numTensors;
    await trainer.step(...Object.values(batch(9, 8)) as [Float32Array, Float32Array], 8);
    expect(tf.memory().numTensors).toBe(settled);
    expect(settled).toBeGreaterThanOrEqual(before);
    tf.dispose([main, twin].flatMap((m) => m.weights.map((w) => w.read())));
    optimizer.dispose();
  }, 60_000);

  it('saves and restores the worker replicas\' dropout streams', async () => {
    const states = await trainer.workerRngStates();
    expect(states).toHaveLength(1);
    expect(states[0]!.length).toBe(2); // the optimized model's two dropout layers
    await trainer.step(...Object.values(batch(10, 8)) as [Float32Array, Float32Array], 8);
    const moved = await trainer.workerRngStates();
    expect(moved[0]).not.toEqual(states[0]);
    await trainer.restoreWorkerRngStates(states);
    expect(await trainer.workerRngStates()).toEqual(states);
    await expect(trainer.restoreWorkerRngStates([])).rejects.toThrow(/dropout states for 0 worker/);
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
    expect(state.rng.replicas).toHaveLength(1);
    const c = await run('c', { resume: true });
    expect(c.resumedFromEpoch).toBe(1);
    expect(c.history.map((h) => h.val_loss)).toEqual(a.history.map((h) => h.val_loss));
    expect((await weights('c')).equals(await weights('a'))).toBe(true);
    await expect(stat(checkpointDirFor(join(root, 'c')))).rejects.toThrow();
    // One thread is a different, equally valid run (each shard draws its own dropout masks).
    const one = await run('one', { threads: 1 });
    expect(one.metadata.threads).toBe(1);
  }, 120_000);
});
