/**
 * `svhn train --threads 2` through the real CLI: the wasm backend's threaded build starts in
 * Node (our pthread worker shim, src/backend/wasmThreadWorker.ts), the process exits on its
 * own, metadata records 2 threads, and the weights (and predictions) are bit-identical to 1 thread.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTinyCache } from '../train/helpers.js';
import { svhnSync, type CliRun } from '../helpers.js';

const ROOT = resolve(import.meta.dirname, '../..');
let tmp: string;

function train(threads: number): CliRun {
  const args = ['train', '--model', 'optimized', '--data-dir', 'data', '--batch-size', '10', '--epochs', '2', '--seed', '5', '--backend', 'wasm'];
  // A process kept alive by the thread pool would hit the runner's timeout.
  return svhnSync([...args, '--threads', String(threads), '--out', `models/t${threads}`], { cwd: tmp });
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'svhn-cli-threads-'));
  await writeTinyCache(join(tmp, 'data'), { train: 40, val: 20 });
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('svhn train --threads', () => {
  it('runs the threaded wasm build on 2 threads with the same weights as 1 thread', async () => {
    const one = train(1);
    expect(one.code).toBe(0);
    const two = train(2);
    expect(two.stderr).toMatch(/backend: wasm \(2 threads\)|"threads":2/);
    expect(two.code).toBe(0);
    const meta = JSON.parse(await readFile(join(tmp, 'models/t2/metadata.json'), 'utf8'));
    expect(meta.threads).toBe(2);
    const [w1, w2] = await Promise.all([readFile(join(tmp, 'models/t1/weights.bin')), readFile(join(tmp, 'models/t2/weights.bin'))]);
    expect(w2.length).toBe(w1.length);
    expect(w2.equals(w1)).toBe(true);
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
