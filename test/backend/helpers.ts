/**
 * Shared by the wasm-kernel tests: run the same computation on cpu and on wasm (with
 * svhn's kernels registered), moving data between them as plain arrays.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels } from '../../src/backend/wasmKernels.js';
import { Rng } from '../../src/util/rng.js';

export type Backend = 'cpu' | 'wasm';

export async function useBackend(name: Backend): Promise<void> {
  if (name === 'wasm') registerWasmTrainingKernels({ threads: 1 });
  if (tf.getBackend() !== name) {
    if (!(await tf.setBackend(name))) throw new Error(`backend ${name} did not load`);
  }
  await tf.ready();
}

/** `n` values from N(0,1) with a fixed seed: negative values included on purpose. */
export function randomValues(seed: number, n: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal() * scale;
  return out;
}

/** max |a - b| / max |b|: the error relative to the reference tensor's scale. */
export function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  if (Number.isNaN(diff)) return Number.POSITIVE_INFINITY;
  return scale === 0 ? diff : diff / scale;
}

/**
 * Runs `f` on cpu then on wasm, each time on fresh tensors from the same arrays, and
 * returns both results as arrays with their shapes.
 */
export async function onBoth(
  f: () => tf.Tensor,
): Promise<{ cpu: { shape: number[]; values: Float32Array | Int32Array | Uint8Array }; wasm: { shape: number[]; values: Float32Array | Int32Array | Uint8Array } }> {
  const run = async (name: Backend) => {
    await useBackend(name);
    const before = tf.memory().numTensors;
    const y = tf.tidy(f);
    const result = { shape: y.shape, values: y.dataSync() as Float32Array | Int32Array | Uint8Array };
    y.dispose();
    if (tf.memory().numTensors !== before) throw new Error(`${name}: ${tf.memory().numTensors - before} tensors leaked`);
    return result;
  };
  const cpu = await run('cpu');
  const wasm = await run('wasm');
  return { cpu, wasm };
}
