/**
 * BatchMatMul by the wasm SIMD gemm loops (src/backend/kernels/batchMatMul.ts, simd.ts
 * gemm) against the cpu backend, for all four transpose combinations on shapes with row
 * tails (m not a multiple of 2 or 4), column tails (n a multiple of 4 but not of 16), k = 1
 * and the Dense layers' shapes; also the cases that keep the native path (n and m not
 * multiples of 4, batches of matrices). onBoth checks numTensors stays flat.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { asWasm } from '../../src/backend/kernels/heap.js';
import { simdKernels } from '../../src/backend/kernels/simd.js';
import { onBoth, randomValues, relDiff, useBackend } from './helpers.js';

const TRANSPOSES = [[false, false], [true, false], [false, true], [true, true]] as const;

function product(m: number, k: number, n: number, ta: boolean, tb: boolean, batch: number[] = []) {
  const aShape = [...batch, ...(ta ? [k, m] : [m, k])];
  const bShape = [...batch, ...(tb ? [n, k] : [k, n])];
  const size = (s: number[]) => s.reduce((x, y) => x * y, 1);
  const seed = m * 1000 + k * 10 + n;
  return () => tf.matMul(tf.tensor(randomValues(seed, size(aShape)), aShape), tf.tensor(randomValues(seed + 1, size(bShape)), bShape), ta, tb);
}

describe('BatchMatMul by wasm SIMD gemm', () => {
  it('loads on this runtime (else the native path runs and these tests prove nothing new)', async () => {
    await useBackend('wasm');
    expect(simdKernels(asWasm(tf.backend()))?.gemm16x2).toBeDefined();
  });

  // [m, k, n]: tails in m (1, 3, 5, 33), in n (4, 12, 20, 132), k = 1 and 7, and the models'
  // dense_1 (32 x 2304 x 128, 32 x 512 x 128) and dense_2 (32 x 128 x 10) shapes. With m a
  // multiple of 4, transposeB (and n not a multiple of 4) computes C^T, stored transposed:
  // [20, 9, 5] and [36, 3, 7] give it row tails (n odd) and a 4-column block after 16.
  const shapes: Array<[number, number, number]> = [
    [1, 7, 4], [3, 1, 12], [5, 7, 20], [32, 7, 132], [33, 2304, 128], [32, 2304, 128], [32, 512, 128],
    [4, 7, 4], [12, 33, 36], [32, 128, 10], [20, 9, 5], [36, 3, 7], [7, 9, 5],
  ];
  for (const [m, k, n] of shapes) {
    for (const [ta, tb] of TRANSPOSES) {
      it(`matches cpu: ${m}x${k} by ${k}x${n}, transposeA ${ta}, transposeB ${tb}`, async () => {
        const { cpu, wasm } = await onBoth(product(m, k, n, ta, tb));
        expect(wasm.shape).toEqual([m, n]);
        expect(relDiff(wasm.values, cpu.values)).toBeLessThanOrEqual(1e-5);
      });
    }
  }

  it('keeps batch dims of size 1 and falls back for batches of matrices', async () => {
    for (const batch of [[1], [1, 1], [3]]) {
      const { cpu, wasm } = await onBoth(product(5, 6, 8, true, false, batch));
      expect(wasm.shape).toEqual([...batch, 5, 8]);
      expect(relDiff(wasm.values, cpu.values)).toBeLessThanOrEqual(1e-5);
    }
  });

  it('gives the gradients of a Dense-like product like cpu', async () => {
    const grads = () => {
      const x = tf.tensor2d(randomValues(900, 32 * 2304), [32, 2304]);
      const w = tf.tensor2d(randomValues(901, 2304 * 128, 0.05), [2304, 128]);
      const dy = tf.tensor2d(randomValues(902, 32 * 128), [32, 128]);
      const [dx, dw] = tf.grads((xx: tf.Tensor, ww: tf.Tensor) => tf.matMul(xx, ww))([x, w], dy);
      return tf.concat([dx.flatten(), dw.flatten()]);
    };
    const { cpu, wasm } = await onBoth(grads);
    expect(relDiff(wasm.values, cpu.values)).toBeLessThanOrEqual(1e-5);
  });
});
