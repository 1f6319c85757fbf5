/**
 * Adam's update for one variable as one kernel ('SvhnAdamUpdate', wasm only). tfjs-core's
 * AdamOptimizer spends 12 broadcast ops per variable per step (mul, add, square, div,
 * sqrt, ...): ~300 small kernels and ~12 ms a step on the optimized model, for 316k
 * parameters. This is one SIMD pass per variable (simd/adam.c adamUpdate) with the same float32
 * operations in the same order, so the values are bit-identical (test/backend/adam.test.ts).
 *
 * inputs: value, m, v, g (float32, one shape), and g2 with two replicas' shard gradients
 * (train/replicas.ts): then the gradient is g * gScale + g2 * g2Scale, in the same pass;
 * attrs: AdamUpdateAttrs. outputs: [value', m', v'], new tensors (the optimizer assigns them
 * to its variables).
 */
import * as tf from '@tensorflow/tfjs';
import { asWasm, f32 } from './heap.js';
import { simdKernels } from './simd.js';

export const ADAM_UPDATE = 'SvhnAdamUpdate';

export interface AdamUpdateAttrs {
  beta1: number;
  beta2: number;
  /** 1 - beta1^t and 1 - beta2^t as float32, as the optimizer computes them. */
  oneMinusAccBeta1: number;
  oneMinusAccBeta2: number;
  epsilon: number;
  learningRate: number;
  /** With input g2: the gradient is g * gScale + g2 * g2Scale. */
  gScale?: number;
  g2Scale?: number;
}

/** The scalars as tfjs-core rounds them: each a float32 tensor made from a JS number. */
export function adamScalars(a: AdamUpdateAttrs) {
  const f = Math.fround;
  return {
    b1: f(a.beta1), c1: f(1 - a.beta1), b2: f(a.beta2), c2: f(1 - a.beta2),
    oma1: f(a.oneMinusAccBeta1), oma2: f(a.oneMinusAccBeta2), eps: f(a.epsilon), negLr: f(-a.learningRate),
    w: f(a.gScale ?? 1), w2: f(a.g2Scale ?? 0),
  };
}

/**
 * Elements [from, to) in JS, every operation rounded to float32 like a separate kernel;
 * with g2, the gradient is g * s.w + g2 * s.w2.
 */
export function adamUpdateJs(
  s: ReturnType<typeof adamScalars>,
  value: Float32Array, m: Float32Array, v: Float32Array, g: Float32Array, g2: Float32Array | undefined,
  outValue: Float32Array, outM: Float32Array, outV: Float32Array, from: number, to: number,
): void {
  const f = Math.fround;
  for (let i = from; i < to; i++) {
    const gi = g2 ? f(f(g[i]! * s.w) + f(g2[i]! * s.w2)) : g[i]!;
    const mi = f(f(m[i]! * s.b1) + f(gi * s.c1));
    const vi = f(f(v[i]! * s.b2) + f(f(gi * gi) * s.c2));
    outM[i] = mi;
    outV[i] = vi;
    const step = f(f(f(mi / s.oma1) / f(f(Math.sqrt(f(vi / s.oma2))) + s.eps)) * s.negLr);
    outValue[i] = f(step + value[i]!);
  }
}

function adamUpdate({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo[] {
  const b = asWasm(backend);
  const { value, m, v, g, g2 } = inputs as Record<'value' | 'm' | 'v' | 'g', tf.TensorInfo> & { g2?: tf.TensorInfo };
  const s = adamScalars(attrs as unknown as AdamUpdateAttrs);
  // Allocate every output before taking heap views (an allocation may grow the heap).
  const outs = [value, m, v].map((t) => b.makeOutput(t.shape.slice(), 'float32'));
  const [ov, om, ovv] = outs as [tf.TensorInfo, tf.TensorInfo, tf.TensorInfo];
  const views = [value, m, v, g, ov, om, ovv].map((t) => f32(b, t));
  const [xValue, xM, xV, xG, yValue, yM, yV] = views as [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array];
  const xG2 = g2 ? f32(b, g2) : undefined;
  const n = xValue.length;
  for (const t of [...views, ...(xG2 ? [xG2] : [])]) if (t.length !== n) throw new Error(`wasm ${ADAM_UPDATE}: value, m, v and g must have one size`);
  const simd = simdKernels(b);
  const vectorised = simd ? n - (n % 4) : 0;
  if (simd && vectorised > 0) {
    const scalars = [s.b1, s.c1, s.b2, s.c2, s.oma1, s.oma2, s.eps, s.negLr] as const;
    if (xG2) {
      simd.adamUpdate2(
        xValue.byteOffset, xM.byteOffset, xV.byteOffset, xG.byteOffset, xG2.byteOffset, yValue.byteOffset, yM.byteOffset, yV.byteOffset,
        vectorised * 4, s.w, s.w2, ...scalars,
      );
    } else {
      simd.adamUpdate(xValue.byteOffset, xM.byteOffset, xV.byteOffset, xG.byteOffset, yValue.byteOffset, yM.byteOffset, yV.byteOffset, vectorised * 4, ...scalars);
    }
  }
  adamUpdateJs(s, xValue, xM, xV, xG, xG2, yValue, yM, yV, vectorised, n);
  return outs;
}

export const adamUpdateConfig: tf.KernelConfig = {
  kernelName: ADAM_UPDATE,
  backendName: 'wasm',
  kernelFunc: adamUpdate as unknown as tf.KernelFunc,
};
