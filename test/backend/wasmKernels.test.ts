/**
 * Each kernel svhn registers for wasm against the cpu backend's, on seeded random inputs
 * with negative values, several shapes, strides 1 and 2, paddings valid and same.
 * Tolerance: relDiff = max|wasm - cpu| / max|cpu| per tensor; 1e-5 for convolutions and
 * matmuls (float32 sums in a different order), 1e-6 for reductions, exact for routing.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { WASM_TRAINING_KERNELS } from '../../src/backend/wasmKernels.js';
import { onBoth, randomValues, relDiff, useBackend } from './helpers.js';

type Pad = 'valid' | 'same';
const t4 = (seed: number, shape: [number, number, number, number]) =>
  tf.tensor4d(randomValues(seed, shape.reduce((a, b) => a * b, 1)), shape);

describe('registration', () => {
  it('replaces the listed kernels on wasm and is idempotent', async () => {
    await useBackend('wasm');
    const first = WASM_TRAINING_KERNELS.map((k) => tf.getKernel(k, 'wasm')?.kernelFunc);
    await useBackend('wasm'); // registers again: must be a no-op
    const second = WASM_TRAINING_KERNELS.map((k) => tf.getKernel(k, 'wasm')?.kernelFunc);
    expect(first.every((f) => typeof f === 'function')).toBe(true);
    expect(second).toEqual(first);
  });
});

describe('Conv2DBackpropFilter and Conv2DBackpropInput', () => {
  const cases: Array<{ x: [number, number, number, number]; k: number; co: number; s: number; pad: Pad }> = [
    { x: [2, 9, 9, 3], k: 3, co: 4, s: 1, pad: 'valid' },
    { x: [2, 9, 9, 3], k: 3, co: 4, s: 1, pad: 'same' },
    { x: [3, 8, 8, 2], k: 3, co: 5, s: 2, pad: 'valid' },
    { x: [3, 8, 7, 2], k: 3, co: 5, s: 2, pad: 'same' },
    { x: [2, 7, 7, 4], k: 2, co: 3, s: 2, pad: 'valid' },
    { x: [4, 12, 12, 8], k: 3, co: 16, s: 1, pad: 'valid' },
    // 'same' at stride 1: the direct loops over a zero-padded x (padding.ts), both gradients.
    { x: [4, 12, 12, 8], k: 3, co: 16, s: 1, pad: 'same' },
    { x: [2, 9, 8, 4], k: 2, co: 4, s: 1, pad: 'same' }, // uneven: 0 rows before, 1 after
    // The resnet's downsampling: 3x3 and 1x1 at stride 2, 'same' (im2col and the matmul).
    { x: [2, 16, 16, 16], k: 3, co: 32, s: 2, pad: 'same' },
    { x: [2, 8, 8, 16], k: 1, co: 32, s: 2, pad: 'same' },
    // Stride 2 on an odd size: padded on both sides ('same'), or windows that miss the last column ('valid').
    { x: [2, 9, 9, 4], k: 3, co: 8, s: 2, pad: 'same' },
    { x: [2, 9, 10, 4], k: 3, co: 8, s: 2, pad: 'valid' },
  ];
  // The optimized model's three convolutions at batch 8, x non-negative as after a ReLU (sums
  // that do not cancel): filter gradients over 7,200 / 1,352 / 128 pixels per weight.
  const layers: Array<{ x: [number, number, number, number]; co: number }> = [
    { x: [8, 32, 32, 3], co: 32 },
    { x: [8, 15, 15, 32], co: 64 },
    { x: [8, 6, 6, 64], co: 128 },
  ];
  for (const [i, c] of layers.entries()) {
    it(`filter gradient matches cpu on model layer ${i + 1}: x ${c.x.join('x')}, 3x3x${c.co}, stride 1, valid`, async () => {
      const filterShape: [number, number, number, number] = [3, 3, c.x[3], c.co];
      const dyShape: [number, number, number, number] = [c.x[0], c.x[1] - 2, c.x[2] - 2, c.co];
      const xs = randomValues(150 + i, c.x.reduce((a, b) => a * b, 1)).map(Math.abs);
      const { cpu, wasm } = await onBoth(() =>
        tf.engine().runKernel(tf.Conv2DBackpropFilter, { x: tf.tensor4d(xs, c.x), dy: t4(160 + i, dyShape) }, {
          strides: 1, pad: 'valid', dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape,
        } as unknown as tf.NamedAttrMap) as tf.Tensor);
      expect(wasm.shape).toEqual(filterShape);
      expect(relDiff(wasm.values, cpu.values)).toBeLessThanOrEqual(1e-5);
    });
  }
  // Layers 2 and 3 again for the input gradient (simd.ts inputGrad: 16-channel blocks, dy rows
  // of 13 pixels in tiles of rows, and of 4 pixels in tiles of whole images).
  for (const [i, c] of layers.slice(1).entries()) {
    it(`input gradient matches cpu on model layer ${i + 2}: dx ${c.x.join('x')}, 3x3x${c.co}, stride 1, valid`, async () => {
      const filterShape: [number, number, number, number] = [3, 3, c.x[3], c.co];
      const dyShape: [number, number, number, number] = [c.x[0], c.x[1] - 2, c.x[2] - 2, c.co];
      const { cpu, wasm } = await onBoth(() =>
        tf.engine().runKernel(tf.Conv2DBackpropInput, { dy: t4(170 + i, dyShape), filter: t4(180 + i, filterShape) }, {
          strides: 1, pad: 'valid', dataFormat: 'NHWC', dimRoundingMode: undefined, inputShape: c.x,
        } as unknown as tf.NamedAttrMap) as tf.Tensor);
      expect(wasm.shape).toEqual(c.x);
      expect(relDiff(wasm.values, cpu.values)).toBeLessThanOrEqual(1e-5);
    });
  }
  // The resnet's stage-1 convolution at batch 8 ('same', 16 -> 16 channels, 8,192 pixels per
  // filter weight), x non-negative as after a ReLU.
  it('both gradients match cpu on the resnet stage-1 convolution: x 8x32x32x16, 3x3x16, stride 1, same', async () => {
    const xShape: [number, number, number, number] = [8, 32, 32, 16];
    const filterShape: [number, number, number, number] = [3, 3, 16, 16];
    const dyShape: [number, number, number, number] = [8, 32, 32, 16];
    const xs = randomValues(190, xShape.reduce((a, b) => a * b, 1)).map(Math.abs);
    const attrs = { strides: 1, pad: 'same', dataFormat: 'NHWC', dimRoundingMode: undefined };
    const { cpu, wasm } = await onBoth(() => {
      const dy = t4(191, dyShape);
      const dw = tf.engine().runKernel(tf.Conv2DBackpropFilter, { x: tf.tensor4d(xs, xShape), dy }, { ...attrs, filterShape } as unknown as tf.NamedAttrMap) as tf.Tensor;
      const dx = tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter: t4(192, filterShape) }, { ...attrs, inputShape: xShape } as unknown as tf.NamedAttrMap) as tf.Tensor;
      return tf.concat([dw.flatten(), dx.flatten()]);
    });
    const split = 3 * 3 * 16 * 16;
    expect(relDiff(wasm.values.slice(0, split), cpu.values.slice(0, split))).toBeLessThanOrEqual(1e-5);
    expect(relDiff(wasm.values.slice(split), cpu.values.slice(split))).toBeLessThanOrEqual(1e-5);
  });
  for (const [i, c] of cases.entries()) {
    const name = `x ${c.x.join('x')}, ${c.k}x${c.k}, stride ${c.s}, ${c.pad}`;
    const filterShape: [number, number, number, number] = [c.k, c.k, c.x[3], c.co];
    const outShape = () => tf.conv2d(tf.zeros(c.x) as tf.Tensor4D, tf.zeros(filterShape) as tf.Tensor4D, c.s, c.pad).shape as [number, number, number, number];

    it(`filter gradient matches cpu: ${name}`, async () => {
      const { cpu, wasm } = await onBoth(() => {
        const dy = t4(100 + i, outShape());
        return tf.engine().runKernel(tf.Conv2DBackpropFilter, { x: t4(i, c.x), dy }, {
          strides: c.s, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape,
        } as unknown as tf.NamedAttrMap) as tf.Tensor;
      });
      expect(wasm.shape).toEqual(filterShape);
      expect(relDiff(wasm.values, cpu.values)).toBeLessThanOrEqual(1e-5);
    });

    it(`input gradient matches cpu: ${name}`, async () => {
      const { cpu, wasm } = await onBoth(() => {
        const dy = t4(200 + i, outShape());
        return tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter: t4(300 + i, filterShape) }, {
          strides: c.s, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined, inputShape: c.x,
        } as unknown as tf.NamedAttrMap) as tf.Tensor;
      });
      expect(wasm.shape).toEqual(c.x);
      expect(relDiff(wasm.values, cpu.values)).toBeLessThanOrEqual(1e-5);
    });
  }
});

describe('Conv2D (direct, simd.ts convRows: any stride, valid or padded; other cases native)', () => {
  const cases: Array<{ x: [number, number, number, number]; k: [number, number]; co: number; s: number; pad: Pad }> = [
    { x: [8, 32, 32, 3], k: [3, 3], co: 32, s: 1, pad: 'valid' }, // model layer 1 at batch 8
    { x: [8, 15, 15, 32], k: [3, 3], co: 64, s: 1, pad: 'valid' }, // layer 2
    { x: [8, 6, 6, 64], k: [3, 3], co: 128, s: 1, pad: 'valid' }, // layer 3: whole images per tile
    { x: [3, 10, 9, 5], k: [3, 3], co: 20, s: 1, pad: 'valid' }, // 16 + 4 channels, rows of 7
    { x: [2, 40, 41, 2], k: [2, 3], co: 36, s: 1, pad: 'valid' }, // rows of 39, tiles of rows
    { x: [2, 5, 5, 4], k: [5, 5], co: 4, s: 1, pad: 'valid' }, // one output pixel per image
    { x: [2, 9, 9, 3], k: [3, 3], co: 5, s: 1, pad: 'valid' }, // native: co not a multiple of 4
    { x: [2, 9, 9, 3], k: [3, 3], co: 8, s: 1, pad: 'same' }, // over a zero-padded x (padding.ts)
    { x: [2, 32, 32, 16], k: [3, 3], co: 16, s: 1, pad: 'same' }, // the resnet's stage 1
    { x: [2, 8, 7, 4], k: [2, 2], co: 8, s: 1, pad: 'same' }, // uneven padding: 0 before, 1 after
    { x: [2, 16, 16, 16], k: [3, 3], co: 32, s: 2, pad: 'same' }, // stride 2: a row a call
    { x: [2, 16, 16, 16], k: [1, 1], co: 32, s: 2, pad: 'same' }, // the resnet's 1x1 shortcut
    { x: [3, 9, 9, 4], k: [3, 3], co: 8, s: 2, pad: 'same' }, // odd size: padded both sides
    { x: [3, 8, 7, 2], k: [3, 3], co: 8, s: 2, pad: 'valid' },
  ];
  for (const [i, c] of cases.entries()) {
    it(`matches cpu: x ${c.x.join('x')}, ${c.k.join('x')}x${c.co}, stride ${c.s}, ${c.pad}`, async () => {
      const filterShape: [number, number, number, number] = [...c.k, c.x[3], c.co];
      const xs = randomValues(1100 + i, c.x.reduce((a, b) => a * b, 1)).map(Math.abs); // as after a ReLU
      const { cpu, wasm } = await onBoth(() => tf.conv2d(tf.tensor4d(xs, c.x), t4(1120 + i, filterShape), c.s, c.pad));
      expect(wasm.shape).toEqual(cpu.shape);
      expect(relDiff(wasm.values, cpu.values)).toBeLessThanOrEqual(1e-5);
    });
  }
});

describe('MaxPoolGrad', () => {
  const cases: Array<{ x: [number, number, number, number]; f: number; s: number; pad: Pad; shift: number }> = [
    { x: [2, 8, 8, 3], f: 2, s: 2, pad: 'valid', shift: 0 },
    { x: [2, 7, 7, 3], f: 2, s: 2, pad: 'valid', shift: -5 }, // every window's max < 0
    { x: [2, 7, 9, 2], f: 2, s: 2, pad: 'same', shift: -5 },
    { x: [1, 6, 6, 2], f: 3, s: 1, pad: 'valid', shift: -1 }, // overlapping windows
    { x: [1, 6, 6, 2], f: 3, s: 2, pad: 'same', shift: 0 },
  ];
  for (const [i, c] of cases.entries()) {
    it(`routes like cpu: x ${c.x.join('x')}, ${c.f}x${c.f}, stride ${c.s}, ${c.pad}, shift ${c.shift}`, async () => {
      const size = c.x.reduce((a, b) => a * b, 1);
      // Values rounded to quarters give ties inside windows; zeros appear too.
      const xs = randomValues(400 + i, size, 2).map((v) => Math.round(v * 2) / 4 + c.shift);
      const { cpu, wasm } = await onBoth(() => {
        const x = tf.tensor4d(xs, c.x);
        const y = tf.maxPool(x, c.f, c.s, c.pad);
        const dy = t4(500 + i, y.shape as [number, number, number, number]);
        return tf.engine().runKernel(tf.MaxPoolGrad, { dy, input: x, output: y }, {
          filterSize: c.f, strides: c.s, pad: c.pad, dimRoundingMode: undefined,
        } as unknown as tf.NamedAttrMap) as tf.Tensor;
      });
      expect(wasm.shape).toEqual(c.x);
      expect(Array.from(wasm.values)).toEqual(Array.from(cpu.values));
    });
  }

  it('routes a window of equal negative values to its first cell', async () => {
    await useBackend('wasm');
    const dx = tf.tidy(() => {
      const x = tf.fill([1, 2, 2, 1], -3) as tf.Tensor4D;
      const y = tf.maxPool(x, 2, 2, 'valid');
      return tf.engine().runKernel(tf.MaxPoolGrad, { dy: tf.onesLike(y), input: x, output: y }, {
        filterSize: 2, strides: 2, pad: 'valid',
      } as unknown as tf.NamedAttrMap) as tf.Tensor;
    });
    expect(Array.from(dx.dataSync())).toEqual([1, 0, 0, 0]);
    dx.dispose();
  });
});

describe('Sum and Mean', () => {
  const shape: [number, number, number, number] = [4, 6, 5, 7];
  const axesCases: Array<number | number[]> = [[0, 1, 2], 3, 0, [1, 2], [0, 2], [0, 3], [], [0, 1, 2, 3]];
  for (const axes of axesCases) {
    for (const keepDims of [false, true]) {
      it(`match cpu over axes ${JSON.stringify(axes)}, keepDims ${keepDims}`, async () => {
        // A large offset makes float32 accumulation visibly worse than float64.
        const xs = randomValues(600, 4 * 6 * 5 * 7).map((v) => v + 1000);
        for (const op of [tf.sum, tf.mean]) {
          const { cpu, wasm } = await onBoth(() => op(tf.tensor4d(xs, shape), axes, keepDims));
          expect(wasm.shape).toEqual(cpu.shape);
          expect(relDiff(wasm.values, cpu.values)).toBeLessThanOrEqual(1e-6);
        }
      });
    }
  }

  it('sums int32 and bool as int32 exactly', async () => {
    const ints = Array.from({ length: 24 }, (_, i) => (i * 7919) % 23 - 11);
    const { cpu, wasm } = await onBoth(() => tf.sum(tf.tensor3d(ints, [2, 3, 4], 'int32'), [0, 2]));
    expect(wasm.values).toBeInstanceOf(Int32Array);
    expect(Array.from(wasm.values)).toEqual(Array.from(cpu.values));
    const b = await onBoth(() => tf.sum(tf.tensor2d(ints.map((v) => v > 0), [4, 6], 'bool'), 1));
    expect(Array.from(b.wasm.values)).toEqual(Array.from(b.cpu.values));
  });

  it('accumulates 100k terms like cpu (float32 accumulation drifts here)', async () => {
    const xs = randomValues(601, 100_000).map((v) => v * 0.01 + 1);
    const { cpu, wasm } = await onBoth(() => tf.sum(tf.tensor2d(xs, [100_000, 1]), 0));
    expect(relDiff(wasm.values, cpu.values)).toBeLessThanOrEqual(1e-7);
  });
});

describe('Tile', () => {
  const cases: Array<{ shape: number[]; reps: number[] }> = [
    { shape: [1, 1, 1, 5], reps: [3, 4, 2, 1] },
    { shape: [2, 3], reps: [2, 3] },
    { shape: [3], reps: [4] },
    { shape: [2, 1, 3], reps: [1, 5, 2] },
  ];
  for (const c of cases) {
    it(`matches cpu: ${c.shape.join('x')} reps ${c.reps.join('x')}`, async () => {
      const size = c.shape.reduce((a, b) => a * b, 1);
      const xs = randomValues(700, size);
      const f = await onBoth(() => tf.tile(tf.tensor(xs, c.shape), c.reps));
      expect(f.wasm.shape).toEqual(f.cpu.shape);
      expect(Array.from(f.wasm.values)).toEqual(Array.from(f.cpu.values));
      const ints = Array.from(xs, (v) => Math.round(v * 100));
      const n = await onBoth(() => tf.tile(tf.tensor(ints, c.shape, 'int32'), c.reps));
      expect(Array.from(n.wasm.values)).toEqual(Array.from(n.cpu.values));
    });
  }
});

describe('OneHot', () => {
  it('writes real float32 values (and int32), out-of-range indices all off', async () => {
    const idx = [0, 3, 9, 5, -1, 10, 2];
    for (const dtype of ['float32', 'int32'] as const) {
      const { cpu, wasm } = await onBoth(() => tf.oneHot(tf.tensor1d(idx, 'int32'), 10, 2, -1, dtype));
      expect(wasm.shape).toEqual([7, 10]);
      expect(Array.from(wasm.values)).toEqual(Array.from(cpu.values));
    }
  });
});

describe('BatchMatMul', () => {
  for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
    it(`matches cpu with transposeA ${ta}, transposeB ${tb}`, async () => {
      const [m, k, n] = [7, 33, 5];
      const aShape = ta ? [2, k, m] : [2, m, k];
      const bShape = tb ? [2, n, k] : [2, k, n];
      const { cpu, wasm } = await onBoth(() =>
        tf.matMul(tf.tensor3d(randomValues(800, 2 * m * k), aShape as [number, number, number]),
          tf.tensor3d(randomValues(801, 2 * k * n), bShape as [number, number, number]), ta, tb),
      );
      expect(wasm.shape).toEqual([2, m, n]);
      expect(relDiff(wasm.values, cpu.values)).toBeLessThanOrEqual(1e-5);
    });
  }
});

describe('FusedBatchNorm', () => {
  const shape: [number, number, number, number] = [3, 5, 4, 6];
  const size = 3 * 5 * 4 * 6;
  const param = (seed: number, positive = false) =>
    randomValues(seed, 6).map((v) => (positive ? Math.abs(v) + 0.1 : v));
  const cases: Array<{ name: string; f: () => tf.Tensor }> = [
    {
      name: 'per-channel [C] parameters',
      f: () => tf.batchNorm4d(tf.tensor4d(randomValues(1000, size), shape), tf.tensor1d(param(1)), tf.tensor1d(param(2, true)),
        tf.tensor1d(param(3)), tf.tensor1d(param(4)), 1e-3),
    },
    {
      name: 'no offset or scale, [1,1,1,C] moments',
      f: () => tf.batchNorm4d(tf.tensor4d(randomValues(1001, size), shape), tf.tensor4d(param(5), [1, 1, 1, 6]),
        tf.tensor4d(param(6, true), [1, 1, 1, 6]), undefined, undefined, 1e-3),
    },
    {
      name: '2-D input, [1,C] parameters',
      f: () => tf.batchNorm2d(tf.tensor2d(randomValues(1002, 60), [10, 6]), tf.tensor2d(param(7), [1, 6]),
        tf.tensor2d(param(8, true), [1, 6]), tf.tensor2d(param(9), [1, 6]), tf.tensor2d(param(13), [1, 6]), 1e-3),
    },
    {
      name: 'full-shape moments (native fallback)',
      f: () => tf.batchNorm4d(tf.tensor4d(randomValues(1003, size), shape), tf.tensor4d(randomValues(1004, size), shape),
        tf.tensor4d(randomValues(1005, size).map((v) => Math.abs(v) + 0.1), shape), tf.tensor4d(randomValues(1006, size), shape),
        tf.tensor4d(randomValues(1007, size), shape), 1e-3),
    },
  ];
  for (const c of cases) {
    it(`matches cpu: ${c.name}`, async () => {
      const { cpu, wasm } = await onBoth(c.f);
      expect(wasm.shape).toEqual(cpu.shape);
      expect(relDiff(wasm.values, cpu.values)).toBeLessThanOrEqual(1e-6);
    });
  }
});

describe('Identity', () => {
  it('shares the buffer: a clone outlives its source, and both disposed free it', async () => {
    await useBackend('wasm');
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const ids = backend.numDataIds();
    const x = tf.tensor2d([1, -2, 3, 4], [2, 2]);
    const i = tf.tensor1d([7, -8], 'int32');
    const [xc, ic] = [tf.clone(x), tf.clone(i)];
    expect(backend.numDataIds()).toBe(ids + 2); // shared, not copied
    tf.dispose([x, i]);
    expect(Array.from(xc.dataSync())).toEqual([1, -2, 3, 4]);
    expect(Array.from(ic.dataSync())).toEqual([7, -8]);
    expect(ic.dtype).toBe('int32');
    tf.dispose([xc, ic]);
    expect(backend.numDataIds()).toBe(ids);
  });

  it('keeps a variable independent of the tensor it was assigned from', async () => {
    await useBackend('wasm');
    const v = tf.variable(tf.tensor1d([1, 2, 3]));
    const t = tf.tensor1d([4, 5, 6]);
    v.assign(t);
    t.dispose();
    expect(Array.from(v.dataSync())).toEqual([4, 5, 6]);
    v.dispose();
  });
});

describe('Slice', () => {
  const cases: Array<{ shape: number[]; begin: number[]; size: number[]; note: string }> = [
    { shape: [10, 4, 4, 3], begin: [3, 0, 0, 0], size: [4, -1, -1, -1], note: 'a batch range, as model.predict takes them' },
    { shape: [10, 4, 4, 3], begin: [9, 0, 0, 0], size: [1, 4, 4, 3], note: 'the last image' },
    { shape: [6, 5], begin: [2, 1], size: [1, 3], note: 'within one row: contiguous' },
    { shape: [6, 5], begin: [1, 1], size: [3, 2], note: 'a block of columns: native' },
  ];
  for (const [i, c] of cases.entries()) {
    for (const dtype of ['float32', 'int32'] as const) {
      it(`matches cpu exactly, ${dtype}: ${c.note}`, async () => {
        const values = randomValues(1600 + i, c.shape.reduce((a, b) => a * b, 1), 100).map(Math.round);
        const { cpu, wasm } = await onBoth(() => tf.slice(tf.tensor(values, c.shape, dtype), c.begin, c.size));
        expect(wasm.shape).toEqual(cpu.shape);
        expect(Array.from(wasm.values)).toEqual(Array.from(cpu.values));
      });
    }
  }
});
