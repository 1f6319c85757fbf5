/**
 * --threads through the real CLI. train: two data-parallel replicas (src/train/replicas.ts)
 * repeat bit for bit, the process exits on its own with the worker thread, and metadata and
 * the progress line record 2 threads. predict: the wasm backend's threaded build starts in
 * Node (our pthread worker shim, src/backend/wasmThreadWorker.ts) and gives the same rows as
 * 1 thread.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

  it('predicts the same rows on 2 threads as on 1', () => {
    const mat = join(ROOT, 'test/fixtures/mat/small_c_u8.mat');
    const rows = (threads: number) => {
      const r = svhnSync(['predict', mat, '--model', 'models/t1', '--backend', 'wasm', '--threads', String(threads)], { cwd: tmp });
      expect(r.code).toBe(0);
      return r.stdout;
    };
    const one = rows(1);
    expect(one.trim().split('\n')).toHaveLength(1 + 64);
    expect(rows(2)).toBe(one);
  });
});
