/**
 * --threads through the real CLI. train: two data-parallel replicas (src/train/replicas.ts)
 * repeat bit for bit, the process exits on its own with the worker thread, and metadata and
 * the progress line record 2 threads. predict: the wasm backend's threaded build starts in
 * Node (our pthread worker shim, src/backend/wasmThreadWorker.ts) and gives the same rows as
 * 1 thread, for the resnet too (its convolutions' tiles shared by 2 threads, convTeam.ts).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-cpu';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveLayersModel } from '../../src/models/io.js';
import { buildModel } from '../../src/models/registry.js';
import { writeTinyCache } from '../train/helpers.js';
import { svhnSync, type CliRun } from '../helpers.js';

const ROOT = resolve(import.meta.dirname, '../..');
let tmp: string;

function train(threads: number, out: string): CliRun {
  const args = ['train', '--model', 'optimized', '--data-dir', 'data', '--batch-size', '10', '--epochs', '2', '--seed', '5', '--backend', 'wasm'];
  // A process kept alive by a worker thread would hit the runner's timeout.
  return svhnSync([...args, '--threads', String(threads), '--out', `models/${out}`], { cwd: tmp });
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'svhn-cli-threads-'));
  await writeTinyCache(join(tmp, 'data'), { train: 40, val: 20 });
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('svhn train --threads', () => {
  it('trains on 2 replicas that repeat bit for bit, and records 2 threads', async () => {
    const one = train(1, 't1');
    expect(one.code).toBe(0);
    const two = train(2, 't2');
    expect(two.code).toBe(0);
    expect(two.stderr).toMatch(/\[wasm, 2 threads\]/); // the progress line
    expect(two.stdout).toMatch(/backend +wasm \(2 threads\)/);
    const again = train(2, 't2b');
    expect(again.code).toBe(0);
    const meta = JSON.parse(await readFile(join(tmp, 'models/t2/metadata.json'), 'utf8'));
    expect(meta.threads).toBe(2);
    const [w1, w2, w2b] = await Promise.all(['t1', 't2', 't2b'].map((d) => readFile(join(tmp, 'models', d, 'weights.bin'))));
    expect(w2.length).toBe(w1!.length);
    expect(w2b!.equals(w2!)).toBe(true);
  });

  const predictRows = (model: string, threads: number) => {
    const mat = join(ROOT, 'test/fixtures/mat/small_c_u8.mat');
    const r = svhnSync(['predict', mat, '--model', model, '--backend', 'wasm', '--threads', String(threads), '--format', 'jsonl', '--top-k', '10'], { cwd: tmp });
    expect(r.code).toBe(0);
    return r.stdout;
  };

  it('predicts the same rows on 2 threads as on 1', () => {
    const one = predictRows('models/t1', 1);
    expect(one.trim().split('\n')).toHaveLength(64);
    expect(predictRows('models/t1', 2)).toBe(one);
  });

  it('predicts the same rows for the resnet on 2 threads as on 1 (its convolutions split between 2 threads)', async () => {
    await tf.setBackend('cpu');
    const model = buildModel('resnet', { seed: 4 });
    // BatchNorm statistics away from 0 and 1, so that folding them matters.
    let seed = 1;
    for (const layer of model.layers.filter((l) => l.getClassName().endsWith('BatchNormalization'))) {
      layer.setWeights(layer.getWeights().map((w, i) => tf.randomUniform(w.shape, i === 3 ? 0.3 : -0.5, i === 3 ? 2 : 1.5, 'float32', seed++)));
    }
    await saveLayersModel(model, join(tmp, 'models/rn'));
    model.dispose();
    await writeFile(join(tmp, 'models/rn/metadata.json'), JSON.stringify({ name: 'rn', architecture: 'resnet' }));
    const one = predictRows('models/rn', 1);
    expect(new Set(one.trim().split('\n').map((l) => JSON.parse(l).confidence)).size).toBeGreaterThan(32); // image by image
    expect(predictRows('models/rn', 2)).toBe(one);
  });
});
