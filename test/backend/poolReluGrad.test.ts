/**
 * MaxPoolGrad over a SvhnConv2DBiasRelu output with the ReLU's step and the bias sum folded
 * in (maxPoolGrad.ts routeRelu), and SvhnReluBiasGrad returning them without its pass: the
 * chain MaxPoolGrad -> SvhnReluBiasGrad on wasm against cpu's MaxPoolGrad, dy * step(y) and
 * Sum, on the models' shapes and odd ones, with ties, zeros, infinite gradients and NaN.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { conv2dBiasRelu } from '../../src/models/fusedConv.js';
import { randomValues, relDiff, useBackend } from './helpers.js';

type Shape4 = [number, number, number, number];

interface ChainValues {
  y: Float32Array;
  dx: Float32Array;
  dyR: Float32Array;
  db: Float32Array;
  /** Whether SvhnReluBiasGrad returned MaxPoolGrad's buffer (the shortcut). */
  shared: boolean;
}

const POOL = { filterSize: [2, 2], strides: [2, 2], pad: 'valid' } as unknown as tf.NamedAttrMap;

/** Multiples of 0.5 in [-2, 2]: ties inside windows and ReLU zeros everywhere. */
function quantized(seed: number, n: number): Float32Array {
  return randomValues(seed, n).map((v) => Math.max(-2, Math.min(2, Math.round(v * 2) / 2)));
}

/**
 * On wasm: y = SvhnConv2DBiasRelu(x, identity 1x1, bias) = relu(x + bias) exactly, then
 * MaxPoolGrad(g, y) and SvhnReluBiasGrad(that, y).
 */
async function wasmChain(shape: Shape4, xv: Float32Array, bias: Float32Array, gv: Float32Array): Promise<ChainValues> {
  await useBackend('wasm');
  const before = tf.memory();
  const c = shape[3];
  const eye = new Float32Array(c * c);
  for (let i = 0; i < c; i++) eye[i * c + i] = 1;
  const result = tf.tidy(() => {
    const x = tf.tensor4d(xv, shape);
    const y = tf.engine().runKernel('SvhnConv2DBiasRelu', { x, filter: tf.tensor4d(eye, [1, 1, c, c]), bias: tf.tensor1d(bias) },
      { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [1, 1] }) as tf.Tensor4D;
    const pooled = tf.maxPool(y, 2, 2, 'valid');
    const g = tf.tensor(gv, pooled.shape);
    const dx = tf.engine().runKernel(tf.MaxPoolGrad, { dy: g, input: y, output: pooled }, POOL) as tf.Tensor;
    const [dyR, db] = tf.engine().runKernel('SvhnReluBiasGrad', { dy: dx, y }) as unknown as tf.Tensor[];
    return {
      y: y.dataSync() as Float32Array, dx: dx.dataSync() as Float32Array,
      dyR: dyR!.dataSync() as Float32Array, db: db!.dataSync() as Float32Array, shared: dyR!.dataId === dx.dataId,
    };
  });
  const after = tf.memory();
  expect(after.numTensors).toBe(before.numTensors);
  expect(after.numBytes).toBe(before.numBytes);
  return result;
}

/** On cpu from wasm's y (bit-exact relu(x + bias) anyway): MaxPoolGrad, dy * step(y), Sum. */
async function cpuChain(shape: Shape4, yv: Float32Array, gv: Float32Array): Promise<Omit<ChainValues, 'shared'>> {
  await useBackend('cpu');
  return tf.tidy(() => {
    const y = tf.tensor4d(yv, shape);
    const pooled = tf.maxPool(y, 2, 2, 'valid');
    const dx = tf.engine().runKernel(tf.MaxPoolGrad, { dy: tf.tensor(gv, pooled.shape), input: y, output: pooled }, POOL) as tf.Tensor;
    const dyR = tf.mul(dx, tf.step(y));
    return {
      y: yv, dx: dx.dataSync() as Float32Array,
      dyR: dyR.dataSync() as Float32Array, db: tf.sum(dyR, [0, 1, 2]).dataSync() as Float32Array,
    };
  });
}

/** Equal as float32 values including the sign of zero; any NaN equals any NaN. */
function expectSameValues(a: Float32Array, b: Float32Array, what: string): void {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < b.length; i++) {
    if (Number.isNaN(b[i]!)) expect(a[i], `${what} ${i}`).toBeNaN();
    else if (!Object.is(a[i], b[i])) expect.fail(`${what} ${i}: ${a[i]} vs ${b[i]}`);
  }
}

/** NaN where cpu has NaN, elsewhere within float32 rounding of a float64 sum in another order. */
function expectSameSums(a: Float32Array, b: Float32Array): void {
  expect(Array.from(a, Number.isNaN)).toEqual(Array.from(b, Number.isNaN));
  const finite = (v: Float32Array) => v.filter((_, i) => !Number.isNaN(b[i]!));
  expect(relDiff(finite(a), finite(b))).toBeLessThanOrEqual(1e-6);
}

async function compare(shape: Shape4, xv: Float32Array, gv: Float32Array, bias?: Float32Array): Promise<ChainValues> {
  const b = bias ?? quantized(5, shape[3]).map((v) => v / 4);
  const wasm = await wasmChain(shape, xv, b, gv);
  const cpu = await cpuChain(shape, wasm.y, gv);
  expectSameValues(wasm.dyR, cpu.dyR, 'dyR');
  expectSameSums(wasm.db, cpu.db);
  return wasm;
}

/**
 * Runs `f` with SvhnReluBiasGrad on wasm wrapped: per call, whether its dyR is dy's buffer
 * (the shortcut) rather than a new one (the full pass).
 */
async function spyReluBiasGrad(f: () => Promise<unknown>): Promise<boolean[]> {
  const config = tf.getKernel('SvhnReluBiasGrad', 'wasm')!;
  const calls: boolean[] = [];
  tf.unregisterKernel(config.kernelName, config.backendName);
  tf.registerKernel({
    ...config,
    kernelFunc: (args) => {
      const out = config.kernelFunc(args) as tf.TensorInfo[];
      calls.push(out[0]!.dataId === (args.inputs as { dy: tf.TensorInfo }).dy.dataId);
      return out;
    },
  });
  try {
    await f();
  } finally {
    tf.unregisterKernel(config.kernelName, config.backendName);
    tf.registerKernel(config);
  }
  return calls;
}

function pooledSize([n, h, w, c]: Shape4): number {
  return n * Math.floor(h / 2) * Math.floor(w / 2) * c;
}

describe('MaxPoolGrad over a ReLU output, then SvhnReluBiasGrad without its pass', () => {
  const shapes: Shape4[] = [[2, 30, 30, 32], [3, 13, 13, 64], [2, 7, 6, 8], [2, 6, 9, 4]];
  for (const shape of shapes) {
    it(`[${shape}]: dyR and db as cpu's chain, ties and zeros included, shortcut taken`, async () => {
      const size = tf.util.sizeFromShape(shape);
      const wasm = await compare(shape, quantized(10 + shape[1], size), randomValues(20 + shape[1], pooledSize(shape)));
      expect(wasm.shared).toBe(true);
      expect(wasm.y.some((v) => v === 0)).toBe(true);
    });
  }

  it('infinite and NaN gradients at winners whose y is 0 give NaN as dy * step(y) does', async () => {
    const shape: Shape4 = [2, 6, 6, 8];
    const gv = randomValues(31, pooledSize(shape));
    for (let i = 0; i < gv.length; i += 5) gv[i] = i % 3 === 0 ? Number.POSITIVE_INFINITY : i % 3 === 1 ? Number.NaN : -gv[i]!;
    // Every third window of the input all zeros after the ReLU (bias 0, x <= 0 there).
    const xv = quantized(32, tf.util.sizeFromShape(shape));
    const wasm = await compare(shape, xv, gv, new Float32Array(8));
    expect(wasm.shared).toBe(true);
    expect(Array.from(wasm.dyR).some(Number.isNaN)).toBe(true);
  });

  for (const [where, shape, cell] of [
    ['inside a window', [2, 6, 6, 8], [1, 2, 3, 5]],
    ['in the bottom row outside every window', [2, 7, 7, 8], [1, 6, 2, 3]],
    ['in the right column outside every window', [2, 7, 7, 8], [0, 3, 6, 0]],
  ] as Array<[string, Shape4, Shape4]>) {
    it(`a NaN y ${where}: no shortcut, MaxPoolGrad's plain routing, the full pass's NaNs`, async () => {
      const size = tf.util.sizeFromShape(shape);
      const xv = quantized(40, size);
      const [i, r, col, ch] = cell;
      xv[((i * shape[1] + r) * shape[2] + col) * shape[3] + ch] = Number.NaN;
      const gv = randomValues(41, pooledSize(shape));
      const wasm = await compare(shape, xv, gv);
      expect(wasm.shared).toBe(false);
      // MaxPoolGrad itself is then the plain routing: cpu's, bit for bit.
      const cpu = await cpuChain(shape, wasm.y, gv);
      expectSameValues(wasm.dx, cpu.dx, 'dx');
    });
  }

  it('in a gradient: SvhnReluBiasGrad shares MaxPoolGrad\'s buffer, grads as cpu, numTensors flat', async () => {
    const shape: Shape4 = [2, 10, 10, 3];
    const xv = randomValues(50, tf.util.sizeFromShape(shape));
    const wv = randomValues(51, 3 * 3 * 3 * 16, 0.3);
    const bv = randomValues(52, 16, 0.2);
    const rv = randomValues(53, 2 * 4 * 4 * 16);
    const grads = async (backend: 'cpu' | 'wasm') => {
      await useBackend(backend);
      const before = tf.memory().numTensors;
      const x = tf.tensor4d(xv, shape);
      const w = tf.tensor4d(wv, [3, 3, 3, 16]);
      const b = tf.tensor1d(bv);
      const r = tf.tensor4d(rv, [2, 4, 4, 16]);
      const f = (wt: tf.Tensor, bt: tf.Tensor) =>
        tf.sum(tf.mul(tf.maxPool(conv2dBiasRelu(x, wt as tf.Tensor4D, bt as tf.Tensor1D, [1, 1], 'valid'), 2, 2, 'valid'), r));
      let values: Float32Array[] = [];
      const profile = await tf.profile(() => {
        const [dw, db] = tf.grads(f)([w, b]);
        values = [dw!.dataSync() as Float32Array, db!.dataSync() as Float32Array];
        tf.dispose([dw, db]);
      });
      const kernels = profile.kernelNames;
      tf.dispose([x, w, b, r]);
      expect(tf.memory().numTensors).toBe(before);
      return { kernels, values };
    };
    const cpu = await grads('cpu');
    let wasm = cpu;
    const shortcuts = await spyReluBiasGrad(async () => {
      wasm = await grads('wasm');
    });
    expect(wasm.kernels).toEqual(expect.arrayContaining([tf.MaxPoolGrad, 'SvhnReluBiasGrad']));
    expect(shortcuts).toEqual([true]);
    expect(relDiff(wasm.values[0]!, cpu.values[0]!)).toBeLessThanOrEqual(1e-5);
    expect(relDiff(wasm.values[1]!, cpu.values[1]!)).toBeLessThanOrEqual(1e-5);
  });
});
