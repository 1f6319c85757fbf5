/**
 * A few loops in wasm SIMD that run on the wasm backend's own heap (the module imports the
 * backend's WebAssembly.Memory, so pointers are the byte offsets of tensors on that heap).
 * JS did these at ~20 ns per element where the branches are data-dependent; SIMD has none.
 *
 * The module is assembled here from named opcodes (no toolchain, no binary blob): one
 * function per kernel, each documented with what it computes. Where the runtime lacks
 * wasm SIMD, `simdKernels()` returns undefined and callers keep their JS loops.
 */
import type { WasmBackendLike } from './heap.js';

// ------------------------------------------------------------------ opcodes (subset) --
const I32 = 0x7f;
const V128 = 0x7b;
const op = {
  block: 0x02, loop: 0x03, br: 0x0c, brIf: 0x0d, end: 0x0b, void: 0x40,
  localGet: 0x20, localSet: 0x21, localTee: 0x22,
  i32Const: 0x41, i32Add: 0x6a, i32GeS: 0x4e, i32GeU: 0x4f,
} as const;
/** SIMD instructions: 0xfd then the sub-opcode (all < 128 here, so one LEB byte). */
const simd = {
  load: 0x00, store: 0x0b, const: 0x0c, f32x4Gt: 0x44,
  and: 0x4e, andnot: 0x4f, or: 0x50, bitselect: 0x52,
} as const;

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
const v = (sub: number) => [0xfd, ...uleb(sub)];
/** v128.load / v128.store with a 4-byte alignment hint (tensors are float32-aligned). */
const load = () => [...v(simd.load), 2, 0];
const store = () => [...v(simd.store), 2, 0];
const i32Const = (n: number) => [op.i32Const, ...sleb(n)];

/**
 * pool2x2Row(x, g, dx, ow, chBytes, rowBytes): one output row of MaxPoolGrad for 2x2
 * windows, stride 2, channels a multiple of 4. x and dx point at input row 2y (the window's
 * top-left cell), g at the output row; for each window and 4 channels at a time:
 * best = -inf; m_k = v_k > best, best = m_k ? v_k : best for the cells in row-major order
 * (so NaN never wins, and the first of equal maxima does); the last cell whose m_k holds is
 * the winner and gets g, the others 0. The same routing as the JS loop and the cpu backend.
 */
function pool2x2RowBody(): number[] {
  // params: 0 x, 1 g, 2 dx, 3 ow, 4 chBytes, 5 rowBytes; locals: 6 end, 7 xo,
  // 8 best, 9 m0, 10 m1, 11 m2, 12 m3, 13 cell, 14 gv
  const [x, g, dx, ow, chB, rowB, end, xo, best, m0, m1, m2, m3, cell, gv] = Array.from({ length: 15 }, (_, i) => i);
  const negInf = [...v(simd.const), ...Array.from({ length: 4 }, () => [0x00, 0x00, 0x80, 0xff]).flat()];
  // Address x (or dx) + offsets.
  const addr = (base: number, ...offsets: number[]) => [...get(base), ...offsets.flatMap((o) => [...get(o), op.i32Add])];
  const compare = (address: number[], mask: number) => [
    ...address, ...load(), ...tee(cell), ...get(best), ...v(simd.f32x4Gt), ...set(mask),
    // best = mask ? cell : best
    ...get(cell), ...get(best), ...get(mask), ...v(simd.bitselect), ...set(best),
  ];
  // dx[address] = gv & mask & ~later; later |= mask
  const route = (address: number[], mask: number) => [
    ...address, ...get(gv), ...get(mask), ...get(m3), ...v(simd.andnot), ...v(simd.and), ...store(),
    ...get(m3), ...get(mask), ...v(simd.or), ...set(m3),
  ];
  const advance = (local: number, by: number[]) => [...get(local), ...by, op.i32Add, ...set(local)];
  return [
    op.block, op.void,
    op.loop, op.void,
    ...get(xo), ...get(ow), op.i32GeS, op.brIf, 1,
    ...get(x), ...get(chB), op.i32Add, ...set(end),
    op.block, op.void,
    op.loop, op.void,
    ...get(x), ...get(end), op.i32GeU, op.brIf, 1,
    ...negInf, ...set(best),
    ...compare(addr(x), m0),
    ...compare(addr(x, chB), m1),
    ...compare(addr(x, rowB), m2),
    ...compare(addr(x, rowB, chB), m3),
    ...get(g), ...load(), ...set(gv),
    // The last cell's mask wins outright; each earlier one only where no later one held.
    ...addr(dx, rowB, chB), ...get(gv), ...get(m3), ...v(simd.and), ...store(),
    ...route(addr(dx, rowB), m2),
    ...route(addr(dx, chB), m1),
    ...route(addr(dx), m0),
    ...advance(x, i32Const(16)), ...advance(dx, i32Const(16)), ...advance(g, i32Const(16)),
    op.br, 0,
    op.end, op.end,
    // Next window: skip the second column of this one.
    ...advance(x, get(chB)), ...advance(dx, get(chB)), ...advance(xo, i32Const(1)),
    op.br, 0,
    op.end, op.end,
    op.end,
  ];
}

function buildModule(): Uint8Array {
  const funcType = [0x60, ...vec([[I32], [I32], [I32], [I32], [I32], [I32]]), ...vec([])];
  const memoryImport = [...str('env'), ...str('memory'), 0x02, 0x00, ...uleb(1)];
  const locals = vec([[...uleb(2), I32], [...uleb(7), V128]]);
  const body = [...locals, ...pool2x2RowBody()];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([funcType])),
    ...section(2, vec([memoryImport])),
    ...section(3, vec([uleb(0)])),
    ...section(7, vec([[...str('pool2x2Row'), 0x00, ...uleb(0)]])),
    ...section(10, vec([[...uleb(body.length), ...body]])),
  ]);
}

export interface SimdKernels {
  pool2x2Row(x: number, g: number, dx: number, ow: number, chBytes: number, rowBytes: number): void;
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
    const memory = (b.wasm as unknown as { asm?: { memory?: unknown } }).asm?.memory;
    const bytes = buildModule();
    if (memory instanceof WA.Memory && WA.validate(bytes)) {
      try {
        const instance = new WA.Instance(new WA.Module(bytes), { env: { memory } });
        k = instance.exports as unknown as SimdKernels;
      } catch {
        k = null; // e.g. a shared (threaded) memory this import does not declare: stay in JS
      }
    }
    byBackend.set(b, k);
  }
  return k ?? undefined;
}
