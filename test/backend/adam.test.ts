/**
 * The fused Adam step (train/adam.ts, kernel backend/kernels/adam.ts) against tfjs-core's
 * tf.train.adam on the cpu backend: the same gradients for 25 steps on variables whose
 * sizes are and are not multiples of 4 (SIMD body and JS tail) must give bit-identical
 * weights, moments and beta powers, with no tensor left behind.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { ADAM_UPDATE } from '../../src/backend/kernels/adam.js';
import { asWasm } from '../../src/backend/kernels/heap.js';
import { simdKernels } from '../../src/backend/kernels/simd.js';
import { FusedAdamOptimizer } from '../../src/train/adam.js';
import { randomValues, useBackend, type Backend } from './helpers.js';

const SHAPES: number[][] = [[3, 3, 3, 32], [32], [10], [7, 5]];
const STEPS = 25;

async function runAdam(backend: Backend, fused: boolean, shards = false) {
  await useBackend(backend);
  const before = tf.memory().numTensors;
  const vars = SHAPES.map((s, i) => {
    const init = tf.tensor(randomValues(10 + i, s.reduce((a, b) => a * b, 1)), s);
    const v = tf.variable(init, true, `adam_test_${backend}_${fused}_${i}`);
    init.dispose(); // the variable keeps its own reference to the data
    return v;
  });
  const opt = fused ? new FusedAdamOptimizer(0.01) : tf.train.adam(0.01);
  for (let step = 0; step < STEPS; step++) {
    const grads = vars.map((v, i) => ({ name: v.name, tensor: tf.tensor(randomValues(1000 * step + i, v.size, step % 5 === 0 ? 100 : 0.01), v.shape) }));
    if (shards) {
      // Two replicas' gradients, shards of 5 and 3 (train/replicas.ts): first * 5/8 + second * 3/8.
      const second = vars.map((v, i) => tf.tensor(randomValues(5000 * step + i, v.size, 0.01), v.shape));
      (opt as FusedAdamOptimizer).applyShardGradients(grads.map((g, i) => ({ name: g.name, first: g.tensor, second: second[i]! })), 5 / 8, 3 / 8);
      tf.dispose(second);
    } else {
      opt.applyGradients(grads);
    }
    tf.dispose(grads.map((g) => g.tensor));
  }
  const weights = vars.map((v) => Array.from(v.dataSync()));
  const state = await opt.getWeights();
  const moments = state.slice(1).map((w) => Array.from(w.tensor.dataSync()));
  state[0]!.tensor.dispose(); // iterations: a new tensor; the moments are the optimizer's own
  const internals = opt as unknown as { accBeta1: tf.Variable; accBeta2: tf.Variable };
  const betas = [internals.accBeta1.dataSync()[0], internals.accBeta2.dataSync()[0]];
  opt.dispose();
  tf.dispose(vars);
  return { weights, moments, betas, leaked: tf.memory().numTensors - before };
}

describe('fused Adam (SvhnAdamUpdate on wasm)', () => {
  it('runs in wasm SIMD here, with a kernel registered for wasm only', async () => {
    await useBackend('wasm');
    expect(simdKernels(asWasm(tf.backend()))).toBeDefined();
    expect(tf.getKernel(ADAM_UPDATE, 'wasm')).toBeDefined();
    expect(tf.getKernel(ADAM_UPDATE, 'cpu')).toBeUndefined();
  });

  it('gives bit-identical weights, moments and beta powers to tf.train.adam on cpu', async () => {
    const reference = await runAdam('cpu', false);
    const fused = await runAdam('wasm', true);
    expect(fused.leaked).toBe(0);
    expect(reference.leaked).toBe(0);
    expect(fused.betas).toEqual(reference.betas);
    expect(fused.moments.length).toBe(2 * SHAPES.length);
    for (let i = 0; i < SHAPES.length; i++) expect(fused.weights[i]).toEqual(reference.weights[i]);
    for (let i = 0; i < fused.moments.length; i++) expect(fused.moments[i]).toEqual(reference.moments[i]);
    // and the weights moved (25 steps of lr 0.01 from N(0,1) draws)
    const start = randomValues(10, 3);
    expect(Math.abs(fused.weights[0]![0]! - start[0]!)).toBeGreaterThan(0.01);
  });

  it('combines two replicas\' shard gradients in the kernel as tf ops and tfjs-core Adam do on cpu, bit for bit', async () => {
    const reference = await runAdam('cpu', true, true); // the fallback: mul, mul, add, then tf.train.adam's update
    const fused = await runAdam('wasm', true, true);
    expect(fused.leaked).toBe(0);
    expect(reference.leaked).toBe(0);
    for (let i = 0; i < SHAPES.length; i++) expect(fused.weights[i]).toEqual(reference.weights[i]);
    for (let i = 0; i < fused.moments.length; i++) expect(fused.moments[i]).toEqual(reference.moments[i]);
    const single = await runAdam('wasm', true);
    expect(fused.weights[0]).not.toEqual(single.weights[0]); // the second shard counted
  });

  it('falls back to tfjs-core Adam where the kernel is missing (cpu), with the same result', async () => {
    const reference = await runAdam('cpu', false);
    const fallback = await runAdam('cpu', true);
    expect(fallback.weights).toEqual(reference.weights);
    expect(fallback.leaked).toBe(0);
  });
});
