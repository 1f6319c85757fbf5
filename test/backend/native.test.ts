/**
 * The native kernels (native/, src/backend/kernels/native.ts) against the wasm kernels they
 * replace, bit for bit: each native variant this CPU runs (AVX-512 and AVX2, fused and
 * plain) against the wasm module that computes the same way (FMA, or multiply then add),
 * on random inputs over both kinds of heap (a plain and a shared WebAssembly.Memory), on
 * shapes that leave every remainder of the register blocks (8, 4, 2, 1 pixels, taps or
 * rows), one pixel, odd channel counts, kh 1 and 3, several images, strided pixels and
 * C stored transposed. Then three training steps of the resnet, whose losses and weights
 * must come out the same with and without the addon. Skipped where the addon is not built
 * (`npm install`, or `node scripts/build-native.js`).
 */
import * as tf from '@tensorflow/tfjs';
import { afterEach, describe, expect, it } from 'vitest';
import { NATIVE_VARIANTS, bindNativeKernels, nativeAddon, type NativeSimdKernels } from '../../src/backend/kernels/native.js';
import { asWasm } from '../../src/backend/kernels/heap.js';
import { enableRelaxedSimd, simdKernels, simdKernelsOn, type SimdKernels } from '../../src/backend/kernels/simd.js';
import { buildModel } from '../../src/models/registry.js';
import { Rng } from '../../src/util/rng.js';
import { useBackend } from './helpers.js';

const addon = nativeAddon();
const variants = NATIVE_VARIANTS.filter((v) => addon?.[v]);
/** Where the addon is not built, each describe says so in its name and skips. */
const skipped = (name: string) => (addon ? name : `${name} (skipped: the native addon is not built; run \`node scripts/build-native.js\`)`);

const KB = 1024;
/** Heap layout: inputs first (up to 4 tensors of 512 KB), then two copies of the output. */
const INPUT = [0, 512 * KB, 1024 * KB, 1536 * KB];
const OUT_WASM = 2048 * KB;
const OUT_NATIVE = 2304 * KB;
const OUT_BYTES = 256 * KB;
const PAGES = (OUT_NATIVE + OUT_BYTES) / 65536;

type Memory = { buffer: ArrayBufferLike; grow(pages: number): number };

/** WebAssembly.Memory (the global, which the ES2022 lib this project compiles with does not declare). */
const WasmMemory = (globalThis as unknown as { WebAssembly: { Memory: new (d: object) => Memory } }).WebAssembly.Memory;

function newMemory(shared: boolean): Memory {
  return new WasmMemory(shared ? { initial: PAGES, maximum: 4 * PAGES, shared: true } : { initial: PAGES });
}

const savedEnv = { ...process.env };
afterEach(() => {
  process.env = { ...savedEnv };
});

/** The wasm kernels alone (SVHN_NATIVE_KERNELS=0), from the FMA module or the plain one. */
function wasmOnly(memory: Memory, fused: boolean): SimdKernels {
  process.env['SVHN_NATIVE_KERNELS'] = '0';
  process.env['SVHN_WASM_FMA'] = fused ? '1' : '0';
  const k = simdKernelsOn(memory);
  process.env = { ...savedEnv };
  if (!k) throw new Error('no wasm SIMD kernels on this runtime');
  return k;
}

/** N(0, 1) values for inputs and output, drawn once; each case takes them from its own start. */
const POOL = (() => {
  const rng = new Rng(23);
  return Float32Array.from({ length: (OUT_WASM + OUT_BYTES) / 4 + 4096 }, () => rng.normal());
})();

/** Random inputs, and the same random values in both output copies (the gradient kernels add into theirs). */
function fill(memory: Memory, seed: number): void {
  const start = (seed * 97) % 4096;
  new Float32Array(memory.buffer, 0, (OUT_WASM + OUT_BYTES) / 4).set(POOL.subarray(start, start + (OUT_WASM + OUT_BYTES) / 4));
  new Float32Array(memory.buffer, OUT_NATIVE, OUT_BYTES / 4).set(new Float32Array(memory.buffer, OUT_WASM, OUT_BYTES / 4));
}

/** One kernel call in both versions: `call(k, out)` with out the output's byte offset. */
type Call = (k: SimdKernels | NativeSimdKernels, out: number) => void;

interface Case {
  name: string;
  call: Call;
}

/** Runs `c` in both versions on the same inputs: every output value the same bits, and some written. */
function expectSameBits(memory: Memory, wasm: SimdKernels, native: NativeSimdKernels, c: Case, seed: number): void {
  fill(memory, seed);
  const before = new Uint32Array(memory.buffer, OUT_WASM, OUT_BYTES / 4).slice();
  c.call(wasm, OUT_WASM);
  c.call(native, OUT_NATIVE);
  const fromWasm = new Uint32Array(memory.buffer, OUT_WASM, OUT_BYTES / 4);
  const fromNative = new Uint32Array(memory.buffer, OUT_NATIVE, OUT_BYTES / 4);
  let mismatches = 0;
  let written = 0;
  for (let i = 0; i < fromWasm.length; i++) {
    if (fromWasm[i] !== fromNative[i]) mismatches++;
    if (fromWasm[i] !== before[i]) written++;
  }
  expect(written, `${c.name}: the kernel wrote nothing`).toBeGreaterThan(0);
  expect(mismatches, `${c.name}: values that differ`).toBe(0);
}

/** NHWC convolution geometry, one 16-channel block at channel `k0` of co. */
interface Conv {
  imgs: number; h: number; w: number; ci: number; co: number; kh: number; kw: number; sh?: number; sw?: number; k0?: number;
}

function outSize(g: Conv): { oh: number; ow: number } {
  const sh = g.sh ?? 1;
  const sw = g.sw ?? 1;
  return { oh: Math.floor((g.h - g.kh) / sh) + 1, ow: Math.floor((g.w - g.kw) / sw) + 1 };
}

const convLabel = (g: Conv) =>
  `${g.imgs}x${g.h}x${g.w}x${g.ci} -> ${g.co}, ${g.kh}x${g.kw}${(g.sh ?? 1) > 1 ? `, stride ${g.sh}x${g.sw}` : ''}`;

/** Conv2D by convRows16x2: a whole tile, or one output row a call where strided (as convTiles.ts). */
function convRowsCase(g: Conv): Case {
  const { oh, ow } = outSize(g);
  const { imgs, h, w, ci, co, kh, kw } = g;
  const sw = g.sw ?? 1;
  const k0 = g.k0 ?? 0;
  const xSteps = [ci * 4, w * ci * 4, h * w * ci * 4] as const;
  return {
    name: `convRows16x2 ${convLabel(g)}`,
    call: (k, out) => {
      if ((g.sh ?? 1) === 1 && sw === 1) {
        k.convRows16x2(INPUT[0], INPUT[1] + k0 * 4, out + k0 * 4, kw * ci * 4, co * 4, imgs, oh, ow, ...xSteps, co * 4, kh);
      } else {
        for (let i = 0; i < imgs; i++) {
          for (let y = 0; y < oh; y++) {
            const xRow = INPUT[0] + (i * h + y * (g.sh ?? 1)) * w * ci * 4;
            const yRow = out + ((i * oh + y) * ow * co + k0) * 4;
            k.convRows16x2(xRow, INPUT[1] + k0 * 4, yRow, kw * ci * 4, co * 4, 1, 1, ow, sw * ci * 4, xSteps[1], xSteps[2], co * 4, kh);
          }
        }
      }
    },
  };
}

/** Conv2DBackpropFilter by filterGrad16x2 (taps in pairs) and filterGrad16x1 (the odd one), per filter row. */
function filterGradCase(g: Conv, single = false): Case {
  const { oh, ow } = outSize(g);
  const { imgs, h, w, ci, co, kh, kw } = g;
  const sh = g.sh ?? 1;
  const sw = g.sw ?? 1;
  const k0 = g.k0 ?? 0;
  const nk = kw * ci;
  const pairs = single ? 0 : nk - (nk % 2);
  const steps = [imgs, oh, ow, sw * ci * 4, sh * w * ci * 4, h * w * ci * 4, co * 4] as const;
  return {
    name: `filterGrad16x${single ? 1 : 2} ${convLabel(g)}`,
    call: (k, out) => {
      for (let r = 0; r < kh; r++) {
        const xTile = INPUT[0] + r * w * ci * 4;
        const dWRow = out + r * nk * co * 4;
        const dy = INPUT[1] + k0 * 4;
        if (pairs > 0) k.filterGrad16x2(xTile, dy, dWRow + k0 * 4, pairs, co * 4, ...steps);
        if (pairs < nk) k.filterGrad16x1(xTile + pairs * 4, dy, dWRow + (pairs * co + k0) * 4, nk - pairs, co * 4, ...steps);
      }
    },
  };
}

/** Conv2DBackpropInput by inputGrad16x2, one call per filter tap (as conv2dBackprop.ts). */
function inputGradCase(g: Conv): Case {
  const { oh, ow } = outSize(g);
  const { imgs, h, w, ci, co, kh, kw } = g;
  const sh = g.sh ?? 1;
  const sw = g.sw ?? 1;
  const k0 = g.k0 ?? 0;
  const dxSteps = [sw * ci * 4, sh * w * ci * 4, h * w * ci * 4] as const;
  return {
    name: `inputGrad16x2 ${convLabel(g)}`,
    call: (k, out) => {
      for (let r = 0; r < kh; r++) {
        for (let c = 0; c < kw; c++) {
          const wTap = INPUT[1] + (r * kw + c) * co * ci * 4;
          k.inputGrad16x2(INPUT[0], wTap + k0 * 4, out + ((r * w + c) * ci + k0) * 4, co * 4, ci * 4, imgs, oh, ow, ...dxSteps);
        }
      }
    },
  };
}

/** C [m, n] = A [m, k] x B [k, n] by gemm16x2 (n's 16-column blocks), A read directly or transposed, C stored directly or transposed. */
function gemmCase(m: number, k: number, n: number, aT: boolean, cT: boolean): Case {
  const blocks = Math.floor(n / 16);
  const [aRowStep, aColStep] = aT ? [4, m * 4] : [k * 4, 4];
  const [cRowStep, cColStep] = cT ? [4, m * 4] : [n * 4, 4];
  return {
    name: `gemm16x2 ${m}x${k} by ${k}x${n}${aT ? ', A transposed' : ''}${cT ? ', C stored transposed' : ''}`,
    call: (kk, out) => kk.gemm16x2(INPUT[0], INPUT[1], out, m, blocks, k, aRowStep, aColStep, n * 4, cRowStep, cColStep),
  };
}

function cases(): Case[] {
  const list: Case[] = [];
  // One pixel; 1..17 output columns (every remainder of 8 and 4 pixels or taps); odd ci; kh 1 and 3; several images.
  const convs: Conv[] = [
    { imgs: 1, h: 1, w: 1, ci: 1, co: 16, kh: 1, kw: 1 },
    { imgs: 1, h: 1, w: 1, ci: 3, co: 16, kh: 1, kw: 1 },
    ...Array.from({ length: 17 }, (_, i): Conv => ({ imgs: 2, h: 4, w: i + 3, ci: 3, co: 32, kh: 3, kw: 3, k0: 16 })),
    { imgs: 3, h: 5, w: 13, ci: 16, co: 48, kh: 1, kw: 1, k0: 16 },
    { imgs: 2, h: 6, w: 9, ci: 5, co: 16, kh: 3, kw: 3 },
    { imgs: 2, h: 7, w: 11, ci: 7, co: 20, kh: 3, kw: 2, sh: 2, sw: 2 },
    { imgs: 1, h: 9, w: 9, ci: 32, co: 64, kh: 3, kw: 3, k0: 48 },
  ];
  for (const g of convs) list.push(convRowsCase(g), filterGradCase(g), filterGradCase(g, true), inputGradCase(g));
  for (const m of [1, 2, 3, 5, 7, 8, 9, 15, 17, 33]) {
    list.push(gemmCase(m, 7, 16, false, false), gemmCase(m, 1, 48, true, false), gemmCase(m, 37, 36, false, true), gemmCase(m, 19, 32, true, true));
  }
  list.push(gemmCase(32, 512, 128, false, false), gemmCase(64, 128, 16, true, false));
  return list;
}

describe.skipIf(!addon)(skipped('native kernels: the wasm kernels\' bits'), () => {
  it('loads, with a variant for this CPU', () => {
    expect(variants.length).toBeGreaterThan(0);
  });

  for (const variant of variants) {
    const fused = variant.endsWith('-fused');
    for (const shared of [false, true]) {
      it.skipIf(fused && !enableRelaxedSimd())(`${variant} equals the wasm ${fused ? 'FMA' : 'plain'} module, ${shared ? 'shared' : 'plain'} memory`, () => {
        const memory = newMemory(shared);
        const wasm = wasmOnly(memory, fused);
        const native = bindNativeKernels(addon![variant]!, memory);
        for (const [i, c] of cases().entries()) expectSameBits(memory, wasm, native, c, 100 + i);
      });
    }
  }

  it('follows the memory when it grows (a new buffer)', () => {
    const memory = newMemory(false);
    const wasm = wasmOnly(memory, false);
    const native = bindNativeKernels(addon!['avx512-plain'] ?? addon!['avx2-plain']!, memory);
    const c = gemmCase(9, 13, 32, false, false);
    expectSameBits(memory, wasm, native, c, 1);
    memory.grow(1);
    expectSameBits(memory, wasm, native, c, 2);
  });

  it('throws a RangeError for a region off the heap, where wasm would trap', () => {
    const memory = newMemory(false);
    const native = bindNativeKernels(addon![variants[0]]!, memory);
    const end = memory.buffer.byteLength;
    expect(() => native.gemm16x2(0, 0, end - 32, 1, 1, 1, 4, 4, 64, 64, 4)).toThrow(/c is off the heap/);
    expect(() => native.filterGrad16x1(end - 4, 0, 0, 2, 64, 1, 1, 1, 4, 4, 4, 64)).toThrow(/x is off the heap/);
  });

  it('replaces the 16-channel kernels in simdKernelsOn, and SVHN_NATIVE_KERNELS=0 keeps the wasm ones', () => {
    const memory = newMemory(false);
    const on = simdKernelsOn(memory)!;
    expect(on.gemm16x2.name).toBe('gemm16x2');
    expect(on.convRows4x2.name).not.toBe('convRows4x2'); // wasm exports are named by index
    process.env['SVHN_NATIVE_KERNELS'] = '0';
    expect(simdKernelsOn(memory)!.gemm16x2.name).not.toBe('gemm16x2');
  });
});

/**
 * A few Adam steps of the resnet (the registry's, seeded dropout included) on a fresh wasm
 * backend: simdKernels() reads SVHN_NATIVE_KERNELS once per backend, so the backend is
 * made anew (the same factory, registered again) for each setting.
 */
async function trainSteps(nativeKernels: boolean): Promise<{ native: boolean; losses: number[]; weights: Uint32Array[] }> {
  if (nativeKernels) delete process.env['SVHN_NATIVE_KERNELS'];
  else process.env['SVHN_NATIVE_KERNELS'] = '0';
  const factory = tf.findBackendFactory('wasm');
  if (tf.findBackend('wasm')) {
    tf.removeBackend('wasm');
    tf.registerBackend('wasm', factory, 2);
  }
  await useBackend('wasm');
  const native = simdKernels(asWasm(tf.backend()))?.gemm16x2.name === 'gemm16x2';
  const model = buildModel('resnet', { seed: 7 });
  model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
  const rng = new Rng(8);
  const n = 8;
  const x = tf.tensor4d(Float32Array.from({ length: n * 32 * 32 * 3 }, () => rng.next()), [n, 32, 32, 3]);
  const y = tf.oneHot(tf.tensor1d(Array.from({ length: n }, () => rng.int(10)), 'int32'), 10);
  const losses: number[] = [];
  for (let step = 0; step < 3; step++) losses.push((await model.trainOnBatch(x, y)) as number);
  const weights = model.getWeights().map((w) => new Uint32Array((w.dataSync() as Float32Array).slice().buffer));
  tf.dispose([x, y]);
  model.dispose();
  return { native, losses, weights };
}

describe.skipIf(!addon)(skipped('training with the native kernels'), () => {
  it('gives the same losses and weights, bit for bit, as without them (resnet, 3 Adam steps, batch 8)', async () => {
    const off = await trainSteps(false);
    const on = await trainSteps(true);
    expect(off.native).toBe(false);
    expect(on.native).toBe(true);
    expect(on.losses).toEqual(off.losses);
    expect(on.weights.length).toBe(off.weights.length);
    for (const [i, w] of on.weights.entries()) expect(w, `weight ${i}`).toEqual(off.weights[i]);
  });
});
