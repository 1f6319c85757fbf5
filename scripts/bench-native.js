#!/usr/bin/env node
/**
 * Training speed with and without the native kernels (native/, src/backend/kernels/native.ts):
 * scripts/bench-train.js run with SVHN_NATIVE_KERNELS=0 and =1 in turn, `rounds` times
 * (interleaved, so a drift in the machine's speed hits both alike), then each setting's
 * median and their ratio. The results are the same bits either way (test/backend/native.test.ts);
 * this only measures the time.
 *
 *   npm run build && node scripts/bench-native.js [--models resnet --backends wasm2 --reps 3 --steps 20 --rounds 2]
 *
 * --kernels instead times the kernels alone, in this process: each on a resnet layer's shape
 * (and dense_1's for gemm), wasm (FMA module) against native (fused), in GFLOP/s.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from './benchArgs.js';

const BENCH_TRAIN = join(dirname(fileURLToPath(import.meta.url)), 'bench-train.js');

const opts = benchArgs('native', {
  models: { type: 'string', default: 'resnet' },
  backends: { type: 'string', default: 'wasm2' },
  reps: { type: 'string', default: '3' },
  steps: { type: 'string', default: '20' },
  warmup: { type: 'string', default: '5' },
  rounds: { type: 'string', default: '2' },
  kernels: { type: 'boolean', default: false },
});

const rounds = Number(opts.rounds);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds: expected a positive integer, got '${opts.rounds}'`);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** One bench-train run with SVHN_NATIVE_KERNELS=native: its rows (backend, model, train_img_s). */
function benchTrain(native) {
  const args = [BENCH_TRAIN, '--no-torch', '--json', '--models', opts.models, '--backends', opts.backends,
    '--reps', opts.reps, '--steps', opts.steps, '--warmup', opts.warmup];
  const r = spawnSync(process.execPath, args, {
    encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, SVHN_NATIVE_KERNELS: native },
  });
  if (r.status !== 0) throw new Error(`bench-train.js failed (exit ${r.status}):\n${r.stderr}`);
  return JSON.parse(r.stdout).rows;
}

/**
 * Each kernel on one shape, wasm then native, alternately `reps` times; the best of each.
 * Shapes: a tile of 2 images of the resnet's first stage (32x32x16 -> 16, 3x3, x padded to
 * 34x34), per 16-channel block as conv2d.ts and conv2dBackprop.ts call them; gemm16x2 on the
 * optimized CNN's dense_1 (32 x 2304 x 128).
 */
async function benchKernels() {
  const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
  const { simdKernelsOn } = await import(join(ROOT, 'dist/backend/kernels/simd.js'));
  const { bindNativeKernels, nativeKernels } = await import(join(ROOT, 'dist/backend/kernels/native.js'));
  const native0 = nativeKernels(true);
  if (!native0) throw new Error('no native kernels: build them (node scripts/build-native.js)');
  const memory = new WebAssembly.Memory({ initial: 256 }); // 16 MB
  process.env.SVHN_NATIVE_KERNELS = '0';
  const wasm = simdKernelsOn(memory);
  const native = bindNativeKernels(native0, memory);
  const f = new Float32Array(memory.buffer);
  for (let i = 0; i < f.length; i++) f[i] = Math.random() - 0.5;
  const MB = 1 << 20;
  const [X, W, OUT] = [0, 4 * MB, 8 * MB];
  const [imgs, h, w, c, oh, ow] = [2, 34, 34, 16, 32, 32];
  const xSteps = [c * 4, w * c * 4, h * w * c * 4];
  const pixels = imgs * oh * ow;
  const cases = [
    ['convRows16x2', 2 * pixels * 9 * c * 16, (k) => k.convRows16x2(X, W, OUT, 3 * c * 4, c * 4, imgs, oh, ow, ...xSteps, c * 4, 3)],
    ['filterGrad16x2', 2 * pixels * 9 * c * 16, (k) => {
      for (let r = 0; r < 3; r++) k.filterGrad16x2(X + r * w * c * 4, W, OUT + r * 3 * c * c * 4, 3 * c, c * 4, imgs, oh, ow, ...xSteps, c * 4);
    }],
    ['inputGrad16x2', 2 * pixels * 9 * c * 16, (k) => {
      for (let t = 0; t < 9; t++) k.inputGrad16x2(X, W + t * c * c * 4, OUT + ((Math.floor(t / 3) * w + (t % 3)) * c) * 4, c * 4, c * 4, imgs, oh, ow, ...xSteps);
    }],
    ['gemm16x2', 2 * 32 * 2304 * 128, (k) => k.gemm16x2(X, W, OUT, 32, 8, 2304, 2304 * 4, 4, 128 * 4, 128 * 4, 4)],
  ];
  const reps = Number(opts.reps) * 5;
  console.log('kernel            wasm GFLOP/s   native GFLOP/s   speedup');
  for (const [name, flops, run] of cases) {
    const best = { wasm: Infinity, native: Infinity };
    for (let i = 0; i < reps; i++) {
      for (const [which, k] of [['wasm', wasm], ['native', native]]) {
        const t0 = performance.now();
        for (let j = 0; j < 10; j++) run(k);
        best[which] = Math.min(best[which], (performance.now() - t0) / 10);
      }
    }
    const gflops = (ms) => flops / ms / 1e6;
    console.log(`${name.padEnd(18)}${gflops(best.wasm).toFixed(1).padEnd(15)}${gflops(best.native).toFixed(1).padEnd(17)}${(best.wasm / best.native).toFixed(2)}x`);
  }
  // The cost of a call itself: convRows16x2 on no rows, its arguments read and checked.
  const calls = 100_000;
  const perCall = { wasm: Infinity, native: Infinity };
  for (let i = 0; i < 5; i++) {
    for (const [which, k] of [['wasm', wasm], ['native', native]]) {
      const t0 = performance.now();
      for (let j = 0; j < calls; j++) k.convRows16x2(X, W, OUT, 3 * c * 4, c * 4, imgs, 0, ow, ...xSteps, c * 4, 3);
      perCall[which] = Math.min(perCall[which], ((performance.now() - t0) * 1e6) / calls);
    }
  }
  console.log(`a call, no work:  wasm ${perCall.wasm.toFixed(0)} ns, native ${perCall.native.toFixed(0)} ns`);
}

if (opts.kernels) {
  await benchKernels();
  process.exit(0);
}

// "backend model" -> per setting ('0': wasm kernels, '1': native), each run's median img/s
const results = new Map();
for (let round = 1; round <= rounds; round++) {
  for (const native of ['0', '1']) {
    process.stderr.write(`round ${round}/${rounds}, SVHN_NATIVE_KERNELS=${native} ...\n`);
    for (const row of benchTrain(native)) {
      if (row.error) throw new Error(`${row.backend} ${row.model}: ${row.error}`);
      const key = `${row.backend} ${row.model}`;
      if (!results.has(key)) results.set(key, { train: { 0: [], 1: [] }, infer: { 0: [], 1: [] } });
      results.get(key).train[native].push(row.train_med);
      results.get(key).infer[native].push(row.infer_med);
    }
  }
}

const fmt = (xs) => xs.map((x) => x.toFixed(1)).join(' ');
console.log(`${'backend model'.padEnd(16)}${'img/s'.padEnd(7)}${'wasm kernels'.padEnd(24)}${'native kernels'.padEnd(24)}speedup (medians)`);
for (const [key, r] of results) {
  for (const what of ['train', 'infer']) {
    const [off, on] = [r[what][0], r[what][1]];
    console.log(`${key.padEnd(16)}${what.padEnd(7)}${fmt(off).padEnd(24)}${fmt(on).padEnd(24)}${(median(on) / median(off)).toFixed(2)}x`);
  }
}
