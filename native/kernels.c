/*
 * The kernels of loops.h built four times: AVX-512F and AVX2, each with FMA's one rounding
 * per step (as the wasm FMA module's f32x4.relaxed_madd on a CPU with FMA) and with a
 * multiply then an add (the plain module). Each variant is compiled for its own target
 * (__attribute__((target))), not for the build machine: the addon loads on any x86-64 and
 * offers only the variants the CPU runs (kernel_runs). The plain variants keep their
 * multiply and add apart twice over: the build passes -ffp-contract=off, and their targets
 * have no FMA to contract into.
 */
#include "kernels.h"

#include <stddef.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 16")
#define BYTES(p, bytes) ((__typeof__(p))((char *)(p) + (bytes)))
#define MAX_GROUP 8

/* ---- AVX-512F: one register per 16 channels, 8 per register block. ---- */
#define VEC __m512
#define LANES 16
#define GROUP 8
#define load(p) _mm512_loadu_ps(p)
#define store(p, v) _mm512_storeu_ps((p), (v))
#define splat(p) _mm512_set1_ps(*(p))
#define zero() _mm512_setzero_ps()
#define add(a, b) _mm512_add_ps((a), (b))

#define TARGET __attribute__((target("avx512f,fma")))
#define NAME(f) f##_avx512_fused
#define multiply_add(acc, a, b) _mm512_fmadd_ps((a), (b), (acc))
#include "loops.h"
#undef TARGET
#undef NAME
#undef multiply_add

/* The plain variants' targets lack FMA: no fused multiply-add can reach them. */
#define TARGET __attribute__((target("avx512f")))
#define NAME(f) f##_avx512_plain
#define multiply_add(acc, a, b) _mm512_add_ps((acc), _mm512_mul_ps((a), (b)))
#include "loops.h"
#undef TARGET
#undef NAME
#undef multiply_add

#undef VEC
#undef LANES
#undef GROUP
#undef load
#undef store
#undef splat
#undef zero
#undef add

/* ---- AVX2: two registers per 16 channels, 4 per register block (8 accumulators). ---- */
#define VEC __m256
#define LANES 8
#define GROUP 4
#define load(p) _mm256_loadu_ps(p)
#define store(p, v) _mm256_storeu_ps((p), (v))
#define splat(p) _mm256_broadcast_ss(p)
#define zero() _mm256_setzero_ps()
#define add(a, b) _mm256_add_ps((a), (b))

#define TARGET __attribute__((target("avx2,fma")))
#define NAME(f) f##_avx2_fused
#define multiply_add(acc, a, b) _mm256_fmadd_ps((a), (b), (acc))
#include "loops.h"
#undef TARGET
#undef NAME
#undef multiply_add

#define TARGET __attribute__((target("avx2")))
#define NAME(f) f##_avx2_plain
#define multiply_add(acc, a, b) _mm256_add_ps((acc), _mm256_mul_ps((a), (b)))
#include "loops.h"
#undef TARGET
#undef NAME
#undef multiply_add

#undef VEC
#undef LANES
#undef GROUP
#undef load
#undef store
#undef splat
#undef zero
#undef add

#define KERNEL_SET(suffix) \
  { conv_rows_##suffix, filter_grad_##suffix, input_grad_##suffix, gemm_##suffix }

static const KernelSet AVX512_FUSED = KERNEL_SET(avx512_fused);
static const KernelSet AVX512_PLAIN = KERNEL_SET(avx512_plain);
static const KernelSet AVX2_FUSED = KERNEL_SET(avx2_fused);
static const KernelSet AVX2_PLAIN = KERNEL_SET(avx2_plain);

/* Every variant, widest first. (An AVX2 CPU without FMA runs V8's relaxed_madd as a
 * multiply and an add: the plain kernels pair with either wasm module there.) */
const KernelVariant *kernel_variant(int i) {
  static const KernelVariant VARIANTS[] = {
      {"avx512-fused", &AVX512_FUSED}, {"avx512-plain", &AVX512_PLAIN},
      {"avx2-fused", &AVX2_FUSED}, {"avx2-plain", &AVX2_PLAIN},
  };
  return i < (int)(sizeof VARIANTS / sizeof VARIANTS[0]) ? &VARIANTS[i] : NULL;
}

/* __builtin_cpu_supports checks that the OS saves the registers too (XCR0). */
int kernel_runs(const KernelVariant *v) {
  __builtin_cpu_init();
  int fma = __builtin_cpu_supports("fma");
  if (v->set == &AVX512_FUSED) return __builtin_cpu_supports("avx512f") && fma;
  if (v->set == &AVX512_PLAIN) return __builtin_cpu_supports("avx512f");
  if (v->set == &AVX2_FUSED) return __builtin_cpu_supports("avx2") && fma;
  return __builtin_cpu_supports("avx2");
}

#else /* not x86-64: no native kernels */

const KernelVariant *kernel_variant(int i) {
  (void)i;
  return NULL;
}
int kernel_runs(const KernelVariant *v) {
  (void)v;
  return 0;
}

#endif
