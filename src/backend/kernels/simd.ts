/**
 * A few loops in wasm SIMD that run on the wasm backend's own heap (the module imports the
 * backend's WebAssembly.Memory, so pointers are the byte offsets of tensors on that heap).
 * JS ran them at 1-3 ns per element (MaxPoolGrad's data-dependent branches: ~20 ns per
 * window); 4 float32 lanes with no branches take a fraction of that. Per training step of
 * the optimized model they replaced ~45 ms of JS loops with ~12 ms.
 *
 *   pool2x2Row   MaxPoolGrad, 2x2 windows, stride 2      (maxPoolGrad.ts)
 *   bnGradRows   BatchNorm's backward pass, float64 sums  (gradients.ts)
 *   sumRows      Sum / Mean over all but the last axis     (reduce.ts)
 *   reluGrad, squareGrad                                   (gradients.ts)
 *   affineRows   FusedBatchNorm forward, x * k + a         (batchNorm.ts)
 *   gatherRuns, addRun   im2col / col2im                   (conv2dBackprop.ts)
 *   adamUpdate(2)        Adam's step for one variable (with two replicas' gradients)  (adam.ts)
 *   sumSqRows, addAffineRows   SyncBatchNorm's passes          (syncBatchNorm.ts)
 *   filterGrad16x2 etc.  Conv2DBackpropFilter without im2col (conv2dBackprop.ts)
 *   inputGrad16x2, inputGrad4x2   Conv2DBackpropInput as a scatter from dy (conv2dBackprop.ts)
 *   convRows16x2, convRows4x2     Conv2D without im2col                     (conv2d.ts)
 *   gemm16x2, gemm4x4     BatchMatMul, A read through strides (no transpose)  (batchMatMul.ts)
 *   biasReluRows, reluBiasGradRows   Conv2D + bias + ReLU forward epilogue and backward  (conv2d.ts, gradients.ts)
 *   pool2x2ReluRow, anyNaNRuns   MaxPoolGrad of a ReLU's output, its step and bias sum folded in (maxPoolGrad.ts)
 *
 * The module is assembled here from named opcodes (no toolchain, no binary blob): one
 * function per loop, each documented with what it computes; each caller is tested against
 * the cpu backend (test/backend/simd.test.ts and others). On the threaded build the module
 * imports the shared heap and runs on the calling thread. Where the runtime lacks wasm SIMD,
 * `simdKernels()` returns undefined and callers keep their JS loops.
 */
import v8 from 'node:v8';
import type { WasmBackendLike } from './heap.js';

/**
 * Fused multiply-add for the convolution loops: relaxed SIMD's f32x4.relaxed_madd, behind a
 * flag in Node 20's V8 (on by default from V8 11.4), set here before the module compiles.
 * SVHN_WASM_FMA=0 keeps a separate multiply and add.
 */
function useFma(): boolean {
  if (process.env['SVHN_WASM_FMA'] === '0') return false;
  v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  return true;
}

// ------------------------------------------------------------------ opcodes (subset) --
const I32 = 0x7f;
const F32 = 0x7d;
const V128 = 0x7b;
const op = {
  block: 0x02, loop: 0x03, if: 0x04, else: 0x05, br: 0x0c, brIf: 0x0d, end: 0x0b, void: 0x40,
  localGet: 0x20, localSet: 0x21, localTee: 0x22,
  i32Const: 0x41, i32Add: 0x6a, i32Mul: 0x6c, i32GeS: 0x4e, i32GeU: 0x4f, i32GtU: 0x4b, i32LtU: 0x49, i32Eq: 0x46,
  f32Load: 0x2a, f32Store: 0x38,
} as const;
/** SIMD instructions: 0xfd then the sub-opcode as unsigned LEB128. */
const simd = {
  load: 0x00, load32Splat: 0x09, store: 0x0b, const: 0x0c, shuffle: 0x0d, f32x4Gt: 0x44,
  f32x4Ne: 0x42, and: 0x4e, andnot: 0x4f, or: 0x50, bitselect: 0x52,
  f64x2PromoteLow: 0x5f, f32x4Add: 0xe4, f32x4Mul: 0xe6, f64x2Add: 0xf0, f64x2Sub: 0xf1, f64x2Mul: 0xf2,
  f32x4Splat: 0x13, f32x4ExtractLane: 0x1f, f32x4Sqrt: 0xe3, f32x4Div: 0xe7,
  f32x4RelaxedMadd: 0x105, // relaxed SIMD: a * b + c, fused where the CPU has FMA
} as const;

/** Set while a module is assembled: whether the convolution loops use relaxed_madd. */
let assemblingWithFma = false;

/** acc += a * b on v128 locals: a float32 multiply then add, or one fused multiply-add. */
function multiplyAdd(acc: number, a: number, b: number): number[] {
  return assemblingWithFma
    ? [...get(a), ...get(b), ...get(acc), ...v(simd.f32x4RelaxedMadd), ...set(acc)]
    : [...get(acc), ...get(a), ...get(b), ...v(simd.f32x4Mul), ...v(simd.f32x4Add), ...set(acc)];
}

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    const done = (n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

const str = (s: string): number[] => [...uleb(s.length), ...Buffer.from(s, 'utf8')];
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];

/** Small instruction helpers (each returns the bytes of one instruction). */
const get = (i: number) => [op.localGet, ...uleb(i)];
const set = (i: number) => [op.localSet, ...uleb(i)];
const tee = (i: number) => [op.localTee, ...uleb(i)];
/** A SIMD instruction (the 0xfd prefix, then its sub-opcode). */
const v = (sub: number) => [0xfd, ...uleb(sub)];
/** v128.load / v128.store with a 4-byte alignment hint (tensors are float32-aligned). */
const load = (offset = 0) => [...v(simd.load), 2, ...uleb(offset)];
const store = (offset = 0) => [...v(simd.store), 2, ...uleb(offset)];
/** The upper two float32 lanes moved down (then f64x2.promote_low widens them). */
const upperHalf = () => [...v(simd.shuffle), 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];
const i32Const = (n: number) => [op.i32Const, ...sleb(n)];
const i32Sub = () => [0x6b]; // i32.sub

/**
 * pool2x2Row(x, g, dx, ow, chBytes, rowBytes): one output row of MaxPoolGrad for 2x2
 * windows, stride 2, channels a multiple of 4. x and dx point at input row 2y (the window's
 * top-left cell), g at the output row; for each window and 4 channels at a time:
 * best = -inf; m_k = v_k > best, best = m_k ? v_k : best for the cells in row-major order
 * (so NaN never wins, and the first of equal maxima does); the last cell whose m_k holds is
 * the winner and gets g, the others 0. The same routing as the JS loop and the cpu backend.
 * pool2x2ReluRow(x, g, dx, ow, chBytes, rowBytes, acc, nan): pool2x2Row where x is a ReLU's
 * output (>= 0 or NaN), with the ReLU's gradient and its bias sum folded in (maxPoolGrad.ts):
 * the same routing, but the winner gets g * step(best) (step = best > 0 ? 1 : 0; a multiply,
 * so NaN or infinite g times 0 is NaN as in dy * step(y)), and acc[c] += that value
 * (float64[C], acc at channel 0 for every window). The routing is exact only where no cell
 * is NaN (reluBiasGrad's dy * step(y) is NaN at every NaN y, winner or not): nan (16 bytes)
 * gets OR-ed with the lanes' cell != cell over all four cells of every window.
 */
function pool2x2RowBody(relu: boolean): number[] {
  // params: 0 x, 1 g, 2 dx, 3 ow, 4 chBytes, 5 rowBytes, [6 acc, 7 nan]; locals: end, xo,
  // [ga] (i32); best, m0, m1, m2, m3, cell, gv, [nanAcc] (v128)
  const [x, g, dx, ow, chB, rowB] = [0, 1, 2, 3, 4, 5];
  const [acc, nan] = [6, 7]; // pool2x2ReluRow only
  const firstLocal = relu ? 8 : 6;
  const [end, xo, ga] = [firstLocal, firstLocal + 1, firstLocal + 2];
  const firstVector = firstLocal + (relu ? 3 : 2);
  const [best, m0, m1, m2, m3, cell, gv, nanAcc] = Array.from({ length: 8 }, (_, i) => firstVector + i);
  const f32Splat = (f: number) => {
    const bytes = Array.from(new Uint8Array(new Float32Array([f]).buffer));
    return [...v(simd.const), ...bytes, ...bytes, ...bytes, ...bytes];
  };
  // Address x (or dx) + offsets.
  const addr = (base: number, ...offsets: number[]) => [...get(base), ...offsets.flatMap((o) => [...get(o), op.i32Add])];
  const compare = (address: number[], mask: number) => [
    ...address, ...load(), ...tee(cell), ...get(best), ...v(simd.f32x4Gt), ...set(mask),
    // best = mask ? cell : best
    ...get(cell), ...get(best), ...get(mask), ...v(simd.bitselect), ...set(best),
    // nanAcc |= cell != cell
    ...(relu ? [...get(nanAcc), ...get(cell), ...get(cell), ...v(simd.f32x4Ne), ...v(simd.or), ...set(nanAcc)] : []),
  ];
  // dx[address] = gv & mask & ~later; later |= mask
  const route = (address: number[], mask: number) => [
    ...address, ...get(gv), ...get(mask), ...get(m3), ...v(simd.andnot), ...v(simd.and), ...store(),
    ...get(m3), ...get(mask), ...v(simd.or), ...set(m3),
  ];
  const advance = (local: number, by: number[]) => [...get(local), ...by, op.i32Add, ...set(local)];
  const gradient = relu
    ? [
      // gv = g * step(best): best is the winner's value (-inf where all four are NaN).
      ...get(g), ...load(),
      ...f32Splat(1), ...f32Splat(0), ...get(best), ...f32Splat(0), ...v(simd.f32x4Gt), ...v(simd.bitselect),
      ...v(simd.f32x4Mul), ...set(gv),
    ]
    : [...get(g), ...load(), ...set(gv)];
  return [
    op.block, op.void,
    op.loop, op.void,
    ...get(xo), ...get(ow), op.i32GeS, op.brIf, 1,
    ...get(x), ...get(chB), op.i32Add, ...set(end),
    ...(relu ? [...get(acc), ...set(ga)] : []),
    op.block, op.void,
    op.loop, op.void,
    ...get(x), ...get(end), op.i32GeU, op.brIf, 1,
    ...f32Splat(Number.NEGATIVE_INFINITY), ...set(best),
    ...compare(addr(x), m0),
    ...compare(addr(x, chB), m1),
    ...compare(addr(x, rowB), m2),
    ...compare(addr(x, rowB, chB), m3),
    ...gradient,
    // The last cell's mask wins outright; each earlier one only where no later one held.
    ...addr(dx, rowB, chB), ...get(gv), ...get(m3), ...v(simd.and), ...store(),
    ...route(addr(dx, rowB), m2),
    ...route(addr(dx, chB), m1),
    ...route(addr(dx), m0),
    // pool2x2ReluRow: the value routed (where some cell won; with none, every cell is NaN and nan is set).
    ...(relu ? [...addToFloat64(ga, gv), ...advance(ga, i32Const(32))] : []),
    ...advance(x, i32Const(16)), ...advance(dx, i32Const(16)), ...advance(g, i32Const(16)),
    op.br, 0,
    op.end, op.end,
    // Next window: skip the second column of this one.
    ...advance(x, get(chB)), ...advance(dx, get(chB)), ...advance(xo, i32Const(1)),
    op.br, 0,
    op.end, op.end,
    ...(relu ? [...get(nan), ...get(nan), ...load(), ...get(nanAcc), ...v(simd.or), ...store()] : []),
    op.end,
  ];
}

/**
 * anyNaNRuns(x, end, step, runBytes, nan): nan (16 bytes) |= the lanes' v != v over the runs
 * of runBytes (a multiple of 16) starting at x, x + step, ... below end: the cells of a 2x2
 * MaxPool's input outside every window (odd sizes), checked by pool2x2ReluRow's callers.
 */
function anyNaNRunsBody(): number[] {
  // params: 0 x, 1 end, 2 step, 3 runBytes, 4 nan; locals: 5 p, 6 runEnd (i32); 7 nanAcc, 8 cell (v128)
  const [x, end, step, runB, nan, p, runEnd, nanAcc, cell] = Array.from({ length: 9 }, (_, i) => i);
  const advance = (local: number, by: number[]) => [...get(local), ...by, op.i32Add, ...set(local)];
  return [
    op.block, op.void, op.loop, op.void,
    ...get(x), ...get(end), op.i32GeU, op.brIf, 1,
    ...get(x), ...set(p), ...get(x), ...get(runB), op.i32Add, ...set(runEnd),
    op.block, op.void, op.loop, op.void,
    ...get(p), ...get(runEnd), op.i32GeU, op.brIf, 1,
    ...get(nanAcc), ...get(p), ...load(), ...tee(cell), ...get(cell), ...v(simd.f32x4Ne), ...v(simd.or), ...set(nanAcc),
    ...advance(p, i32Const(16)),
    op.br, 0, op.end, op.end,
    ...advance(x, get(step)),
    op.br, 0, op.end, op.end,
    ...get(nan), ...get(nan), ...load(), ...get(nanAcc), ...v(simd.or), ...store(),
    op.end,
  ];
}

/**
 * bnGradRows(dy, x, dx, end, rowBytes, k, mean, acc): BatchNorm's backward pass over
 * channels-last rows from dy up to end (byte offsets on the heap; x and dx move along with
 * dy), 4 channels at a time:
 *   dx = dy * k[c]                      (float32, as the JS loop)
 *   acc[c].sumDy += dy, acc[c].sumDyD += dy * (x - mean[c])    (float64)
 * k: float32[C]; mean: float64[C]; acc: per 4 channels 8 float64 (sumDy x4, sumDyD x4).
 */
function bnGradRowsBody(): number[] {
  // params: 0 dy, 1 x, 2 dx, 3 end, 4 rowBytes, 5 k, 6 mean, 7 acc;
  // locals: 8 rowEnd, 9 gk, 10 gm, 11 ga, 12 g, 13 xv, 14 lo, 15 hi
  const [dy, x, dx, end, rowB, k, mean, acc, rowEnd, gk, gm, ga, g, xv, lo, hi] = Array.from({ length: 16 }, (_, i) => i);
  const advance = (local: number, by: number) => [...get(local), ...i32Const(by), op.i32Add, ...set(local)];
  const accumulate = (offset: number, value: number[]) => [
    ...get(ga), ...get(ga), ...load(offset), ...value, ...v(simd.f64x2Add), ...store(offset),
  ];
  return [
    op.block, op.void, op.loop, op.void,
    ...get(dy), ...get(end), op.i32GeU, op.brIf, 1,
    ...get(dy), ...get(rowB), op.i32Add, ...set(rowEnd),
    ...get(k), ...set(gk), ...get(mean), ...set(gm), ...get(acc), ...set(ga),
    op.block, op.void, op.loop, op.void,
    ...get(dy), ...get(rowEnd), op.i32GeU, op.brIf, 1,
    ...get(dy), ...load(), ...set(g),
    ...get(x), ...load(), ...set(xv),
    ...get(dx), ...get(g), ...get(gk), ...load(), ...v(simd.f32x4Mul), ...store(),
    ...get(g), ...v(simd.f64x2PromoteLow), ...set(lo),
    ...get(g), ...get(g), ...upperHalf(), ...v(simd.f64x2PromoteLow), ...set(hi),
    ...accumulate(0, get(lo)),
    ...accumulate(16, get(hi)),
    // sumDyD += dy * (x - mean), per half
    ...accumulate(32, [...get(lo), ...get(xv), ...v(simd.f64x2PromoteLow), ...get(gm), ...load(0), ...v(simd.f64x2Sub), ...v(simd.f64x2Mul)]),
    ...accumulate(48, [...get(hi), ...get(xv), ...get(xv), ...upperHalf(), ...v(simd.f64x2PromoteLow), ...get(gm), ...load(16),
      ...v(simd.f64x2Sub), ...v(simd.f64x2Mul)]),
    ...advance(dy, 16), ...advance(x, 16), ...advance(dx, 16), ...advance(gk, 16), ...advance(gm, 32), ...advance(ga, 64),
    op.br, 0, op.end, op.end,
    op.br, 0, op.end, op.end,
    op.end,
  ];
}

/** acc[ga .. ga+32) (float64 x 4) += the float32 x 4 in v128 local `value`, widened. */
function addToFloat64(ga: number, value: number): number[] {
  return [
    ...get(ga), ...get(ga), ...load(0), ...get(value), ...v(simd.f64x2PromoteLow), ...v(simd.f64x2Add), ...store(0),
    ...get(ga), ...get(ga), ...load(16), ...get(value), ...get(value), ...upperHalf(), ...v(simd.f64x2PromoteLow), ...v(simd.f64x2Add),
    ...store(16),
  ];
}

/**
 * The loops of a per-channel pass over channels-last rows: for each row from `ptr` up to
 * `end` (rowBytes each), 16 bytes (4 channels) at a time, `body` with ga at those channels'
 * float64 sums in acc, then `advance` (which moves ptr and ga on by 16 and 32 bytes, and any
 * pointers that move along).
 */
function channelRowLoops(o: { ptr: number; end: number; rowBytes: number; rowEnd: number; acc: number; ga: number; body: number[]; advance: number[] }): number[] {
  return [
    op.block, op.void, op.loop, op.void,
    ...get(o.ptr), ...get(o.end), op.i32GeU, op.brIf, 1,
    ...get(o.ptr), ...get(o.rowBytes), op.i32Add, ...set(o.rowEnd),
    ...get(o.acc), ...set(o.ga),
    op.block, op.void, op.loop, op.void,
    ...get(o.ptr), ...get(o.rowEnd), op.i32GeU, op.brIf, 1,
    ...o.body,
    ...o.advance,
    op.br, 0, op.end, op.end,
    op.br, 0, op.end, op.end,
  ];
}

/**
 * sumRows(x, end, rowBytes, acc): acc[c] += x[r, c] over channels-last rows from x up to
 * end (byte offsets), 4 channels at a time; acc: float64[C] (Sum and Mean over all but the
 * last axis).
 */
function sumRowsBody(): number[] {
  // params: 0 x, 1 end, 2 rowBytes, 3 acc; locals: 4 rowEnd, 5 ga, 6 xv
  const [x, end, rowBytes, acc, rowEnd, ga, xv] = Array.from({ length: 7 }, (_, i) => i);
  const advance = (local: number, by: number) => [...get(local), ...i32Const(by), op.i32Add, ...set(local)];
  return [
    ...channelRowLoops({
      ptr: x, end, rowBytes, rowEnd, acc, ga,
      body: [...get(x), ...load(), ...set(xv), ...addToFloat64(ga, xv)],
      advance: [...advance(x, 16), ...advance(ga, 32)],
    }),
    op.end,
  ];
}

/**
 * sumSqRows(x, end, rowBytes, acc): per channel, sums of x and of x * x in float64 over
 * channels-last rows from x up to end (byte offsets), 4 channels at a time; acc: per 4
 * channels 8 float64 (sum x4, sum of squares x4), the bnGradRows layout (SyncBatchNorm's
 * forward statistics).
 */
function sumSqRowsBody(): number[] {
  // params: 0 x, 1 end, 2 rowBytes, 3 acc; locals: 4 rowEnd, 5 ga, 6 xv, 7 lo, 8 hi
  const [x, end, rowB, acc, rowEnd, ga, xv, lo, hi] = Array.from({ length: 9 }, (_, i) => i);
  const advance = (local: number, by: number) => [...get(local), ...i32Const(by), op.i32Add, ...set(local)];
  const accumulate = (offset: number, value: number[]) => [
    ...get(ga), ...get(ga), ...load(offset), ...value, ...v(simd.f64x2Add), ...store(offset),
  ];
  return [
    op.block, op.void, op.loop, op.void,
    ...get(x), ...get(end), op.i32GeU, op.brIf, 1,
    ...get(x), ...get(rowB), op.i32Add, ...set(rowEnd),
    ...get(acc), ...set(ga),
    op.block, op.void, op.loop, op.void,
    ...get(x), ...get(rowEnd), op.i32GeU, op.brIf, 1,
    ...get(x), ...load(), ...set(xv),
    ...get(xv), ...v(simd.f64x2PromoteLow), ...set(lo),
    ...get(xv), ...get(xv), ...upperHalf(), ...v(simd.f64x2PromoteLow), ...set(hi),
    ...accumulate(0, get(lo)),
    ...accumulate(16, get(hi)),
    ...accumulate(32, [...get(lo), ...get(lo), ...v(simd.f64x2Mul)]),
    ...accumulate(48, [...get(hi), ...get(hi), ...v(simd.f64x2Mul)]),
    ...advance(x, 16), ...advance(ga, 64),
    op.br, 0, op.end, op.end,
    op.br, 0, op.end, op.end,
    op.end,
  ];
}

/**
 * affineRows(x, out, end, rowBytes, k, a): out = x * k[c] + a[c], and addAffineRows(same
 * arguments): out += x * k[c] + a[c], over channels-last rows from x up to end (byte
 * offsets; out moves along), 4 channels at a time; k, a: float32[C]. A float32 multiply then
 * a float32 add: the same values as the two native broadcast ops. affineRows is
 * FusedBatchNorm's forward pass; addAffineRows finishes SyncBatchNorm's backward pass after
 * bnGradRows wrote dy * gamma * r into out.
 */
function affineRowsBody(accumulate: boolean): number[] {
  // params: 0 x, 1 out, 2 end, 3 rowBytes, 4 k, 5 a; locals: 6 rowEnd, 7 gk (a at gk + C*4)
  const [x, out, end, rowB, k, a, rowEnd, gk] = Array.from({ length: 8 }, (_, i) => i);
  const add = (local: number, by: number[]) => [...get(local), ...by, op.i32Add, ...set(local)];
  return [
    op.block, op.void, op.loop, op.void,
    ...get(x), ...get(end), op.i32GeU, op.brIf, 1,
    ...get(x), ...get(rowB), op.i32Add, ...set(rowEnd),
    ...get(k), ...set(gk),
    op.block, op.void, op.loop, op.void,
    ...get(x), ...get(rowEnd), op.i32GeU, op.brIf, 1,
    // [out +] x * k + a, with a at the same channel offset from `a` as gk is from `k`
    ...get(out), ...(accumulate ? [...get(out), ...load()] : []),
    ...get(x), ...load(), ...get(gk), ...load(), ...v(simd.f32x4Mul),
    ...get(gk), ...get(a), op.i32Add, ...get(k), ...i32Sub(), ...load(), ...v(simd.f32x4Add),
    ...(accumulate ? v(simd.f32x4Add) : []), ...store(),
    ...add(x, i32Const(16)), ...add(out, i32Const(16)), ...add(gk, i32Const(16)),
    op.br, 0, op.end, op.end,
    op.br, 0, op.end, op.end,
    op.end,
  ];
}

/**
 * reluGrad(dy, x, out, end) and squareGrad(dy, x, out, end): the gradients of Relu and
 * Square as one pass each over flat float32 data from dy up to end (x and out move along;
 * the caller does a tail of fewer than 4 elements), with tfjs-core's values:
 *   Relu:   out = dy * step(x), step = x > 0 ? 1 : 0, NaN for NaN x
 *   Square: out = dy * (x + x)  (x * 2, exact)
 */
function elementwiseGradBody(kind: 'relu' | 'square'): number[] {
  // params: 0 dy, 1 x, 2 out, 3 end; locals: 4 xv, 5 step
  const [dy, x, out, end, xv, step] = Array.from({ length: 6 }, (_, i) => i);
  const add = (local: number, by: number[]) => [...get(local), ...by, op.i32Add, ...set(local)];
  const splat = (f: number) => {
    const bytes = Array.from(new Uint8Array(new Float32Array([f]).buffer));
    return [...v(simd.const), ...bytes, ...bytes, ...bytes, ...bytes];
  };
  // v128.bitselect(a, b, m) takes a where m is set, else b.
  const factor = kind === 'relu'
    ? [
      ...splat(1), ...splat(0), ...get(xv), ...splat(0), ...v(simd.f32x4Gt), ...v(simd.bitselect), ...set(step),
      ...get(xv), ...get(step), ...get(xv), ...get(xv), ...v(simd.f32x4Ne), ...v(simd.bitselect), // NaN x: x
    ]
    : [...get(xv), ...get(xv), ...v(simd.f32x4Add)];
  return [
    op.block, op.void, op.loop, op.void,
    ...get(dy), ...get(end), op.i32GeU, op.brIf, 1,
    ...get(x), ...load(), ...set(xv),
    ...get(out), ...get(dy), ...load(), ...factor, ...v(simd.f32x4Mul), ...store(),
    ...add(dy, i32Const(16)), ...add(x, i32Const(16)), ...add(out, i32Const(16)),
    op.br, 0, op.end, op.end,
    op.end,
  ];
}

/**
 * gatherRuns(src, dst, planes, rows, runBytes, rowStride, planeStride): copies `rows` runs
 * of runBytes per plane, the runs rowStride apart and the planes planeStride apart in src,
 * one after another into dst (im2col for Conv2DBackpropFilter), 16 bytes at a time.
 */
function gatherRunsBody(): number[] {
  // params: 0 src, 1 dst, 2 planes, 3 rows, 4 runBytes, 5 rowStride, 6 planeStride;
  // locals: 7 p, 8 y, 9 s (row start), 10 rp (read cursor), 11 e (end of this run in dst)
  const [src, dst, planes, rows, runB, rowS, planeS, p, y, sp, rp, e] = Array.from({ length: 12 }, (_, i) => i);
  const add = (local: number, by: number[]) => [...get(local), ...by, op.i32Add, ...set(local)];
  return [
    op.block, op.void, op.loop, op.void,
    ...get(p), ...get(planes), op.i32GeS, op.brIf, 1,
    ...get(src), ...set(sp), ...i32Const(0), ...set(y),
    op.block, op.void, op.loop, op.void,
    ...get(y), ...get(rows), op.i32GeS, op.brIf, 1,
    ...get(sp), ...set(rp), ...get(dst), ...get(runB), op.i32Add, ...set(e),
    // 16 bytes at a time while a whole vector fits, then single floats
    op.block, op.void, op.loop, op.void,
    ...get(dst), ...i32Const(16), op.i32Add, ...get(e), op.i32GtU, op.brIf, 1,
    ...get(dst), ...get(rp), ...load(), ...store(),
    ...add(dst, i32Const(16)), ...add(rp, i32Const(16)),
    op.br, 0, op.end, op.end,
    op.block, op.void, op.loop, op.void,
    ...get(dst), ...get(e), op.i32GeU, op.brIf, 1,
    ...get(dst), ...get(rp), op.f32Load, 2, 0, op.f32Store, 2, 0,
    ...add(dst, i32Const(4)), ...add(rp, i32Const(4)),
    op.br, 0, op.end, op.end,
    ...add(sp, get(rowS)), ...add(y, i32Const(1)),
    op.br, 0, op.end, op.end,
    ...add(src, get(planeS)), ...add(p, i32Const(1)),
    op.br, 0, op.end, op.end,
    op.end,
  ];
}

/** addRun(src, dst, bytes): dst[i] += src[i] over `bytes` (a multiple of 16), float32. */
function addRunBody(): number[] {
  // params: 0 src, 1 dst, 2 bytes; locals: 3 e
  const [src, dst, bytes, e] = [0, 1, 2, 3];
  const add = (local: number, by: number[]) => [...get(local), ...by, op.i32Add, ...set(local)];
  return [
    ...get(dst), ...get(bytes), op.i32Add, ...set(e),
    op.block, op.void, op.loop, op.void,
    ...get(dst), ...get(e), op.i32GeU, op.brIf, 1,
    ...get(dst), ...get(dst), ...load(), ...get(src), ...load(), ...v(simd.f32x4Add), ...store(),
    ...add(dst, i32Const(16)), ...add(src, i32Const(16)),
    op.br, 0, op.end, op.end,
    op.end,
  ];
}


/**
 * adamUpdate(value, m, v, g, outValue, outM, outV, bytes, b1, c1, b2, c2, oma1, oma2, eps,
 * negLr): Adam's update for one variable in one pass (float32 x 4, `bytes` a multiple of 16),
 * the same operations in the same order as tfjs-core's AdamOptimizer, each rounded to
 * float32 as its separate ops are, so the results are bit-identical:
 *   m' = m*b1 + g*c1          v' = v*b2 + (g*g)*c2          (c1 = 1-b1, c2 = 1-b2)
 *   value' = ((m'/oma1) / (sqrt(v'/oma2) + eps)) * negLr + value
 * adamUpdate2(value, m, v, g, g2, outValue, outM, outV, bytes, w, w2, b1, ...): the same with
 * g = g*w + g2*w2 first (each product and the sum rounded to float32): two replicas' shard
 * gradients combined into the batch's in the same pass (train/replicas.ts).
 */
function adamUpdateBody(combine: boolean): number[] {
  // params: 0 value, 1 m, 2 v, 3 g, [g2], outValue, outM, outV, bytes (i32); then [w, w2],
  // b1, c1, b2, c2, oma1, oma2, eps, negLr (f32); locals: i (i32); gv, mv, vv, then the
  // splatted f32 params (v128)
  const x = combine ? 1 : 0; // the extra pointer param shifts the rest
  const [value, m, vIn, g, g2, outValue, outM, outV, bytes] = [0, 1, 2, 3, 4, 4 + x, 5 + x, 6 + x, 7 + x];
  const scalars = (combine ? 10 : 8);
  const firstScalar = 8 + x;
  const i = firstScalar + scalars;
  const [gv, mv, vv] = [i + 1, i + 2, i + 3];
  const K = (scalar: number) => i + 4 + scalar; // the v128 local holding the scalar-th f32 param's splat
  const [w, w2] = [0, 1];
  const [b1, c1, b2, c2, oma1, oma2, eps, negLr] = Array.from({ length: 8 }, (_, k) => k + 2 * x);
  const at = (base: number) => [...get(base), ...get(i), op.i32Add];
  const splats = Array.from({ length: scalars }, (_, k) => [...get(firstScalar + k), ...v(simd.f32x4Splat), ...set(K(k))]).flat();
  const gradient = combine
    ? [...at(g), ...load(), ...get(K(w)), ...v(simd.f32x4Mul), ...at(g2), ...load(), ...get(K(w2)), ...v(simd.f32x4Mul), ...v(simd.f32x4Add)]
    : [...at(g), ...load()];
  return [
    ...splats,
    op.block, op.void, op.loop, op.void,
    ...get(i), ...get(bytes), op.i32GeU, op.brIf, 1,
    ...gradient, ...set(gv),
    // m' = m*b1 + g*c1
    ...at(m), ...load(), ...get(K(b1)), ...v(simd.f32x4Mul), ...get(gv), ...get(K(c1)), ...v(simd.f32x4Mul), ...v(simd.f32x4Add), ...set(mv),
    // v' = v*b2 + (g*g)*c2
    ...at(vIn), ...load(), ...get(K(b2)), ...v(simd.f32x4Mul),
    ...get(gv), ...get(gv), ...v(simd.f32x4Mul), ...get(K(c2)), ...v(simd.f32x4Mul), ...v(simd.f32x4Add), ...set(vv),
    ...at(outM), ...get(mv), ...store(),
    ...at(outV), ...get(vv), ...store(),
    // value' = ((m'/oma1) / (sqrt(v'/oma2) + eps)) * negLr + value
    ...at(outValue),
    ...get(mv), ...get(K(oma1)), ...v(simd.f32x4Div),
    ...get(vv), ...get(K(oma2)), ...v(simd.f32x4Div), ...v(simd.f32x4Sqrt), ...get(K(eps)), ...v(simd.f32x4Add),
    ...v(simd.f32x4Div), ...get(K(negLr)), ...v(simd.f32x4Mul),
    ...at(value), ...load(), ...v(simd.f32x4Add), ...store(),
    ...get(i), ...i32Const(16), op.i32Add, ...set(i),
    op.br, 0, op.end, op.end,
    op.end,
  ];
}

/**
 * filterGrad{16,4}x{2,1}(x, dy, out, nk, outStep, imgs, rows, cols, xColStep, xRowStep,
 * xImgStep, dyStep): Conv2DBackpropFilter for stride 1 without padding, straight from x and
 * dy in NHWC (no im2col), over one tile of output pixels for 4 * `vectors` output channels,
 * `taps` filter taps at a time:
 *   for each filter tap kk < nk (nk a multiple of taps; its x value at x + 4*kk):
 *     acc[c] = sum over the tile's pixels of x[pixel + kk] * dy[pixel, c]    (float32)
 *     out[kk * outStep + c] += acc[c]
 * The tile is imgs x rows x cols pixels: x moves by xColStep per pixel, xRowStep per row and
 * xImgStep per image from where each started; dy by dyStep per pixel, contiguously; cols >= 1.
 * The accumulators stay in locals; each dy vector is loaded once for all `taps` splatted x
 * values (16 channels x 2 taps: 8 accumulators, 6 loads per 8 f32x4.mul + f32x4.add, there
 * being no FMA in wasm SIMD; measured ~33 GFLOP/s against ~24 for 32 channels x 1 tap).
 */
function filterGradBody(vectors: number, taps: number): number[] {
  // params: 0 x, 1 dy, 2 out, 3 nk, 4 outStep, 5 imgs, 6 rows, 7 cols, 8 xColStep,
  // 9 xRowStep, 10 xImgStep, 11 dyStep; locals: 12 kk, 13 d, 14 xi, 15 xr, 16 xc, 17 img,
  // 18 row, 19 rowEnd, 20 rowBytes, 21 ot (i32); 22 dv, then taps splats, then the
  // accumulators (v128)
  const [x, dy, out, nk, outStep, imgs, rows, cols, xColStep, xRowStep, xImgStep, dyStep] = Array.from({ length: 12 }, (_, i) => i);
  const [kk, d, xi, xr, xc, img, row, rowEnd, rowBytes, ot, dv] = Array.from({ length: 11 }, (_, i) => 12 + i);
  const sp = (t: number) => dv + 1 + t;
  const acc = (t: number, j: number) => dv + 1 + taps + t * vectors + j;
  const lanes = Array.from({ length: vectors }, (_, j) => j);
  const tapList = Array.from({ length: taps }, (_, t) => t);
  const add = (local: number, by: number[]) => [...get(local), ...by, op.i32Add, ...set(local)];
  const zero = [...v(simd.const), ...Array<number>(16).fill(0)];
  return [
    ...get(cols), ...get(dyStep), op.i32Mul, ...set(rowBytes),
    op.block, op.void, op.loop, op.void,
    ...get(kk), ...get(nk), op.i32GeS, op.brIf, 1,
    ...tapList.flatMap((t) => lanes.flatMap((j) => [...zero, ...set(acc(t, j))])),
    ...get(dy), ...set(d), ...get(x), ...set(xi), ...i32Const(0), ...set(img),
    op.block, op.void, op.loop, op.void,
    ...get(img), ...get(imgs), op.i32GeS, op.brIf, 1,
    ...get(xi), ...set(xr), ...i32Const(0), ...set(row),
    op.block, op.void, op.loop, op.void,
    ...get(row), ...get(rows), op.i32GeS, op.brIf, 1,
    ...get(xr), ...set(xc), ...get(d), ...get(rowBytes), op.i32Add, ...set(rowEnd),
    // the pixels of one row: acc[t][j] += splat(x[t]) * dy[j]
    op.loop, op.void,
    ...tapList.flatMap((t) => [...get(xc), ...v(simd.load32Splat), 2, ...uleb(4 * t), ...set(sp(t))]),
    ...lanes.flatMap((j) => [
      ...get(d), ...load(16 * j), ...set(dv),
      ...tapList.flatMap((t) => multiplyAdd(acc(t, j), sp(t), dv)),
    ]),
    ...add(xc, get(xColStep)), ...add(d, get(dyStep)),
    ...get(d), ...get(rowEnd), op.i32LtU, op.brIf, 0,
    op.end,
    ...add(xr, get(xRowStep)), ...add(row, i32Const(1)),
    op.br, 0, op.end, op.end,
    ...add(xi, get(xImgStep)), ...add(img, i32Const(1)),
    op.br, 0, op.end, op.end,
    ...get(out), ...set(ot),
    ...tapList.flatMap((t) => [
      ...lanes.flatMap((j) => [...get(ot), ...get(ot), ...load(16 * j), ...get(acc(t, j)), ...v(simd.f32x4Add), ...store(16 * j)]),
      ...add(ot, get(outStep)),
    ]),
    ...add(x, i32Const(4 * taps)), ...get(ot), ...set(out), ...add(kk, i32Const(taps)),
    op.br, 0, op.end, op.end,
    op.end,
  ];
}

/**
 * inputGrad{16,4}x2(dy, w, dx, dyStep, wStep, imgs, rows, cols, dxColStep, dxRowStep,
 * dxImgStep): Conv2DBackpropInput for stride 1 without padding as a scatter, for one filter
 * tap and 4 * `vectors` input channels, over a tile of dy pixels:
 *   for each dy pixel q of the tile (its co = dyStep/4 values at dy + q*dyStep, contiguous):
 *     acc[c] = sum over o < co of dy[q, o] * w[o * wStep + c]       (float32)
 *     dx[q's cell + c] += acc[c]
 * w is the tap's [co, ci] slab (ci contiguous, rows wStep bytes apart) from the block's first
 * channel; the tile is imgs x rows x cols pixels, dx moving by dxColStep per pixel, dxRowStep
 * per row and dxImgStep per image from where each started. Pixels go `pixels` at a time
 * along a row (then one at a time for the rest), so each w vector is loaded once for all of
 * them: 16 channels x 2 pixels keeps 8 accumulators in locals, 6 loads per 8 f32x4.mul +
 * f32x4.add (no FMA in wasm SIMD), the shape of filterGrad16x2.
 */
/**
 * The image and row loops the direct convolution kernels share: for each of `imgs` images
 * (base += imgStep) and `rows` rows (rowBase += rowStep), `col` starts at the row and `left`
 * at `cols`, then `run(pixels)` walks the row `pixels` at a time and `run(1)` takes what is
 * left. Before the loops, `offset(p)` = p * colStep for p in 1..pixels-1.
 */
function imageRowLoops(o: {
  pixels: number; base: number; colStep: number; offset: (p: number) => number;
  img: number; imgs: number; imgBase: number; imgStep: number;
  row: number; rows: number; rowBase: number; rowStep: number;
  col: number; left: number; cols: number; run: (group: number) => number[];
}): number[] {
  const add = (local: number, by: number[]) => [...get(local), ...by, op.i32Add, ...set(local)];
  return [
    ...Array.from({ length: o.pixels - 1 }, (_, i) => [...get(o.colStep), ...i32Const(i + 1), op.i32Mul, ...set(o.offset(i + 1))]).flat(),
    ...get(o.base), ...set(o.imgBase),
    op.block, op.void, op.loop, op.void,
    ...get(o.img), ...get(o.imgs), op.i32GeS, op.brIf, 1,
    ...get(o.imgBase), ...set(o.rowBase), ...i32Const(0), ...set(o.row),
    op.block, op.void, op.loop, op.void,
    ...get(o.row), ...get(o.rows), op.i32GeS, op.brIf, 1,
    ...get(o.rowBase), ...set(o.col), ...get(o.cols), ...set(o.left),
    ...o.run(o.pixels),
    ...(o.pixels > 1 ? o.run(1) : []),
    ...add(o.rowBase, get(o.rowStep)), ...add(o.row, i32Const(1)),
    op.br, 0, op.end, op.end,
    ...add(o.imgBase, get(o.imgStep)), ...add(o.img, i32Const(1)),
    op.br, 0, op.end, op.end,
    op.end,
  ];
}

/**
 * The locals after a direct kernel's pixel offsets (the i32 local `last` + 1 .. + pixels - 1):
 * wv (one filter vector), sp(p) (pixel p's splatted input), acc(p, j) (pixel p's
 * accumulator for vector j); plus the helpers both kernels use.
 */
function pixelBlockLocals(last: number, pixels: number, vectors: number) {
  const wv = last + pixels;
  return {
    wv,
    sp: (p: number) => wv + 1 + p,
    acc: (p: number, j: number) => wv + 1 + pixels + p * vectors + j,
    lanes: Array.from({ length: vectors }, (_, j) => j),
    add: (local: number, by: number[]) => [...get(local), ...by, op.i32Add, ...set(local)],
    zero: [...v(simd.const), ...Array<number>(16).fill(0)],
  };
}

function inputGradBody(vectors: number, pixels: number): number[] {
  // params: 0 dy, 1 w, 2 dx, 3 dyStep, 4 wStep, 5 imgs, 6 rows, 7 cols, 8 dxColStep,
  // 9 dxRowStep, 10 dxImgStep; locals: 11 img, 12 xi, 13 xr, 14 row, 15 xc, 16 left, 17 dp,
  // 18 wp, 19 dEnd, 20 xo, then pixels - 1 dy offsets (i32); wv, pixels splats, then the
  // accumulators (v128)
  const [dy, w, dx, dyStep, wStep, imgs, rows, cols, dxColStep, dxRowStep, dxImgStep] = Array.from({ length: 11 }, (_, i) => i);
  const [img, xi, xr, row, xc, left, dp, wp, dEnd, xo] = Array.from({ length: 10 }, (_, i) => 11 + i);
  const dyOff = (p: number) => xo + p; // p * dyStep, p >= 1
  const { wv, sp, acc, lanes, add, zero } = pixelBlockLocals(xo, pixels, vectors);
  // Pixels `group` at a time while at least that many are left in the row.
  const run = (group: number) => {
    const ps = Array.from({ length: group }, (_, p) => p);
    return [
      op.block, op.void, op.loop, op.void,
      ...get(left), ...i32Const(group), op.i32LtU, op.brIf, 1,
      ...ps.flatMap((p) => lanes.flatMap((j) => [...zero, ...set(acc(p, j))])),
      ...get(dy), ...tee(dp), ...get(dyStep), op.i32Add, ...set(dEnd), ...get(w), ...set(wp),
      op.loop, op.void,
      ...ps.flatMap((p) => [...get(dp), ...(p > 0 ? [...get(dyOff(p)), op.i32Add] : []), ...v(simd.load32Splat), 2, 0, ...set(sp(p))]),
      ...lanes.flatMap((j) => [
        ...get(wp), ...load(16 * j), ...set(wv),
        ...ps.flatMap((p) => multiplyAdd(acc(p, j), sp(p), wv)),
      ]),
      ...add(dp, i32Const(4)), ...add(wp, get(wStep)),
      ...get(dp), ...get(dEnd), op.i32LtU, op.brIf, 0,
      op.end,
      ...get(xc), ...set(xo),
      ...ps.flatMap((p) => [
        ...lanes.flatMap((j) => [...get(xo), ...get(xo), ...load(16 * j), ...get(acc(p, j)), ...v(simd.f32x4Add), ...store(16 * j)]),
        ...add(xo, get(dxColStep)),
      ]),
      ...get(xo), ...set(xc),
      ...add(dy, [...get(dyStep), ...i32Const(group), op.i32Mul]), ...add(left, i32Const(-group)),
      op.br, 0, op.end, op.end,
    ];
  };
  return imageRowLoops({
    pixels, base: dx, colStep: dyStep, offset: dyOff, img, imgs, imgBase: xi, imgStep: dxImgStep,
    row, rows, rowBase: xr, rowStep: dxRowStep, col: xc, left, cols, run,
  });
}

/**
 * convRows{16,4}x2(x, w, y, segBytes, wStep, imgs, rows, cols, xColStep, xRowStep, xImgStep,
 * yStep, kh): Conv2D for stride 1 without padding, straight from x in NHWC (no im2col), over
 * a tile of output pixels for 4 * `vectors` output channels:
 *   for each output pixel q of the tile (its window's top-left cell at x + q's offset):
 *     y[q, c] = sum over r < kh, k < segBytes/4 of x[cell + r*xRowStep + 4k] * w[(r*segBytes/4 + k) * wStep + c]
 * i.e. per filter row the window's kw*ci consecutive floats of x against the filter's rows
 * (w: [kh*kw*ci, co] from the block's first channel, rows wStep bytes apart), float32 sums.
 * The tile is imgs x rows x cols pixels: x moves by xColStep per pixel, xRowStep per row
 * and xImgStep per image from where each started; y by yStep per pixel, contiguously.
 * Pixels go two at a time along a row (then one alone), as in inputGradBody.
 */
function convRowsBody(vectors: number, pixels: number): number[] {
  // params: 0 x, 1 w, 2 y, 3 segBytes, 4 wStep, 5 imgs, 6 rows, 7 cols, 8 xColStep,
  // 9 xRowStep, 10 xImgStep, 11 yStep, 12 kh; locals: 13 img, 14 xi, 15 xr, 16 row, 17 xc,
  // 18 left, 19 xp, 20 wp, 21 xEnd, 22 seg, 23 r, then pixels - 1 x offsets (i32); wv,
  // pixels splats, then the accumulators (v128)
  const [x, w, y, segBytes, wStep, imgs, rows, cols, xColStep, xRowStep, xImgStep, yStep, kh] = Array.from({ length: 13 }, (_, i) => i);
  const [img, xi, xr, row, xc, left, xp, wp, xEnd, seg, r] = Array.from({ length: 11 }, (_, i) => 13 + i);
  const xOff = (p: number) => r + p; // p * xColStep, p >= 1
  const { wv, sp, acc, lanes, add, zero } = pixelBlockLocals(r, pixels, vectors);
  const run = (group: number) => {
    const ps = Array.from({ length: group }, (_, p) => p);
    return [
      op.block, op.void, op.loop, op.void,
      ...get(left), ...i32Const(group), op.i32LtU, op.brIf, 1,
      ...ps.flatMap((p) => lanes.flatMap((j) => [...zero, ...set(acc(p, j))])),
      ...get(w), ...set(wp), ...get(xc), ...set(seg), ...i32Const(0), ...set(r),
      op.loop, op.void,
      ...get(seg), ...tee(xp), ...get(segBytes), op.i32Add, ...set(xEnd),
      op.loop, op.void,
      ...ps.flatMap((p) => [...get(xp), ...(p > 0 ? [...get(xOff(p)), op.i32Add] : []), ...v(simd.load32Splat), 2, 0, ...set(sp(p))]),
      ...lanes.flatMap((j) => [
        ...get(wp), ...load(16 * j), ...set(wv),
        ...ps.flatMap((p) => multiplyAdd(acc(p, j), sp(p), wv)),
      ]),
      ...add(xp, i32Const(4)), ...add(wp, get(wStep)),
      ...get(xp), ...get(xEnd), op.i32LtU, op.brIf, 0,
      op.end,
      ...add(seg, get(xRowStep)), ...add(r, i32Const(1)),
      ...get(r), ...get(kh), op.i32LtU, op.brIf, 0,
      op.end,
      ...ps.flatMap((p) => [
        ...lanes.flatMap((j) => [...get(y), ...get(acc(p, j)), ...store(16 * j)]),
        ...add(y, get(yStep)),
      ]),
      ...add(xc, [...get(xColStep), ...i32Const(group), op.i32Mul]), ...add(left, i32Const(-group)),
      op.br, 0, op.end, op.end,
    ];
  };
  return imageRowLoops({
    pixels, base: x, colStep: xColStep, offset: xOff, img, imgs, imgBase: xi, imgStep: xImgStep,
    row, rows, rowBase: xr, rowStep: xRowStep, col: xc, left, cols, run,
  });
}

/**
 * gemm16x2, gemm4x4(a, b, c, rows, blocks, k, aRowStep, aColStep, bRowStep, cRowStep,
 * cColStep): a matrix product C = A x B for `rows` rows of C and `blocks` blocks of 16
 * (gemm16x2) or 4 columns:
 *   C(m, n) = sum over kk < k of A(m, kk) * B[kk, n]            (float32, kk in order)
 * A(m, kk) is the float at a + m*aRowStep + kk*aColStep, so A and its transpose are read
 * alike (TN: no transposed copy); B rows are bRowStep bytes apart, each row's columns
 * contiguous; k >= 1. C(m, n) goes to c + m*cRowStep + n*cColStep: one v128.store per 4
 * columns when cColStep is 4, else one f32.store per value (C written transposed, as
 * BatchMatMul's transposeB path computes C^T; a store per 2*k multiply-adds).
 * Per row group and column block the accumulators stay in locals while kk runs: each B
 * vector is loaded once for the group's splatted A values (16 columns x 2 rows: 8
 * accumulators, 2 splats + 4 loads per 8 multiply-adds, the shape of convRows16x2). Rows go
 * 2 (gemm16x2) or 4 (gemm4x4) at a time, then one at a time for the rest, like the pixels of
 * convRowsBody; the column blocks of one row group run back to back while its A values are
 * in L1.
 */
function gemmBody(vectors: number, rowGroup: number): number[] {
  // params: 0 a, 1 b, 2 c, 3 rows, 4 blocks, 5 k, 6 aRowStep, 7 aColStep, 8 bRowStep,
  // 9 cRowStep, 10 cColStep; locals: 11 left, 12 blk, 13 ap, 14 bp, 15 kk, 16 bb, 17 cc, then
  // rowGroup - 1 A row offsets (i32); wv, rowGroup splats, then the accumulators (v128)
  const [a, b, c, rowCount, blocks, k, aRowStep, aColStep, bRowStep, cRowStep, cColStep] = Array.from({ length: 11 }, (_, i) => i);
  const [left, blk, ap, bp, kk, bb, cc] = Array.from({ length: 7 }, (_, i) => 11 + i);
  const aOff = (p: number) => cc + p; // p * aRowStep, p >= 1
  const { wv, sp, acc, lanes, add, zero } = pixelBlockLocals(cc, rowGroup, vectors);
  // Rows `group` at a time while at least that many are left.
  const run = (group: number) => {
    const ps = Array.from({ length: group }, (_, p) => p);
    // C's rows of this block from cc, cRowStep apart (ap and bp are free again: cursors)
    const storeVectors = ps.flatMap((p) => [
      ...lanes.flatMap((j) => [...get(ap), ...get(acc(p, j)), ...store(16 * j)]),
      ...add(ap, get(cRowStep)),
    ]);
    const storeValues = ps.flatMap((p) => [
      ...get(ap), ...set(bp),
      ...lanes.flatMap((j) => [0, 1, 2, 3].flatMap((lane) => [
        ...get(bp), ...get(acc(p, j)), ...v(simd.f32x4ExtractLane), lane, op.f32Store, 2, 0,
        ...add(bp, get(cColStep)),
      ])),
      ...add(ap, get(cRowStep)),
    ]);
    return [
      op.block, op.void, op.loop, op.void,
      ...get(left), ...i32Const(group), op.i32LtU, op.brIf, 1,
      ...get(b), ...set(bb), ...get(c), ...set(cc), ...i32Const(0), ...set(blk),
      op.block, op.void, op.loop, op.void,
      ...get(blk), ...get(blocks), op.i32GeU, op.brIf, 1,
      ...ps.flatMap((p) => lanes.flatMap((j) => [...zero, ...set(acc(p, j))])),
      ...get(a), ...set(ap), ...get(bb), ...set(bp), ...get(k), ...set(kk),
      op.loop, op.void,
      ...ps.flatMap((p) => [...get(ap), ...(p > 0 ? [...get(aOff(p)), op.i32Add] : []), ...v(simd.load32Splat), 2, 0, ...set(sp(p))]),
      ...lanes.flatMap((j) => [
        ...get(bp), ...load(16 * j), ...set(wv),
        ...ps.flatMap((p) => multiplyAdd(acc(p, j), sp(p), wv)),
      ]),
      ...add(ap, get(aColStep)), ...add(bp, get(bRowStep)),
      ...get(kk), ...i32Const(-1), op.i32Add, ...tee(kk), op.brIf, 0,
      op.end,
      ...get(cc), ...set(ap),
      ...get(cColStep), ...i32Const(4), op.i32Eq, op.if, op.void, ...storeVectors, op.else, ...storeValues, op.end,
      ...add(bb, i32Const(16 * vectors)), ...add(cc, [...get(cColStep), ...i32Const(4 * vectors), op.i32Mul]), ...add(blk, i32Const(1)),
      op.br, 0, op.end, op.end,
      ...add(a, [...get(aRowStep), ...i32Const(group), op.i32Mul]),
      ...add(c, [...get(cRowStep), ...i32Const(group), op.i32Mul]),
      ...add(left, i32Const(-group)),
      op.br, 0, op.end, op.end,
    ];
  };
  return [
    ...Array.from({ length: rowGroup - 1 }, (_, i) => [...get(aRowStep), ...i32Const(i + 1), op.i32Mul, ...set(aOff(i + 1))]).flat(),
    ...get(rowCount), ...set(left),
    ...run(rowGroup),
    ...(rowGroup > 1 ? run(1) : []),
    op.end,
  ];
}

/** f32x4.max: the lane-wise maximum, NaN if either lane is NaN, max(-0, +0) = +0. */
const F32X4_MAX = 0xe9;

/**
 * biasReluRows(y, end, rowBytes, bias): y = max(y + bias[c], 0) in place over channels-last
 * rows from y up to end (byte offsets), 4 channels at a time; bias: float32[C]. A float32
 * add then f32x4.max (NaN stays NaN, -0 becomes +0): the values of the separate Add and Relu
 * ops (cpu: Math.max(0, x)). Conv2D's bias and ReLU epilogue, run on each tile of output
 * pixels right after the convolution wrote it, while it is in L1 (conv2d.ts).
 */
function biasReluRowsBody(): number[] {
  // params: 0 y, 1 end, 2 rowBytes, 3 bias; locals: 4 rowEnd, 5 gb
  const [y, end, rowB, bias, rowEnd, gb] = Array.from({ length: 6 }, (_, i) => i);
  const add = (local: number, by: number[]) => [...get(local), ...by, op.i32Add, ...set(local)];
  const zero = [...v(simd.const), ...Array<number>(16).fill(0)];
  return [
    op.block, op.void, op.loop, op.void,
    ...get(y), ...get(end), op.i32GeU, op.brIf, 1,
    ...get(y), ...get(rowB), op.i32Add, ...set(rowEnd),
    ...get(bias), ...set(gb),
    op.block, op.void, op.loop, op.void,
    ...get(y), ...get(rowEnd), op.i32GeU, op.brIf, 1,
    ...get(y), ...get(y), ...load(), ...get(gb), ...load(), ...v(simd.f32x4Add), ...zero, ...v(F32X4_MAX), ...store(),
    ...add(y, i32Const(16)), ...add(gb, i32Const(16)),
    op.br, 0, op.end, op.end,
    op.br, 0, op.end, op.end,
    op.end,
  ];
}

/**
 * reluBiasGradRows(dy, y, out, end, rowBytes, acc): the backward pass of y = relu(conv + b)
 * up to the convolution, over channels-last rows from dy up to end (byte offsets; y and out
 * move along), 4 channels at a time:
 *   out = dy * step(y)       step = y > 0 ? 1 : 0, NaN for NaN y (reluGrad's values; y > 0
 *                            exactly where the pre-activation is)
 *   acc[c] += out            (float64[C]: the bias gradient, summed over N, H, W)
 * One pass instead of Relu's gradient and then a Sum over the same tensor (gradients.ts).
 */
function reluBiasGradRowsBody(): number[] {
  // params: 0 dy, 1 y, 2 out, 3 end, 4 rowBytes, 5 acc; locals: 6 rowEnd, 7 ga (i32);
  // 8 yv, 9 step, 10 g (v128)
  const [dy, y, out, end, rowB, acc, rowEnd, ga, yv, step, g] = Array.from({ length: 11 }, (_, i) => i);
  const add = (local: number, by: number[]) => [...get(local), ...by, op.i32Add, ...set(local)];
  const splat = (f: number) => {
    const bytes = Array.from(new Uint8Array(new Float32Array([f]).buffer));
    return [...v(simd.const), ...bytes, ...bytes, ...bytes, ...bytes];
  };
  // As elementwiseGradBody's relu factor: bitselect(1, 0, y > 0), then y itself where y is NaN.
  const factor = [
    ...splat(1), ...splat(0), ...get(yv), ...splat(0), ...v(simd.f32x4Gt), ...v(simd.bitselect), ...set(step),
    ...get(yv), ...get(step), ...get(yv), ...get(yv), ...v(simd.f32x4Ne), ...v(simd.bitselect),
  ];
  return [
    ...channelRowLoops({
      ptr: dy, end, rowBytes: rowB, rowEnd, acc, ga,
      body: [
        ...get(y), ...load(), ...set(yv),
        ...get(dy), ...load(), ...factor, ...v(simd.f32x4Mul), ...set(g),
        ...get(out), ...get(g), ...store(),
        ...addToFloat64(ga, g),
      ],
      advance: [...add(dy, i32Const(16)), ...add(y, i32Const(16)), ...add(out, i32Const(16)), ...add(ga, i32Const(32))],
    }),
    op.end,
  ];
}

interface FuncSpec {
  name: string;
  params: number[]; // value types
  locals: Array<[number, number]>; // [count, type]
  body: number[];
}

const ints = (n: number): number[] => Array<number>(n).fill(I32);

/**
 * [vectors, rows] of the gemm kernels: 16 columns x 2 rows, and 4 columns x 4 rows for the
 * column tail. Measured on dense_1's products (32 x 2304 x 128, FMA): 16x2 ~39 GFLOP/s
 * (8x4 about the same, 16x3 and 16x4 ~27: 16 accumulators spill); 4x4 ~18-28, 4x2 ~11-23.
 */
const GEMM_SHAPES: Array<[number, number]> = [[4, 2], [1, 4]];

/** The module, importing the backend's memory as it is: plain, or shared (threaded build, max 4 GiB). */
function buildModule(shared: boolean, fma = false): Uint8Array {
  assemblingWithFma = fma;
  try {
    return assembleModule(shared);
  } finally {
    assemblingWithFma = false;
  }
}

function assembleModule(shared: boolean): Uint8Array {
  const funcs: FuncSpec[] = [
    { name: 'pool2x2Row', params: ints(6), locals: [[2, I32], [7, V128]], body: pool2x2RowBody(false) },
    { name: 'bnGradRows', params: ints(8), locals: [[4, I32], [4, V128]], body: bnGradRowsBody() },
    { name: 'sumRows', params: ints(4), locals: [[2, I32], [1, V128]], body: sumRowsBody() },
    { name: 'gatherRuns', params: ints(7), locals: [[5, I32]], body: gatherRunsBody() },
    { name: 'affineRows', params: ints(6), locals: [[2, I32]], body: affineRowsBody(false) },
    { name: 'addRun', params: ints(3), locals: [[1, I32]], body: addRunBody() },
    { name: 'reluGrad', params: ints(4), locals: [[2, V128]], body: elementwiseGradBody('relu') },
    { name: 'squareGrad', params: ints(4), locals: [[2, V128]], body: elementwiseGradBody('square') },
    ...[[4, 2], [4, 1], [1, 2], [1, 1]].map(([vectors, taps]): FuncSpec => ({
      name: `filterGrad${4 * vectors}x${taps}`, params: ints(12), locals: [[10, I32], [1 + taps + vectors * taps, V128]],
      body: filterGradBody(vectors, taps),
    })),
    { name: 'sumSqRows', params: ints(4), locals: [[2, I32], [3, V128]], body: sumSqRowsBody() },
    { name: 'addAffineRows', params: ints(6), locals: [[2, I32]], body: affineRowsBody(true) },
    { name: 'adamUpdate', params: [...ints(8), ...Array<number>(8).fill(F32)], locals: [[1, I32], [11, V128]], body: adamUpdateBody(false) },
    { name: 'adamUpdate2', params: [...ints(9), ...Array<number>(10).fill(F32)], locals: [[1, I32], [13, V128]], body: adamUpdateBody(true) },
    ...[[4, 2], [1, 2]].map(([vectors, pixels]): FuncSpec => ({
      name: `inputGrad${4 * vectors}x${pixels}`, params: ints(11), locals: [[10 + pixels - 1, I32], [1 + pixels + vectors * pixels, V128]],
      body: inputGradBody(vectors, pixels),
    })),
    ...[[4, 2], [1, 2]].map(([vectors, pixels]): FuncSpec => ({
      name: `convRows${4 * vectors}x${pixels}`, params: ints(13), locals: [[11 + pixels - 1, I32], [1 + pixels + vectors * pixels, V128]],
      body: convRowsBody(vectors, pixels),
    })),
    ...GEMM_SHAPES.map(([vectors, rowGroup]): FuncSpec => ({
      name: `gemm${4 * vectors}x${rowGroup}`, params: ints(11), locals: [[7 + rowGroup - 1, I32], [1 + rowGroup + vectors * rowGroup, V128]],
      body: gemmBody(vectors, rowGroup),
    })),
    { name: 'biasReluRows', params: ints(4), locals: [[2, I32]], body: biasReluRowsBody() },
    { name: 'reluBiasGradRows', params: ints(6), locals: [[2, I32], [3, V128]], body: reluBiasGradRowsBody() },
    { name: 'pool2x2ReluRow', params: ints(8), locals: [[3, I32], [8, V128]], body: pool2x2RowBody(true) },
    { name: 'anyNaNRuns', params: ints(5), locals: [[2, I32], [2, V128]], body: anyNaNRunsBody() },
  ];
  const types = funcs.map((f) => [0x60, ...vec(f.params.map((t) => [t])), ...vec([])]);
  const memoryImport = shared
    ? [...str('env'), ...str('memory'), 0x02, 0x03, ...uleb(1), ...uleb(65536)]
    : [...str('env'), ...str('memory'), 0x02, 0x00, ...uleb(1)];
  const codes = funcs.map((f) => {
    const body = [...vec(f.locals.map(([count, type]) => [...uleb(count), type])), ...f.body];
    return [...uleb(body.length), ...body];
  });
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(types)),
    ...section(2, vec([memoryImport])),
    ...section(3, vec(funcs.map((_, i) => uleb(i)))),
    ...section(7, vec(funcs.map((f, i) => [...str(f.name), 0x00, ...uleb(i)]))),
    ...section(10, vec(codes)),
  ]);
}

/** Byte offsets and counts, see filterGradBody. */
export type FilterGradArgs = [
  x: number, dy: number, out: number, nk: number, outStep: number, imgs: number, rows: number, cols: number,
  xColStep: number, xRowStep: number, xImgStep: number, dyStep: number,
];

/** Byte offsets and counts, see inputGradBody. */
export type InputGradArgs = [
  dy: number, w: number, dx: number, dyStep: number, wStep: number, imgs: number, rows: number, cols: number,
  dxColStep: number, dxRowStep: number, dxImgStep: number,
];

/** Byte offsets and counts, see convRowsBody. */
export type ConvRowsArgs = [
  x: number, w: number, y: number, segBytes: number, wStep: number, imgs: number, rows: number, cols: number,
  xColStep: number, xRowStep: number, xImgStep: number, yStep: number, kh: number,
];

/** Byte offsets and counts, see gemmBody. */
export type GemmArgs = [
  a: number, b: number, c: number, rows: number, blocks: number, k: number,
  aRowStep: number, aColStep: number, bRowStep: number, cRowStep: number, cColStep: number,
];

/**
 * Where channel c's first value sits in the float64 pair layout bnGradRows and sumSqRows
 * write (per 4 channels: 4 of the first sum, then 4 of the second); the second is at + 4.
 */
export function pairSlot(c: number): number {
  return (c >> 2) * 8 + (c & 3);
}

export interface SimdKernels {
  pool2x2Row(x: number, g: number, dx: number, ow: number, chBytes: number, rowBytes: number): void;
  bnGradRows(dy: number, x: number, dx: number, end: number, rowBytes: number, k: number, mean: number, acc: number): void;
  sumRows(x: number, end: number, rowBytes: number, acc: number): void;
  reluGrad(dy: number, x: number, out: number, end: number): void;
  squareGrad(dy: number, x: number, out: number, end: number): void;
  addRun(src: number, dst: number, bytes: number): void;
  affineRows(x: number, out: number, end: number, rowBytes: number, k: number, a: number): void;
  gatherRuns(src: number, dst: number, planes: number, rows: number, runBytes: number, rowStride: number, planeStride: number): void;
  filterGrad16x2(...args: FilterGradArgs): void;
  filterGrad16x1(...args: FilterGradArgs): void;
  filterGrad4x2(...args: FilterGradArgs): void;
  filterGrad4x1(...args: FilterGradArgs): void;
  sumSqRows(x: number, end: number, rowBytes: number, acc: number): void;
  addAffineRows(x: number, out: number, end: number, rowBytes: number, k: number, a: number): void;
  inputGrad16x2(...args: InputGradArgs): void;
  inputGrad4x2(...args: InputGradArgs): void;
  convRows16x2(...args: ConvRowsArgs): void;
  convRows4x2(...args: ConvRowsArgs): void;
  gemm16x2(...args: GemmArgs): void;
  gemm4x4(...args: GemmArgs): void;
  biasReluRows(y: number, end: number, rowBytes: number, bias: number): void;
  reluBiasGradRows(dy: number, y: number, out: number, end: number, rowBytes: number, acc: number): void;
  pool2x2ReluRow(x: number, g: number, dx: number, ow: number, chBytes: number, rowBytes: number, acc: number, nan: number): void;
  anyNaNRuns(x: number, end: number, step: number, runBytes: number, nan: number): void;
  adamUpdate(
    value: number, m: number, v: number, g: number, outValue: number, outM: number, outV: number, bytes: number,
    b1: number, c1: number, b2: number, c2: number, oma1: number, oma2: number, eps: number, negLr: number,
  ): void;
  adamUpdate2(
    value: number, m: number, v: number, g: number, g2: number, outValue: number, outM: number, outV: number, bytes: number,
    w: number, w2: number, b1: number, c1: number, b2: number, c2: number, oma1: number, oma2: number, eps: number, negLr: number,
  ): void;
}

/** The part of the WebAssembly global used here (this project's lib has no DOM types). */
interface WasmApi {
  Memory: new (...args: never[]) => object;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: object };
  validate(bytes: Uint8Array): boolean;
}
const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

const byBackend = new WeakMap<object, SimdKernels | null>();

/** The SIMD kernels bound to this backend's heap, or undefined without wasm SIMD. */
export function simdKernels(b: WasmBackendLike): SimdKernels | undefined {
  let k = byBackend.get(b);
  if (k === undefined) {
    k = null;
    // The single-threaded build exports its memory; the threaded one creates it (wasmMemory).
    const module = b.wasm as unknown as { asm?: { memory?: unknown }; wasmMemory?: unknown };
    const memory = module.asm?.memory ?? module.wasmMemory;
    const shared = typeof SharedArrayBuffer !== 'undefined' && (memory as { buffer?: unknown } | undefined)?.buffer instanceof SharedArrayBuffer;
    const fmaBytes = useFma() ? buildModule(shared, true) : undefined;
    const bytes = fmaBytes && WA.validate(fmaBytes) ? fmaBytes : buildModule(shared);
    if (memory instanceof WA.Memory && WA.validate(bytes)) {
      try {
        const instance = new WA.Instance(new WA.Module(bytes), { env: { memory } });
        k = instance.exports as unknown as SimdKernels;
      } catch {
        k = null; // a memory this import does not match: stay in JS
      }
    }
    byBackend.set(b, k);
  }
  return k ?? undefined;
}
