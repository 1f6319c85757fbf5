/*
 * What every kernel file here shares: wasm SIMD's intrinsics, the export and pointer
 * conventions, and the few steps several loops take.
 *
 * To change a loop: edit its .c file, run `npm run build:kernels` (clang-19 and lld-19:
 * `apt-get install clang-19 lld-19` on Debian) and commit the rebuilt .wasm modules with it;
 * `npx vitest run test/backend` tests the loops against the cpu backend and checks that the
 * modules match the source. A new loop also needs its line in simd.ts's SimdKernels.
 *
 * Conventions. Every argument a kernel takes from JS is an address on the wasm backend's
 * heap (the module imports the backend's memory, so a tensor's byte offset is a pointer
 * here), a count, or a stride in bytes (BYTES() moves a pointer by one). Data is float32
 * in groups of 4 (one v128_t: 4 channels, or 4 columns); sums the JS side keeps in float64
 * are float64 here too. No loop may use the stack (the build fails if one does): the
 * module has no stack of its own on the backend's heap.
 *
 * Exactness. Each kernel computes the same float32 operations in the same order as the JS
 * or tfjs op it replaces, so its results are the same bits: the build passes
 * -ffp-contract=off (no a * b + c fused behind our back) and no fast-math flag, and every
 * sum is written in the order it runs. The one fused multiply-add is the explicit
 * multiply_add() of the FMA build. (The compiler may swap the operands of an add or a
 * multiply, which changes nothing but the sign of a NaN where two NaNs meet: wasm leaves
 * that sign to the engine.)
 */
#ifndef SVHN_KERNELS_H
#define SVHN_KERNELS_H

#include <stdbool.h>
#include <wasm_simd128.h>

/* Exports the function that follows under `name` (what JS calls it). */
#define EXPORT(name) __attribute__((export_name(#name)))

/* Inlined wherever it is used: the loops' shared steps and the templates of the kernels
 * with several widths (each export calls its template with constant sizes). */
#define INLINE static inline __attribute__((always_inline))

/* Pointer p moved on by `bytes` bytes (strides arrive in bytes, as the JS side counts them). */
#define BYTES(p, bytes) ((__typeof__(p))((char *)(p) + (bytes)))

/* 4 floats at p (any 4-byte alignment), and 4 floats stored there. */
INLINE v128_t load4(const void *p) { return wasm_v128_load(p); }
INLINE void store4(void *p, v128_t v) { wasm_v128_store(p, v); }

/*
 * Lane masks (a compare's lanes: all ones where it held, else zero) are combined, and
 * applied to values, as lane_bits: the same 16 bytes seen as 2 x 64 bits, with C's & | ~.
 * On v128_t's own 4 x 32-bit lanes clang turns `value & mask` into a select, which wasm
 * only has as v128.bitselect: 3 instructions on x64 where v128.and is 1 (MaxPoolGrad's
 * routing ran 1.5x slower). Values a mask applies to are loaded as lane_bits too.
 */
typedef long long lane_bits __attribute__((__vector_size__(16), __aligned__(1), __may_alias__));
INLINE lane_bits load_bits(const void *p) { return *(const lane_bits *)p; }
INLINE void store_bits(void *p, lane_bits v) { *(lane_bits *)p = v; }

/* The float at p in all 4 lanes. */
INLINE v128_t load_splat(const float *p) { return wasm_v128_load32_splat(p); }

INLINE v128_t splat(float f) { return wasm_f32x4_splat(f); }

/*
 * acc + a * b on 4 lanes, the step of every convolution and matrix product. The FMA build
 * (SVHN_FMA=1, relaxed SIMD) uses f32x4.relaxed_madd: one rounding where the CPU has FMA,
 * as XNNPACK's own kernels do. The other build is a float32 multiply, then an add.
 */
INLINE v128_t multiply_add(v128_t acc, v128_t a, v128_t b) {
#if SVHN_FMA
  return wasm_f32x4_relaxed_madd(a, b, acc);
#else
  return wasm_f32x4_add(acc, wasm_f32x4_mul(a, b));
#endif
}

/* Lanes 2 and 3 of v moved down to 0 and 1 (f64x2.promote_low then widens them). */
INLINE v128_t upper_half(v128_t v) { return wasm_i32x4_shuffle(v, v, 2, 3, 2, 3); }

/* v's lanes 0, 1 and 2, 3 as two float64 pairs. */
INLINE v128_t widen_low(v128_t v) { return wasm_f64x2_promote_low_f32x4(v); }
INLINE v128_t widen_high(v128_t v) { return wasm_f64x2_promote_low_f32x4(upper_half(v)); }

/* acc[0..1] += lo and acc[2..3] += hi, float64 (acc first, as the JS sums add). */
INLINE void add_pair(double *acc, v128_t lo, v128_t hi) {
  store4(acc, wasm_f64x2_add(load4(acc), lo));
  store4(acc + 2, wasm_f64x2_add(load4(acc + 2), hi));
}

/* acc[0..3] (float64) += the 4 floats of v, widened. */
INLINE void add_to_float64(double *acc, v128_t v) { add_pair(acc, widen_low(v), widen_high(v)); }

/* 1 where x > 0, else 0 (NaN included). */
INLINE v128_t positive(v128_t x) { return wasm_v128_bitselect(splat(1), splat(0), wasm_f32x4_gt(x, splat(0))); }

/* ReLU's gradient factor of x, tfjs-core's step: 1 where x > 0, 0 elsewhere, x itself where
 * x is NaN (so dy * step(x) is NaN there). */
INLINE v128_t relu_step(v128_t x) { return wasm_v128_bitselect(x, positive(x), wasm_f32x4_ne(x, x)); }

#endif
