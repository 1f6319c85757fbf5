/**
 * The two wasm kernels of the conv layers' fused bias + ReLU (models/fusedConv.ts), run
 * directly against the cpu backend's separate ops, with the values where the ReLU's edges
 * are: zeros, -0, negatives, NaN; channels a multiple of 4 (SIMD) and not (JS / native).
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { onBoth, randomValues, relDiff } from './helpers.js';

/** Normal values with every 7th a zero, every 11th -0 and every 13th NaN. */
function edgy(seed: number, n: number): Float32Array {
  const v = randomValues(seed, n);
  for (let i = 0; i < n; i++) {
    if (i % 7 === 3) v[i] = 0;
    if (i % 11 === 5) v[i] = -0;
    if (i % 13 === 6) v[i] = Number.NaN;
  }
  return v;
}

/** Equal as float32 bit patterns, except that any NaN equals any NaN. */
function expectSameValues(a: ArrayLike<number>, b: ArrayLike<number>): void {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < b.length; i++) {
    if (Number.isNaN(b[i])) expect(a[i], `element ${i}`).toBeNaN();
    else expect(Object.is(a[i], b[i]) || (a[i] === 0 && b[i] === 0), `element ${i}: ${a[i]} vs ${b[i]}`).toBe(true);
  }
}

describe('SvhnReluBiasGrad: dy * step(y) and its per-channel sum in one pass', () => {
  for (const channels of [8, 6]) {
    it(`${channels} channels: dyR as Relu's gradient (mul by step, NaN kept), db as Sum over N, H, W`, async () => {
      const shape = [3, 5, 4, channels];
      const size = tf.util.sizeFromShape(shape);
      const dyv = randomValues(40 + channels, size);
      // y is a ReLU's output: >= 0 or NaN.
      const yv = edgy(50 + channels, size).map((v) => (v < 0 ? 0 : v));
      const both = async (part: 0 | 1) => onBoth(() => {
        const dy = tf.tensor(dyv, shape);
        const y = tf.tensor(yv, shape);
        if (tf.getBackend() === 'cpu') {
          const dyR = tf.mul(dy, tf.step(y));
          return part === 0 ? dyR : tf.sum(dyR, [0, 1, 2]);
        }
        const out = tf.engine().runKernel('SvhnReluBiasGrad', { dy, y }) as unknown as tf.Tensor[];
        return out[part]!;
      });
      const dyR = await both(0);
      expectSameValues(dyR.wasm.values, dyR.cpu.values);
      const db = await both(1);
      expect(db.wasm.shape).toEqual([channels]);
      expectSameValues(db.wasm.values, db.cpu.values);
    });
  }

  it('the bias gradient is finite and matches cpu where no y is NaN', async () => {
    const shape = [2, 9, 9, 32];
    const size = tf.util.sizeFromShape(shape);
    const { cpu, wasm } = await onBoth(() => {
      const dy = tf.tensor(randomValues(61, size), shape);
      const y = tf.relu(tf.tensor(randomValues(62, size), shape));
      if (tf.getBackend() === 'cpu') return tf.sum(tf.mul(dy, tf.step(y)), [0, 1, 2]);
      return (tf.engine().runKernel('SvhnReluBiasGrad', { dy, y }) as unknown as tf.Tensor[])[1]!;
    });
    expect(wasm.values.every(Number.isFinite)).toBe(true);
    expect(relDiff(wasm.values, cpu.values)).toBeLessThanOrEqual(1e-6);
  });
});

describe('SvhnConv2DBiasRelu: the epilogue relu(y + b)', () => {
  it('maps NaN to NaN and -0 to +0 like the separate Add and Relu (1x1 filter of ones: y = x)', async () => {
    // 1x1 convolution by the identity, so the output is x + b through the epilogue.
    const c = 8;
    const shape = [2, 3, 5, c];
    const xv = edgy(70, tf.util.sizeFromShape(shape));
    const eye = new Float32Array(c * c);
    for (let i = 0; i < c; i++) eye[i * c + i] = 1;
    const bv = Float32Array.from([0, -0, 0.5, -0.5, 1, -1, 2, 0]);
    const { cpu, wasm } = await onBoth(() => {
      const x = tf.tensor4d(xv, shape as [number, number, number, number]);
      const w = tf.tensor4d(eye, [1, 1, c, c]);
      const b = tf.tensor1d(bv);
      if (tf.getBackend() === 'cpu') return tf.relu(tf.add(tf.conv2d(x, w, 1, 'valid'), b));
      return tf.engine().runKernel('SvhnConv2DBiasRelu', { x, filter: w, bias: b },
        { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [1, 1] }) as tf.Tensor;
    });
    expectSameValues(wasm.values, cpu.values);
    expect(Array.from(wasm.values).filter(Number.isNaN).length).toBeGreaterThan(0);
    expect(Array.from(wasm.values).some((v) => Object.is(v, -0))).toBe(false);
  });
});
