/*
 * Adam's update for one variable in one pass (adam.ts), 4 floats at a time over `bytes`
 * (a multiple of 16): the same operations in the same order as tfjs-core's AdamOptimizer,
 * each rounded to float32 as its separate ops are, so the results are bit-identical:
 *   m' = m*b1 + g*c1          v' = v*b2 + (g*g)*c2          (c1 = 1-b1, c2 = 1-b2)
 *   value' = ((m'/oma1) / (sqrt(v'/oma2) + eps)) * negLr + value
 * adamUpdate2 first combines two replicas' shard gradients into the batch's,
 * g = g*w + g2*w2 (each product and the sum rounded to float32; train/replicas.ts).
 * The outputs may be the inputs: each element is read before it is written.
 */
#include "kernels.h"

/* The step's float32 scalars, each in all 4 lanes. */
struct adam_constants {
  v128_t b1, c1, b2, c2, oma1, oma2, eps, negLr;
};

INLINE void adam_step(v128_t g, const float *value, const float *m, const float *v, float *outValue, float *outM,
                      float *outV, const struct adam_constants *k) {
  v128_t m1 = wasm_f32x4_add(wasm_f32x4_mul(load4(m), k->b1), wasm_f32x4_mul(g, k->c1));
  v128_t v1 = wasm_f32x4_add(wasm_f32x4_mul(load4(v), k->b2), wasm_f32x4_mul(wasm_f32x4_mul(g, g), k->c2));
  store4(outM, m1);
  store4(outV, v1);
  v128_t denominator = wasm_f32x4_add(wasm_f32x4_sqrt(wasm_f32x4_div(v1, k->oma2)), k->eps);
  v128_t step = wasm_f32x4_mul(wasm_f32x4_div(wasm_f32x4_div(m1, k->oma1), denominator), k->negLr);
  store4(outValue, wasm_f32x4_add(step, load4(value)));
}

EXPORT(adamUpdate)
void adamUpdate(const float *value, const float *m, const float *v, const float *g, float *outValue, float *outM,
                float *outV, unsigned bytes, float b1, float c1, float b2, float c2, float oma1, float oma2, float eps,
                float negLr) {
  const struct adam_constants k = {splat(b1), splat(c1), splat(b2), splat(c2), splat(oma1), splat(oma2), splat(eps), splat(negLr)};
  for (unsigned i = 0; i < bytes / 4; i += 4) {
    adam_step(load4(g + i), value + i, m + i, v + i, outValue + i, outM + i, outV + i, &k);
  }
}

EXPORT(adamUpdate2)
void adamUpdate2(const float *value, const float *m, const float *v, const float *g, const float *g2, float *outValue,
                 float *outM, float *outV, unsigned bytes, float w, float w2, float b1, float c1, float b2, float c2,
                 float oma1, float oma2, float eps, float negLr) {
  const struct adam_constants k = {splat(b1), splat(c1), splat(b2), splat(c2), splat(oma1), splat(oma2), splat(eps), splat(negLr)};
  const v128_t wv = splat(w), w2v = splat(w2);
  for (unsigned i = 0; i < bytes / 4; i += 4) {
    v128_t gi = wasm_f32x4_add(wasm_f32x4_mul(load4(g + i), wv), wasm_f32x4_mul(load4(g2 + i), w2v));
    adam_step(gi, value + i, m + i, v + i, outValue + i, outM + i, outV + i, &k);
  }
}
