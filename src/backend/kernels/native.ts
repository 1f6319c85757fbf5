/**
 * Optional native twins of the hottest wasm SIMD kernels: convRows16x2, filterGrad16x2,
 * filterGrad16x1, inputGrad16x2 and gemm16x2, in C with x86 intrinsics 512 bits wide
 * (AVX-512F) or 256 (AVX2), where wasm SIMD is 128. native/ holds the addon; `npm install`
 * builds it (scripts/build-native.js) where node-gyp and a C compiler work, and nothing
 * needs it: without it, on a CPU without AVX2, or with SVHN_NATIVE_KERNELS=0, the wasm
 * kernels run.
 *
 * The native kernels give the wasm kernels' bits (native/loops.h: each output value's
 * float32 steps in the same order), fused multiply-adds where the wasm FMA module runs,
 * a multiply then an add where the plain one does (test/backend/native.test.ts). They work
 * on the wasm backend's heap itself, through a Uint8Array over its memory's buffer, with the
 * same byte offsets the wasm exports take.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { ConvRowsArgs, FilterGradArgs, GemmArgs, InputGradArgs, SimdKernels } from './simd.js';

/** One variant's kernels as the addon exports them: the heap first, then the wasm export's arguments. */
export interface NativeKernelSet {
  convRows16(heap: Uint8Array, ...args: ConvRowsArgs): void;
  filterGrad16(heap: Uint8Array, ...args: FilterGradArgs): void;
  inputGrad16(heap: Uint8Array, ...args: InputGradArgs): void;
  gemm16(heap: Uint8Array, ...args: GemmArgs): void;
}

/** The addon's variants, widest first; it exports those this CPU runs. */
export const NATIVE_VARIANTS = ['avx512-fused', 'avx512-plain', 'avx2-fused', 'avx2-plain'] as const;
export type NativeVariant = (typeof NATIVE_VARIANTS)[number];
export type NativeAddon = Partial<Record<NativeVariant, NativeKernelSet>>;

/** The same from src/backend/kernels (tests) and dist/backend/kernels (the CLI). */
const ADDON_FILE = fileURLToPath(new URL('../../../native/build/Release/svhn_kernels.node', import.meta.url));

let addon: NativeAddon | null | undefined;

/** The addon, loaded once per thread; undefined where it was not built or does not load. */
export function nativeAddon(): NativeAddon | undefined {
  if (addon === undefined) {
    try {
      addon = createRequire(import.meta.url)(ADDON_FILE) as NativeAddon;
    } catch {
      addon = null; // not built (no compiler, not x86-64, a failed install): the wasm kernels
    }
  }
  return addon ?? undefined;
}

/**
 * The widest native kernels that compute like the wasm module in use (`fused`: the FMA
 * one), or undefined: no addon, no AVX2, or SVHN_NATIVE_KERNELS=0 (=avx2: the 256-bit ones). A CPU without FMA runs
 * the FMA module's relaxed_madd as a multiply and an add (V8), so the plain kernels then.
 */
export function nativeKernels(fused: boolean): NativeKernelSet | undefined {
  const setting = process.env['SVHN_NATIVE_KERNELS'];
  if (setting === '0') return undefined;
  const a = nativeAddon();
  if (!a) return undefined;
  // SVHN_NATIVE_KERNELS=avx2: the 256-bit kernels even where AVX-512 is there (as a host without it runs)
  const wide = setting === 'avx2' ? undefined : a;
  const plain = wide?.['avx512-plain'] ?? a['avx2-plain'];
  return fused ? wide?.['avx512-fused'] ?? a['avx2-fused'] ?? plain : plain;
}

export type NativeSimdKernels = Pick<SimdKernels, 'convRows16x2' | 'filterGrad16x2' | 'filterGrad16x1' | 'inputGrad16x2' | 'gemm16x2'>;

/**
 * `native`'s kernels on `memory` (a WebAssembly.Memory, plain or shared) in the wasm
 * exports' shape. The heap view is made once and again only when the memory has grown
 * (which replaces its buffer); the arguments pass through as they are, no array per call.
 */
export function bindNativeKernels(native: NativeKernelSet, memory: { buffer: ArrayBufferLike }): NativeSimdKernels {
  let heap = new Uint8Array(memory.buffer);
  const view = () => (heap.buffer === memory.buffer ? heap : (heap = new Uint8Array(memory.buffer)));
  const filterGrad = (...[x, dy, out, nk, outStep, imgs, rows, cols, xColStep, xRowStep, xImgStep, dyStep]: FilterGradArgs) =>
    native.filterGrad16(view(), x, dy, out, nk, outStep, imgs, rows, cols, xColStep, xRowStep, xImgStep, dyStep);
  return {
    convRows16x2: (x, w, y, segBytes, wStep, imgs, rows, cols, xColStep, xRowStep, xImgStep, yStep, kh) =>
      native.convRows16(view(), x, w, y, segBytes, wStep, imgs, rows, cols, xColStep, xRowStep, xImgStep, yStep, kh),
    // The native loop takes any number of taps: pairs and a single one alike.
    filterGrad16x2: filterGrad,
    filterGrad16x1: filterGrad,
    inputGrad16x2: (dy, w, dx, dyStep, wStep, imgs, rows, cols, dxColStep, dxRowStep, dxImgStep) =>
      native.inputGrad16(view(), dy, w, dx, dyStep, wStep, imgs, rows, cols, dxColStep, dxRowStep, dxImgStep),
    gemm16x2: (a, b, c, rows, blocks, k, aRowStep, aColStep, bRowStep, cRowStep, cColStep) =>
      native.gemm16(view(), a, b, c, rows, blocks, k, aRowStep, aColStep, bRowStep, cRowStep, cColStep),
  };
}
