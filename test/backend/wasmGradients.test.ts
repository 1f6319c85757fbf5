/**
 * The gradients svhn replaces on wasm (src/backend/kernels/gradients.ts) against the cpu
 * backend, which keeps tfjs-core's own, and against float64 formulas; plus the Cast kernel.
 * dy is never uniform: each loss is sum(w * f(...)) with seeded random w.
 * Tolerance: relDiff = max|wasm - cpu| / max|cpu| per gradient tensor.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { randomValues, relDiff, useBackend, type Backend } from './helpers.js';

type Arrays = Float32Array[];

/** Runs `f` (gradients as a list) on one backend: plain arrays out, no tensor leaked. */
async function run(backend: Backend, f: () => tf.Tensor[]): Promise<Arrays> {
  await useBackend(backend);
  const before = tf.memory().numTensors;
  const out = tf.tidy(f);
  const values = out.map((t) => t.dataSync() as Float32Array);
  tf.dispose(out);
  if (tf.memory().numTensors !== before) throw new Error(`${backend}: ${tf.memory().numTensors - before} tensors leaked`);
  return values;
}

async function onBoth(f: () => tf.Tensor[]): Promise<{ cpu: Arrays; wasm: Arrays }> {
  return { cpu: await run('cpu', f), wasm: await run('wasm', f) };
}

const SHAPE: [number, number, number, number] = [3, 5, 4, 6];
const SIZE = 3 * 5 * 4 * 6;
const C = 6;
const param = (seed: number, positive = false) => randomValues(seed, C).map((v) => (positive ? Math.abs(v) + 0.1 : v));

describe('FusedBatchNorm gradient', () => {
  const xs = randomValues(2000, SIZE);
  const w = randomValues(2001, SIZE);
  const [mean, variance, offset, scale] = [param(1), param(2, true), param(3), param(4)];
  const eps = 1e-3;

  it('matches cpu and float64 formulas for x, mean, variance, offset, scale', async () => {
    const f = () => {
      const g = tf.grads((x, m, v, o, s) =>
        tf.sum(tf.mul(tf.tensor4d(w, SHAPE), tf.batchNorm4d(x as tf.Tensor4D, m, v, o, s, eps))));
      return g([tf.tensor4d(xs, SHAPE), tf.tensor1d(mean), tf.tensor1d(variance), tf.tensor1d(offset), tf.tensor1d(scale)]);
    };
    const { cpu, wasm } = await onBoth(f);
    // float64: r = 1/sqrt(v + eps); dx = w*s*r; dMean = -s*r*sum(w); dVar = -s*r^3/2 * sum(w*(x-m));
    // dOffset = sum(w); dScale = r * sum(w*(x-m)).
    const r = Array.from(variance, (v) => 1 / Math.sqrt(v + eps));
    const sw = new Array<number>(C).fill(0);
    const swd = new Array<number>(C).fill(0);
    const dx = new Float64Array(SIZE);
    for (let i = 0; i < SIZE; i++) {
      const c = i % C;
      sw[c] += w[i];
      swd[c] += w[i] * (xs[i] - mean[c]);
      dx[i] = w[i] * scale[c] * r[c];
    }
    const ref = [
      dx,
      sw.map((s, c) => -scale[c] * r[c] * s),
      swd.map((s, c) => -0.5 * scale[c] * r[c] ** 3 * s),
      sw,
      swd.map((s, c) => r[c] * s),
    ];
    ref.forEach((want, i) => {
      expect(relDiff(cpu[i], want), `cpu grad ${i}`).toBeLessThanOrEqual(1e-5);
      expect(relDiff(wasm[i], cpu[i]), `wasm grad ${i}`).toBeLessThanOrEqual(1e-5);
    });
  });

  // (tfjs-core 4.22 cannot take the gradient of batchNorm without a scale on any backend.)
  it('matches cpu on 2-D input', async () => {
    const { cpu, wasm } = await onBoth(() => {
      const g = tf.grads((x, m, v, o, s) =>
        tf.sum(tf.mul(tf.tensor2d(w.slice(0, 60), [10, C]), tf.batchNorm2d(x as tf.Tensor2D, m, v, o, s, eps))));
      return g([tf.tensor2d(xs.slice(0, 60), [10, C]), tf.tensor1d(mean), tf.tensor1d(variance), tf.tensor1d(offset), tf.tensor1d(scale)]);
    });
    expect(wasm.length).toBe(5);
    wasm.forEach((g, i) => expect(relDiff(g, cpu[i]), `grad ${i}`).toBeLessThanOrEqual(1e-5));
  });

  it('falls back to tfjs-core for full-shape parameters', async () => {
    const full = (seed: number, positive = false) =>
      tf.tensor4d(randomValues(seed, SIZE).map((v) => (positive ? Math.abs(v) + 0.1 : v)), SHAPE);
    const { cpu, wasm } = await onBoth(() => {
      const g = tf.grads((x, m, v, o, s) => tf.sum(tf.mul(tf.tensor4d(w, SHAPE), tf.batchNorm4d(x as tf.Tensor4D, m, v, o, s, eps))));
      return g([tf.tensor4d(xs, SHAPE), full(2010), full(2011, true), full(2012), full(2013)]);
    });
    expect(wasm.length).toBe(5);
    wasm.forEach((g, i) => expect(relDiff(g, cpu[i]), `grad ${i}`).toBeLessThanOrEqual(1e-5));
  });

  it('matches cpu through batch statistics (tf.moments then batchNorm, as BatchNormalization trains)', async () => {
    const { cpu, wasm } = await onBoth(() => {
      const g = tf.grads((x, gamma, beta) => {
        const { mean: m, variance: v } = tf.moments(x, [0, 1, 2]);
        return tf.sum(tf.mul(tf.tensor4d(w, SHAPE), tf.batchNorm4d(x as tf.Tensor4D, m, v, beta, gamma, eps)));
      });
      return g([tf.tensor4d(xs.map((v) => 3 * v + 1), SHAPE), tf.tensor1d(scale), tf.tensor1d(offset)]);
    });
    let largest = 0;
    for (const v of cpu[0]) largest = Math.max(largest, Math.abs(v));
    expect(largest).toBeGreaterThan(1e-2); // dx is not trivially zero
    wasm.forEach((g, i) => expect(relDiff(g, cpu[i]), `grad ${i}`).toBeLessThanOrEqual(1e-5));
  });
});

describe('Mean and Sum gradients', () => {
  const shape = [3, 4, 5, 2];
  const xs = randomValues(2100, 120);
  for (const op of ['mean', 'sum'] as const) {
    for (const [axis, keepDims] of [[[1, 2], false], [[0, 3], true], [null, false], [2, false]] as const) {
      it(`${op} over ${JSON.stringify(axis)}, keepDims ${keepDims}: the same float32 values as cpu`, async () => {
        const { cpu, wasm } = await onBoth(() => {
          const g = tf.grad((x) => {
            const y = op === 'mean' ? tf.mean(x, axis as number[] | null, keepDims) : tf.sum(x, axis as number[] | null, keepDims);
            return tf.sum(tf.mul(y, tf.tensor(randomValues(2101, y.size), y.shape)));
          });
          return [g(tf.tensor(xs, shape))];
        });
        expect(Array.from(wasm[0])).toEqual(Array.from(cpu[0]));
        if (axis !== null) expect(new Set(wasm[0]).size).toBeGreaterThan(1); // dy varies
      });
    }
  }
});

describe('Relu and Square gradients', () => {
  // 4*5*3 + 3 = 63 elements: not a multiple of 4, so the scalar tail runs too.
  const xs = randomValues(2200, 63).map((v, i) => (i % 7 === 0 ? 0 : v));
  xs[5] = Number.NaN;
  xs[61] = Number.NaN; // in the tail
  const w = randomValues(2201, 63);
  for (const op of ['relu', 'square'] as const) {
    it(`${op}: the same float32 values as cpu (zeros, negatives, NaN, a tail)`, async () => {
      const { cpu, wasm } = await onBoth(() => {
        const g = tf.grad((x) => tf.sum(tf.mul(tf.tensor1d(w), op === 'relu' ? tf.relu(x) : tf.square(x))));
        return [g(tf.tensor1d(xs))];
      });
      expect(Array.from(wasm[0])).toEqual(Array.from(cpu[0]));
      expect(wasm[0].filter((v) => v !== 0 && !Number.isNaN(v)).length).toBeGreaterThan(20);
    });
  }
});

describe('Cast', () => {
  it('shares the buffer for the same dtype and converts like cpu otherwise (bool: x != 0)', async () => {
    await useBackend('wasm');
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const ids = backend.numDataIds();
    const x = tf.tensor1d([1.5, -2.5, 0, 3.75]);
    const same = tf.cast(x, 'float32');
    expect(backend.numDataIds()).toBe(ids + 1); // shared, not copied
    x.dispose();
    expect(Array.from(same.dataSync())).toEqual([1.5, -2.5, 0, 3.75]);
    same.dispose();
    expect(backend.numDataIds()).toBe(ids);

    const values = [1.5, -2.5, 0, 3.75, -0.25, 256, Number.NaN];
    const conv = async (b: Backend) => {
      await useBackend(b);
      return tf.tidy(() => {
        const f = tf.tensor1d(values);
        return [tf.cast(f, 'int32'), tf.cast(f, 'bool'), tf.cast(tf.cast(f, 'int32'), 'float32')].map((t) => [t.dtype, Array.from(t.dataSync())]);
      });
    };
    expect(await conv('wasm')).toEqual(await conv('cpu'));
  });
});
