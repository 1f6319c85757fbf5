/*
 * Per-channel passes over channels-last rows: every loop here walks rows of rowBytes bytes
 * from its first pointer up to `end`, 4 channels (16 bytes) at a time, with its per-channel
 * arrays (k, mean, bias, acc) starting again at channel 0 on each row.
 *
 * The float64 sums of bnGradRows and sumSqRows come in pairs, per 4 channels 8 float64:
 * 4 of the first sum, then 4 of the second (simd.ts pairSlot).
 */
#include "kernels.h"

/*
 * BatchNorm's backward pass (gradients.ts, syncBn.ts):
 *   dx = dy * k[c]                                   (float32, as the JS loop)
 *   acc[c].sumDy += dy, acc[c].sumDyD += dy * (x - mean[c])      (float64)
 * x and dx move along with dy; k: float32[C]; mean: float64[C]; acc: pairs.
 */
EXPORT(bnGradRows)
void bnGradRows(const float *dy, const float *x, float *dx, const float *end, int rowBytes,
                const float *k, const double *mean, double *acc) {
  while (dy < end) {
    const float *row_end = BYTES(dy, rowBytes);
    const float *kc = k;
    const double *mc = mean;
    double *sums = acc;
    for (; dy < row_end; dy += 4, x += 4, dx += 4, kc += 4, mc += 4, sums += 8) {
      v128_t g = load4(dy);
      v128_t xv = load4(x);
      store4(dx, wasm_f32x4_mul(g, load4(kc)));
      v128_t lo = widen_low(g), hi = widen_high(g);
      add_pair(sums, lo, hi);
      add_pair(sums + 4, wasm_f64x2_mul(lo, wasm_f64x2_sub(widen_low(xv), load4(mc))),
               wasm_f64x2_mul(hi, wasm_f64x2_sub(widen_high(xv), load4(mc + 2))));
    }
  }
}

/* acc[c] += x[r, c] (float64[C]): Sum and Mean over all but the last axis (reduce.ts). */
EXPORT(sumRows)
void sumRows(const float *x, const float *end, int rowBytes, double *acc) {
  while (x < end) {
    const float *row_end = BYTES(x, rowBytes);
    for (double *sum = acc; x < row_end; x += 4, sum += 4) add_to_float64(sum, load4(x));
  }
}

/*
 * Per channel, the sums of x and of x * x in float64, as pairs: SyncBatchNorm's forward
 * statistics (syncBn.ts).
 */
EXPORT(sumSqRows)
void sumSqRows(const float *x, const float *end, int rowBytes, double *acc) {
  while (x < end) {
    const float *row_end = BYTES(x, rowBytes);
    for (double *sums = acc; x < row_end; x += 4, sums += 8) {
      v128_t xv = load4(x);
      v128_t lo = widen_low(xv), hi = widen_high(xv);
      add_pair(sums, lo, hi);
      add_pair(sums + 4, wasm_f64x2_mul(lo, lo), wasm_f64x2_mul(hi, hi));
    }
  }
}

/*
 * out = x * k[c] + a[c], or with `accumulate` out += x * k[c] + a[c] (out moves along
 * with x; k, a: float32[C]). A float32 multiply then a float32 add: the values of the two
 * native broadcast ops.
 */
INLINE void affine_rows(const float *x, float *out, const float *end, int rowBytes, const float *k, const float *a,
                        bool accumulate) {
  while (x < end) {
    const float *row_end = BYTES(x, rowBytes);
    for (int c = 0; x < row_end; x += 4, out += 4, c += 4) {
      v128_t y = wasm_f32x4_add(wasm_f32x4_mul(load4(x), load4(k + c)), load4(a + c));
      store4(out, accumulate ? wasm_f32x4_add(load4(out), y) : y);
    }
  }
}

/* FusedBatchNorm's forward pass (batchNorm.ts). */
EXPORT(affineRows)
void affineRows(const float *x, float *out, const float *end, int rowBytes, const float *k, const float *a) {
  affine_rows(x, out, end, rowBytes, k, a, false);
}

/* Finishes SyncBatchNorm's backward pass after bnGradRows wrote dy * gamma * r into out (syncBn.ts). */
EXPORT(addAffineRows)
void addAffineRows(const float *x, float *out, const float *end, int rowBytes, const float *k, const float *a) {
  affine_rows(x, out, end, rowBytes, k, a, true);
}

/*
 * y = max(y + bias[c], 0) in place (bias: float32[C]). A float32 add then f32x4.max (NaN
 * stays NaN, -0 becomes +0): the values of the separate Add and Relu ops (cpu:
 * Math.max(0, x)). Conv2D's bias and ReLU epilogue, run on each tile of output pixels right
 * after the convolution wrote it, while it is in L1 (conv2d.ts).
 */
EXPORT(biasReluRows)
void biasReluRows(float *y, const float *end, int rowBytes, const float *bias) {
  while (y < end) {
    const float *row_end = BYTES(y, rowBytes);
    for (const float *b = bias; y < row_end; y += 4, b += 4) {
      store4(y, wasm_f32x4_max(wasm_f32x4_add(load4(y), load4(b)), splat(0)));
    }
  }
}

/*
 * The backward pass of y = relu(conv + b) up to the convolution (y and out move along
 * with dy):
 *   out = dy * step(y)       step = y > 0 ? 1 : 0, NaN for NaN y (reluGrad's values; y > 0
 *                            exactly where the pre-activation is)
 *   acc[c] += out            (float64[C]: the bias gradient, summed over N, H, W)
 * One pass instead of Relu's gradient and then a Sum over the same tensor (gradients.ts).
 */
EXPORT(reluBiasGradRows)
void reluBiasGradRows(const float *dy, const float *y, float *out, const float *end, int rowBytes, double *acc) {
  while (dy < end) {
    const float *row_end = BYTES(dy, rowBytes);
    for (double *sum = acc; dy < row_end; dy += 4, y += 4, out += 4, sum += 4) {
      v128_t g = wasm_f32x4_mul(load4(dy), relu_step(load4(y)));
      store4(out, g);
      add_to_float64(sum, g);
    }
  }
}
