/**
 * The fused relu(conv2d(x, w) + b) (src/models/fusedConv.ts) against the unfused chain
 * tfjs-layers' Conv2D trains with (Conv2D, Add, Relu and their tfjs-core gradients) on the
 * cpu backend: its forward pass and dx, dw, db, on cpu (FusedConv2D and tf ops) and on wasm
 * (svhn's SvhnConv2DBiasRelu and SvhnReluBiasGrad kernels), for the models' conv shapes and
 * for shapes that take the fallbacks; numTensors stays flat. Then the layer: the same
 * gradients as a stock Conv2D, and saved as one.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { randomValues, relDiff, useBackend, type Backend } from '../backend/helpers.js';
import { conv2dBiasRelu, ReluConv2D } from '../../src/models/fusedConv.js';
import { conv2d, LayerSeeds } from '../../src/models/layers.js';

interface Case {
  x: [number, number, number, number];
  co: number;
  stride?: number;
  pad?: 'valid' | 'same';
  note: string;
}

const CASES: Case[] = [
  { x: [3, 12, 12, 3], co: 32, note: 'layer 1: 3 -> 32' },
  { x: [2, 9, 9, 32], co: 64, note: 'layer 2: 32 -> 64' },
  { x: [3, 6, 6, 64], co: 128, note: 'layer 3: 64 -> 128, two images per tile' },
  { x: [1, 26, 26, 8], co: 20, note: '16 + 4 channel blocks, an image in bands of rows' },
  { x: [2, 7, 5, 5], co: 6, note: 'channels not a multiple of 4 (native forward, JS backward)' },
  { x: [2, 8, 8, 4], co: 8, stride: 2, pad: 'same', note: "stride 2, 'same' (native forward)" },
];

type Arrays = Record<'y' | 'dx' | 'dw' | 'db', Float32Array>;

/** y and the gradients of sum(y * g) for one case, fused or the unfused chain, on `backend`. */
async function run(backend: Backend, c: Case, seed: number, fused: boolean): Promise<Arrays> {
  await useBackend(backend);
  const stride = c.stride ?? 1;
  const pad = c.pad ?? 'valid';
  const before = tf.memory().numTensors;
  const x = tf.tensor4d(randomValues(seed, tf.util.sizeFromShape(c.x)), c.x);
  const w = tf.tensor4d(randomValues(seed + 1, 9 * c.x[3] * c.co, 0.3), [3, 3, c.x[3], c.co]);
  // Biases around 0: about half the pre-activations are <= 0, so the ReLU mask matters.
  const b = tf.tensor1d(randomValues(seed + 2, c.co, 0.5));
  const f = (xs: tf.Tensor, ws: tf.Tensor, bs: tf.Tensor) => fused
    ? conv2dBiasRelu(xs as tf.Tensor4D, ws as tf.Tensor4D, bs as tf.Tensor1D, [stride, stride], pad)
    : tf.relu(tf.add(tf.conv2d(xs as tf.Tensor4D, ws as tf.Tensor4D, stride, pad), bs));
  const y = tf.tidy(() => f(x, w, b));
  const g = tf.tensor(randomValues(seed + 3, y.size), y.shape);
  const grads = tf.grads((xs, ws, bs) => tf.sum(tf.mul(f(xs, ws, bs), g)));
  const [dx, dw, db] = grads([x, w, b]);
  const out = { y: y.dataSync(), dx: dx!.dataSync(), dw: dw!.dataSync(), db: db!.dataSync() } as Arrays;
  expect(db!.shape).toEqual([c.co]);
  tf.dispose([x, w, b, y, g, dx!, dw!, db!]);
  expect(tf.memory().numTensors, `${backend} ${fused ? 'fused' : 'unfused'}: tensors leaked`).toBe(before);
  return out;
}

function expectClose(actual: Arrays, reference: Arrays, tolerance: number): void {
  for (const k of ['y', 'dx', 'dw', 'db'] as const) {
    expect(actual[k].length, k).toBe(reference[k].length);
    expect(relDiff(actual[k], reference[k]), k).toBeLessThanOrEqual(tolerance);
  }
}

describe('conv2dBiasRelu: relu(conv2d(x, w) + b) and its gradients against the unfused chain on cpu', () => {
  for (const [i, c] of CASES.entries()) {
    it(`${c.note}: x ${c.x.join('x')} -> ${c.co} channels`, async () => {
      const seed = 100 + 10 * i;
      const reference = await run('cpu', c, seed, false);
      // The reference is not trivial: some pre-activations were cut by the ReLU, some kept.
      const zeros = reference.y.filter((v) => v === 0).length;
      expect(zeros).toBeGreaterThan(0);
      expect(zeros).toBeLessThan(reference.y.length);
      expectClose(await run('cpu', c, seed, true), reference, 1e-5);
      expectClose(await run('wasm', c, seed, true), reference, 1e-5);
    });
  }

  it('wasm: runs the fused kernels, and many steps keep numTensors flat', async () => {
    await useBackend('wasm');
    const x = tf.tensor4d(randomValues(1, 2 * 9 * 9 * 32), [2, 9, 9, 32]);
    const w = tf.variable(tf.tensor4d(randomValues(2, 9 * 32 * 64, 0.1), [3, 3, 32, 64]));
    const b = tf.variable(tf.zeros([64]));
    const step = () => {
      const { value, grads } = tf.variableGrads(() => tf.sum(conv2dBiasRelu(x, w as tf.Tensor4D, b as tf.Tensor1D, [1, 1], 'valid')) as tf.Scalar);
      tf.dispose([value, ...Object.values(grads)]);
    };
    // The fused kernels run, and none of the unfused chain's.
    const profile = await tf.profile(step);
    const kernels = new Set(profile.kernelNames);
    expect(kernels).toContain('SvhnConv2DBiasRelu');
    expect(kernels).toContain('SvhnReluBiasGrad');
    for (const unfused of ['Conv2D', 'Add', 'Relu', 'Step']) expect(kernels).not.toContain(unfused); // (Sum: the loss's)
    // x is data, not a variable: its gradient (a whole Conv2DBackpropInput) is never computed.
    expect(kernels).toContain('Conv2DBackpropFilter');
    expect(kernels).not.toContain('Conv2DBackpropInput');
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) step();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, w, b]);
  });
});

describe('ReluConv2D (the models\' conv layers)', () => {
  /** [y, ...gradients of sum(y * g) for x, kernel, bias] through `layer` in training mode. */
  function layerGradients(layer: tf.layers.Layer, xv: Float32Array, shape: [number, number, number, number]): Float32Array[] {
    return tf.tidy(() => {
      const x = tf.tensor4d(xv, shape);
      const y = layer.apply(x, { training: true }) as tf.Tensor;
      const g = tf.tensor(randomValues(77, y.size), y.shape);
      const vars = layer.trainableWeights.map((v) => v.read() as tf.Variable);
      const { grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.apply(x, { training: true }) as tf.Tensor, g)) as tf.Scalar, vars);
      const dx = tf.grad((xs: tf.Tensor) => tf.sum(tf.mul(layer.apply(xs, { training: true }) as tf.Tensor, g)))(x);
      return [y, dx, ...vars.map((v) => grads[v.name]!)].map((t) => t.dataSync() as Float32Array);
    });
  }

  for (const backend of ['cpu', 'wasm'] as const) {
    it(`${backend}: training output and gradients equal a stock Conv2D's on cpu`, async () => {
      const shape: [number, number, number, number] = [2, 10, 10, 16];
      const xv = randomValues(5, tf.util.sizeFromShape(shape));
      await useBackend('cpu');
      const stock = tf.layers.conv2d({ filters: 32, kernelSize: 3, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) });
      stock.build([null, 10, 10, 16]);
      const weights = stock.getWeights().map((w, i) => (i === 1 ? randomValues(6, w.size, 0.2) : w.dataSync() as Float32Array));
      stock.setWeights(stock.getWeights().map((w, i) => tf.tensor(weights[i]!, w.shape)));
      const reference = layerGradients(stock, xv, shape);
      stock.weights.forEach((v) => v.dispose()); // a layer never called symbolically cannot dispose() itself

      await useBackend(backend);
      const fused = conv2d(new LayerSeeds(1), 'conv2d_test', 32);
      expect(fused).toBeInstanceOf(ReluConv2D);
      fused.build([null, 10, 10, 16]);
      fused.setWeights(fused.getWeights().map((w, i) => tf.tensor(weights[i]!, w.shape)));
      const before = tf.memory().numTensors;
      const actual = layerGradients(fused, xv, shape);
      expect(tf.memory().numTensors).toBe(before);
      expect(actual).toHaveLength(4);
      actual.forEach((a, i) => expect(relDiff(a, reference[i]!), `output ${i}`).toBeLessThanOrEqual(1e-5));
      fused.weights.forEach((v) => v.dispose());
    });
  }

  it('is a Conv2D to serialization: class name, config, weight names and order', async () => {
    await useBackend('cpu');
    const model = tf.sequential();
    model.add(conv2d(new LayerSeeds(1), 'conv2d_1', 8, [8, 8, 3]));
    const json = model.toJSON(undefined, false) as unknown as { config: { layers: Array<{ class_name: string; config: Record<string, unknown> }> } };
    const layer = json.config.layers[0]!;
    expect(layer.class_name).toBe('Conv2D');
    expect(layer.config['activation']).toBe('relu');
    expect(model.weights.map((w) => w.name)).toEqual(['conv2d_1/kernel', 'conv2d_1/bias']);
    // Stock deserialization rebuilds tfjs-layers' own Conv2D.
    const loaded = await tf.models.modelFromJSON({ modelTopology: model.toJSON(undefined, false) as tf.io.ModelJSON['modelTopology'] } as tf.io.ModelJSON);
    expect(loaded.layers[0]!.getClassName()).toBe('Conv2D');
    expect(loaded.layers[0]).not.toBeInstanceOf(ReluConv2D);
    model.dispose();
    loaded.dispose();
  });
});
