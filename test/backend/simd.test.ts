/**
 * The wasm SIMD loops (src/backend/kernels/simd.ts) against the cpu backend: MaxPoolGrad's
 * 2x2 path with channels a multiple of 4, on values rounded to quarters (ties inside
 * windows), all-negative windows, odd sizes (cells no window covers), NaN and -Infinity.
 * Routing is exact: the arrays must be equal.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { asWasm } from '../../src/backend/kernels/heap.js';
import { simdKernels } from '../../src/backend/kernels/simd.js';
import { onBoth, randomValues, relDiff, useBackend } from './helpers.js';

const maxPoolGrad = (x: tf.Tensor4D) => {
  const y = tf.maxPool(x, 2, 2, 'valid');
  const dy = tf.tensor(randomValues(77, y.size).map((v) => v + 2), y.shape); // no zeros in dy
  return tf.engine().runKernel(tf.MaxPoolGrad, { dy, input: x, output: y }, {
    filterSize: 2, strides: 2, pad: 'valid',
  } as unknown as tf.NamedAttrMap) as tf.Tensor;
};

describe('wasm SIMD MaxPoolGrad (2x2, stride 2)', () => {
  it('loads on this runtime (else the JS loop runs and these tests prove nothing new)', async () => {
    await useBackend('wasm');
    expect(simdKernels(asWasm(tf.backend()))).toBeDefined();
  });

  const cases: Array<{ shape: [number, number, number, number]; shift: number; special?: boolean }> = [
    { shape: [2, 8, 8, 8], shift: 0 },
    { shape: [2, 8, 6, 4], shift: -5 }, // every window's max < 0
    { shape: [3, 7, 9, 12], shift: -0.5 }, // odd height and width: last row and column get 0
    { shape: [1, 6, 6, 16], shift: 0, special: true },
  ];
  for (const [i, c] of cases.entries()) {
    it(`routes like cpu: ${c.shape.join('x')}, shift ${c.shift}${c.special ? ', NaN and -Infinity' : ''}`, async () => {
      const size = c.shape.reduce((a, b) => a * b, 1);
      const xs = randomValues(700 + i, size, 2).map((v) => Math.round(v * 2) / 4 + c.shift);
      if (c.special) {
        // A window with a NaN first, one all -Infinity, one -Infinity beside a value, one all NaN.
        const at = (y: number, x: number, d: number) => ((y * 6) + x) * 16 + d;
        xs[at(0, 0, 0)] = Number.NaN;
        for (const [y, x] of [[0, 2], [0, 3], [1, 2], [1, 3]]) xs[at(y, x, 1)] = Number.NEGATIVE_INFINITY;
        xs[at(2, 2, 5)] = Number.NEGATIVE_INFINITY;
        for (const [y, x] of [[4, 4], [4, 5], [5, 4], [5, 5]]) xs[at(y, x, 6)] = Number.NaN;
      }
      const { cpu, wasm } = await onBoth(() => maxPoolGrad(tf.tensor4d(xs, c.shape)));
      expect(wasm.shape).toEqual(c.shape);
      expect(Array.from(wasm.values)).toEqual(Array.from(cpu.values));
      expect(Array.from(wasm.values).filter((v) => v !== 0).length).toBeGreaterThan(size / 8);
    });
  }
});

describe('wasm SIMD sums (Sum, Mean over channels-last rows; BatchNorm gradient)', () => {
  // A large offset makes float32 accumulation visibly worse than float64.
  const xs = randomValues(800, 5 * 6 * 7 * 8).map((v) => v + 1000);
  for (const [axes, shape] of [[[0, 1, 2], [5, 6, 7, 8]], [1, [30, 7, 8]], [[1, 2], [5, 6, 56]]] as const) {
    it(`Sum and Mean match cpu: ${shape.join('x')} over ${JSON.stringify(axes)}`, async () => {
      for (const op of [tf.sum, tf.mean]) {
        const { cpu, wasm } = await onBoth(() => op(tf.tensor(xs, [...shape]), axes as number | number[]));
        expect(wasm.shape).toEqual(cpu.shape);
        expect(relDiff(wasm.values, cpu.values)).toBeLessThanOrEqual(1e-6);
      }
    });
  }

  it('BatchNorm gradient through batch statistics matches cpu (8 channels)', async () => {
    const shape: [number, number, number, number] = [3, 5, 4, 8];
    const size = 3 * 5 * 4 * 8;
    const w = randomValues(801, size);
    const { cpu, wasm } = await onBoth(() => {
      const g = tf.grads((x, gamma, beta) => {
        const { mean, variance } = tf.moments(x, [0, 1, 2]);
        return tf.sum(tf.mul(tf.tensor4d(w, shape), tf.batchNorm4d(x as tf.Tensor4D, mean, variance, beta, gamma, 1e-3)));
      });
      const gs = g([tf.tensor4d(randomValues(802, size).map((v) => 3 * v + 1), shape), tf.tensor1d(randomValues(803, 8)),
        tf.tensor1d(randomValues(804, 8))]);
      return tf.concat(gs.map((t) => t.flatten()));
    });
    expect(relDiff(wasm.values, cpu.values)).toBeLessThanOrEqual(1e-5);
    // and each part on its own scale: x (480), gamma (8), beta (8)
    for (const [from, to] of [[0, size], [size, size + 8], [size + 8, size + 16]]) {
      expect(relDiff(wasm.values.slice(from, to), cpu.values.slice(from, to))).toBeLessThanOrEqual(1e-5);
    }
  });
});

describe('wasm SIMD FusedBatchNorm forward (x * k + a)', () => {
  it('matches cpu with per-channel parameters (8 channels)', async () => {
    const shape: [number, number, number, number] = [3, 5, 4, 8];
    const p = (seed: number, positive = false) => tf.tensor1d(randomValues(seed, 8).map((v) => (positive ? Math.abs(v) + 0.1 : v)));
    const { cpu, wasm } = await onBoth(() =>
      tf.batchNorm4d(tf.tensor4d(randomValues(900, 480), shape), p(901), p(902, true), p(903), p(904), 1e-3));
    expect(wasm.shape).toEqual(shape);
    expect(relDiff(wasm.values, cpu.values)).toBeLessThanOrEqual(1e-6);
  });
});

describe('wasm SIMD col2im (Conv2DBackpropInput by matmul, channels a multiple of 4)', () => {
  const cases: Array<{ x: [number, number, number, number]; s: number; pad: 'valid' | 'same' }> = [
    { x: [2, 6, 6, 8], s: 1, pad: 'valid' },
    { x: [2, 7, 7, 8], s: 2, pad: 'same' },
  ];
  for (const [i, c] of cases.entries()) {
    it(`matches cpu: x ${c.x.join('x')}, 3x3, stride ${c.s}, ${c.pad}`, async () => {
      const filterShape: [number, number, number, number] = [3, 3, c.x[3], 5];
      const { cpu, wasm } = await onBoth(() => {
        const y = tf.conv2d(tf.zeros(c.x) as tf.Tensor4D, tf.zeros(filterShape) as tf.Tensor4D, c.s, c.pad);
        const dy = tf.tensor(randomValues(950 + i, y.size), y.shape);
        return tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter: tf.tensor(randomValues(960 + i, 360), filterShape) }, {
          strides: c.s, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined, inputShape: c.x,
        } as unknown as tf.NamedAttrMap) as tf.Tensor;
      });
      expect(wasm.shape).toEqual(c.x);
      expect(relDiff(wasm.values, cpu.values)).toBeLessThanOrEqual(1e-5);
    });
  }
});

describe('wasm SIMD Conv2DBackpropFilter (stride 1, valid: no im2col)', () => {
  // 16- and 4-channel blocks, taps in pairs and an odd one left, tiles of rows and of images.
  const cases: Array<{ x: [number, number, number, number]; k: [number, number]; co: number }> = [
    { x: [3, 10, 9, 5], k: [3, 3], co: 20 }, // 15 taps per filter row, 16 + 4 channels
    { x: [2, 40, 41, 2], k: [2, 3], co: 36 }, // 2 x 16 + 4 channels, rows of an image per tile
    { x: [5, 4, 4, 1], k: [1, 1], co: 4 }, // a single tap, 5 images in one tile
  ];
  for (const [i, c] of cases.entries()) {
    it(`matches cpu: x ${c.x.join('x')}, ${c.k.join('x')}x${c.co}`, async () => {
      const filterShape: [number, number, number, number] = [...c.k, c.x[3], c.co];
      const dyShape: [number, number, number, number] = [c.x[0], c.x[1] - c.k[0] + 1, c.x[2] - c.k[1] + 1, c.co];
      const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
      const { cpu, wasm } = await onBoth(() =>
        tf.engine().runKernel(tf.Conv2DBackpropFilter, {
          x: tf.tensor4d(randomValues(970 + i, size(c.x)), c.x), dy: tf.tensor4d(randomValues(980 + i, size(dyShape)), dyShape),
        }, {
          strides: 1, pad: 'valid', dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape,
        } as unknown as tf.NamedAttrMap) as tf.Tensor);
      expect(wasm.shape).toEqual(filterShape);
      expect(relDiff(wasm.values, cpu.values)).toBeLessThanOrEqual(1e-5);
    });
  }
});

describe('wasm SIMD Conv2DBackpropInput (stride 1, valid: a scatter from dy)', () => {
  // 16- and 4-channel blocks, rows of odd length (a last pixel alone), tiles of rows and of
  // images, an odd number of dy channels, a single tap and a single dy pixel.
  const cases: Array<{ x: [number, number, number, number]; k: [number, number]; co: number }> = [
    { x: [3, 10, 9, 20], k: [3, 3], co: 5 }, // 16 + 4 channels, rows of 7, 3 images in one tile
    { x: [2, 40, 41, 8], k: [2, 3], co: 36 }, // rows of 39, two rows of an image per tile
    { x: [5, 4, 4, 4], k: [1, 1], co: 4 }, // a single tap
    { x: [2, 5, 5, 36], k: [5, 5], co: 3 }, // one dy pixel per image, 2 x 16 + 4 channels
  ];
  for (const [i, c] of cases.entries()) {
    it(`matches cpu: dx ${c.x.join('x')}, ${c.k.join('x')}x${c.co}`, async () => {
      const filterShape: [number, number, number, number] = [...c.k, c.x[3], c.co];
      const dyShape: [number, number, number, number] = [c.x[0], c.x[1] - c.k[0] + 1, c.x[2] - c.k[1] + 1, c.co];
      const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
      const { cpu, wasm } = await onBoth(() =>
        tf.engine().runKernel(tf.Conv2DBackpropInput, {
          dy: tf.tensor4d(randomValues(990 + i, size(dyShape)), dyShape),
          filter: tf.tensor4d(randomValues(995 + i, size(filterShape)), filterShape),
        }, {
          strides: 1, pad: 'valid', dataFormat: 'NHWC', dimRoundingMode: undefined, inputShape: c.x,
        } as unknown as tf.NamedAttrMap) as tf.Tensor);
      expect(wasm.shape).toEqual(c.x);
      expect(relDiff(wasm.values, cpu.values)).toBeLessThanOrEqual(1e-5);
    });
  }
});

describe('fused multiply-add in the convolution loops (relaxed SIMD)', () => {
  // The convolution kernels' three gradients and the forward pass of a model-sized layer on
  // wasm against cpu, in a child process: with FMA (the default) and with SVHN_WASM_FMA=0.
  const script = `
    import * as tf from '@tensorflow/tfjs';
    import '@tensorflow/tfjs-backend-cpu';
    import '@tensorflow/tfjs-backend-wasm';
    const { registerWasmTrainingKernels } = await import(${JSON.stringify(new URL('../../dist/backend/wasmKernels.js', import.meta.url).href)});
    registerWasmTrainingKernels({ threads: 1 });
    const run = async (backend) => {
      await tf.setBackend(backend);
      const x = tf.randomUniform([4, 15, 15, 32], 0, 1, 'float32', 1);
      const w = tf.randomNormal([3, 3, 32, 64], 0, 0.1, 'float32', 2);
      const [y, [dx, dw]] = tf.tidy(() => {
        const f = (a, b) => tf.conv2d(a, b, 1, 'valid').square().sum();
        return [tf.conv2d(x, w, 1, 'valid'), tf.grads(f)([x, w])];
      });
      return [y, dx, dw].map((t) => t.dataSync());
    };
    const cpu = await run('cpu');
    const wasm = await run('wasm');
    const rel = (a, b) => { let d = 0, m = 0; for (let i = 0; i < a.length; i++) { d = Math.max(d, Math.abs(a[i] - b[i])); m = Math.max(m, Math.abs(b[i])); } return d / m; };
    console.log(JSON.stringify({ errors: wasm.map((v, i) => rel(v, cpu[i])), dw: Array.from(wasm[2].slice(0, 64)) }));
  `;
  it('matches cpu to 1e-5 with SVHN_WASM_FMA=1 (the default) and =0, rounding differently', async () => {
    const { spawnSync } = await import('node:child_process');
    const runs = ['1', '0'].map((fma) => {
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
        encoding: 'utf8', env: { ...process.env, SVHN_WASM_FMA: fma }, cwd: new URL('../..', import.meta.url),
      });
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(r.stdout.trim().split('\n').pop()!) as { errors: number[]; dw: number[] };
    });
    for (const { errors } of runs) {
      expect(errors).toHaveLength(3);
      for (const e of errors) expect(e).toBeLessThan(1e-5);
    }
    // A fused multiply-add rounds once: the filter gradients differ in the last bits.
    expect(runs[0]!.dw).not.toEqual(runs[1]!.dw);
  }, 60_000);
});
