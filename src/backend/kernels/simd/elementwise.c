/*
 * The gradients of Relu and Square as one pass each over flat float32 data from dy up to
 * end (x and out move along; the caller does a tail of fewer than 4 elements), with
 * tfjs-core's values (gradients.ts):
 *   Relu:   out = dy * step(x), step = x > 0 ? 1 : 0, NaN for NaN x
 *   Square: out = dy * (x + x)  (x * 2, exact)
 */
#include "kernels.h"

EXPORT(reluGrad)
void reluGrad(const float *dy, const float *x, float *out, const float *end) {
  for (; dy < end; dy += 4, x += 4, out += 4) store4(out, wasm_f32x4_mul(load4(dy), relu_step(load4(x))));
}

EXPORT(squareGrad)
void squareGrad(const float *dy, const float *x, float *out, const float *end) {
  for (; dy < end; dy += 4, x += 4, out += 4) {
    v128_t xv = load4(x);
    store4(out, wasm_f32x4_mul(load4(dy), wasm_f32x4_add(xv, xv)));
  }
}
