/*
 * MaxPoolGrad for 2x2 windows, stride 2, channels a multiple of 4 (maxPoolGrad.ts), plain
 * and over a ReLU's output with the ReLU's gradient and its bias sum folded in.
 */
#include "kernels.h"

/*
 * One output row of MaxPoolGrad. x and dx point at input row 2y (the first window's
 * top-left cell), g at output row y; the row has ow windows of chBytes bytes of channels,
 * input rows are rowBytes apart. For each window and 4 channels at a time:
 *   best = -inf; for the cells in row-major order: m_k = v_k > best, best = m_k ? v_k : best
 * (so NaN never wins, and the first of equal maxima does). The last cell whose m_k holds
 * is the winner and gets the gradient, the other three 0: the routing of the JS loop and
 * the cpu backend.
 *
 * relu (pool2x2ReluRow): x is a ReLU's output (>= 0 or NaN). The winner gets
 * g * step(best) (step = best > 0 ? 1 : 0; a multiply, so a NaN or infinite g times 0 is
 * NaN as in dy * step(y)), and acc[c] += that value (float64[C], acc at channel 0 for every
 * window). The routing is exact only where no cell is NaN (reluBiasGrad's dy * step(y) is
 * NaN at every NaN y, winner or not): nan (16 bytes) gets OR-ed with the lanes'
 * cell != cell over all four cells of every window, and the caller checks it.
 */
INLINE void pool_2x2_row(const float *x, const float *g, float *dx, int ow, int chBytes, int rowBytes,
                         bool relu, double *acc, void *nan) {
  const int cells[4] = {0, chBytes, rowBytes, rowBytes + chBytes}; /* byte offsets, row-major */
  lane_bits nan_seen = {0, 0};
  for (int xo = 0; xo < ow; xo++) {
    const float *window_end = BYTES(x, chBytes);
    double *sum = acc;
    for (; x < window_end; x += 4, dx += 4, g += 4) {
      /* The first cell against best = -inf: c > -inf written as c >= -FLT_MAX (the same lanes;
       * clang would make c > -inf two compares). */
      v128_t cell = load4(x);
      v128_t won_first = wasm_f32x4_ge(cell, splat(-__FLT_MAX__));
      v128_t best = wasm_v128_bitselect(cell, splat(-__builtin_inff()), won_first);
      lane_bits won[4] = {(lane_bits)won_first};
      if (relu) nan_seen |= (lane_bits)wasm_f32x4_ne(cell, cell);
      for (int k = 1; k < 4; k++) {
        cell = load4(BYTES(x, cells[k]));
        v128_t m = wasm_f32x4_gt(cell, best);
        best = wasm_v128_bitselect(cell, best, m);
        won[k] = (lane_bits)m;
        if (relu) nan_seen |= (lane_bits)wasm_f32x4_ne(cell, cell);
      }
      /* best is the winner's value (-inf where all four are NaN) */
      lane_bits grad = relu ? (lane_bits)wasm_f32x4_mul(load4(g), positive(best)) : load_bits(g);
      /* The last cell's mask wins outright; each earlier one only where no later one held. */
      lane_bits later = won[3];
      store_bits(BYTES(dx, cells[3]), grad & won[3]);
      for (int k = 2; k >= 0; k--) {
        store_bits(BYTES(dx, cells[k]), grad & (won[k] & ~later));
        later |= won[k];
      }
      /* The value routed (where some cell won; with none, every cell is NaN and nan is set). */
      if (relu) {
        add_to_float64(sum, (v128_t)grad);
        sum += 4;
      }
    }
    /* The next window: skip the second column of this one. */
    x = BYTES(x, chBytes);
    dx = BYTES(dx, chBytes);
  }
  if (relu) store_bits(nan, load_bits(nan) | nan_seen);
}

EXPORT(pool2x2Row)
void pool2x2Row(const float *x, const float *g, float *dx, int ow, int chBytes, int rowBytes) {
  pool_2x2_row(x, g, dx, ow, chBytes, rowBytes, false, 0, 0);
}

EXPORT(pool2x2ReluRow)
void pool2x2ReluRow(const float *x, const float *g, float *dx, int ow, int chBytes, int rowBytes, double *acc, void *nan) {
  pool_2x2_row(x, g, dx, ow, chBytes, rowBytes, true, acc, nan);
}

/*
 * nan (16 bytes) |= the lanes' v != v over the runs of runBytes (a multiple of 16)
 * starting at x, x + step, ... below end: the cells of a 2x2 MaxPool's input outside every
 * window (odd sizes), checked by pool2x2ReluRow's callers.
 */
EXPORT(anyNaNRuns)
void anyNaNRuns(const float *x, const float *end, int step, int runBytes, void *nan) {
  lane_bits nan_seen = {0, 0};
  for (; x < end; x = BYTES(x, step)) {
    const float *run_end = BYTES(x, runBytes);
    for (const float *p = x; p < run_end; p += 4) {
      v128_t cell = load4(p);
      nan_seen |= (lane_bits)wasm_f32x4_ne(cell, cell);
    }
  }
  store_bits(nan, load_bits(nan) | nan_seen);
}
