/**
 * The convolutions inference runs on wasm (backend/kernels/conv2d.ts): FusedConv2D with its
 * bias and ReLU in the direct loop's epilogue, and SvhnConv2DBiasAddRelu (a residual
 * block's end, models/inference.ts), against the cpu backend's FusedConv2D and its separate
 * Add and Relu. Shapes: the models' layers at small batches, strides 1 and 2, 'valid' and
 * 'same', channel counts off the 16-wide blocks, and one the loop does not take (native).
 * Tolerance as for Conv2D: relDiff 1e-5.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { conv2dBiasAddRelu } from '../../src/models/inference.js';
import { onBoth, randomValues, relDiff, useBackend } from './helpers.js';

type Pad = 'valid' | 'same';
type Shape4 = [number, number, number, number];
const t4 = (seed: number, shape: Shape4) => tf.tensor4d(randomValues(seed, shape.reduce((a, b) => a * b, 1)), shape);

const cases: Array<{ x: Shape4; k: [number, number]; co: number; s: number; pad: Pad }> = [
  { x: [4, 32, 32, 3], k: [3, 3], co: 32, s: 1, pad: 'valid' }, // the notebook models' layer 1
  { x: [4, 6, 6, 64], k: [3, 3], co: 128, s: 1, pad: 'valid' }, // their layer 3: whole images per tile
  { x: [3, 32, 32, 16], k: [3, 3], co: 16, s: 1, pad: 'same' }, // the resnet's stage 1
  { x: [3, 16, 16, 16], k: [3, 3], co: 32, s: 2, pad: 'same' }, // stage 2's first: stride 2
  { x: [3, 16, 16, 16], k: [1, 1], co: 32, s: 2, pad: 'same' }, // its 1x1 shortcut
  { x: [2, 8, 8, 64], k: [3, 3], co: 64, s: 1, pad: 'same' }, // stage 3
  { x: [3, 10, 9, 5], k: [3, 3], co: 20, s: 1, pad: 'same' }, // 16 + 4 channels, odd sizes
  { x: [3, 9, 9, 4], k: [3, 3], co: 8, s: 2, pad: 'same' }, // odd size: padded both sides
  { x: [2, 9, 9, 3], k: [3, 3], co: 6, s: 1, pad: 'same' }, // native: co not a multiple of 4
];

describe('FusedConv2D on wasm: bias and ReLU in the direct loop', () => {
  for (const [i, c] of cases.entries()) {
    const filterShape: Shape4 = [...c.k, c.x[3], c.co];
    for (const variant of ['plain', 'bias', 'bias + relu'] as const) {
      it(`matches cpu (${variant}): x ${c.x.join('x')}, ${c.k.join('x')}x${c.co}, stride ${c.s}, ${c.pad}`, async () => {
        const { cpu, wasm } = await onBoth(() => tf.fused.conv2d({
          x: t4(1200 + i, c.x), filter: t4(1220 + i, filterShape), strides: c.s, pad: c.pad,
          bias: variant === 'plain' ? undefined : tf.tensor1d(randomValues(1240 + i, c.co)),
          activation: variant === 'bias + relu' ? 'relu' : 'linear',
        }));
        expect(wasm.shape).toEqual(cpu.shape);
        expect(relDiff(wasm.values, cpu.values)).toBeLessThanOrEqual(1e-5);
        if (variant === 'bias + relu') expect(Array.from(wasm.values).every((v) => v >= 0)).toBe(true);
      });
    }
  }
});

describe('SvhnConv2DBiasAddRelu: relu(conv + bias + residual)', () => {
  for (const [i, c] of cases.entries()) {
    it(`matches cpu's FusedConv2D, Add and Relu: x ${c.x.join('x')}, ${c.k.join('x')}x${c.co}, stride ${c.s}, ${c.pad}`, async () => {
      const filterShape: Shape4 = [...c.k, c.x[3], c.co];
      const outShape = tf.backend_util.computeConv2DInfo(c.x, filterShape, c.s, 1, c.pad).outShape as Shape4;
      const { cpu, wasm } = await onBoth(() => conv2dBiasAddRelu(
        t4(1300 + i, c.x), t4(1320 + i, filterShape), tf.tensor1d(randomValues(1340 + i, c.co)), t4(1360 + i, outShape),
        [c.s, c.s], c.pad,
      ));
      expect(wasm.shape).toEqual(outShape);
      expect(relDiff(wasm.values, cpu.values)).toBeLessThanOrEqual(1e-5);
      const zeros = Array.from(cpu.values).filter((v) => v === 0).length;
      expect(zeros).toBeGreaterThan(0); // the ReLU cut something
    });
  }

  it('refuses a residual of another shape in one line', async () => {
    await useBackend('wasm');
    const before = tf.memory().numTensors;
    expect(() => tf.tidy(() => conv2dBiasAddRelu(
      tf.zeros([1, 8, 8, 4]), tf.zeros([3, 3, 4, 8]), tf.zeros([8]), tf.zeros([1, 4, 4, 8]), [1, 1], 'same',
    ))).toThrow(/SvhnConv2DBiasAddRelu: residual shape 1,4,4,8 differs from the convolution's 1,8,8,8/);
    expect(tf.memory().numTensors).toBe(before);
  });
});
