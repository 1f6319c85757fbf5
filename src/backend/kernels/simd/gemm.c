/*
 * BatchMatMul's matrix product (batchMatMul.ts), C = A x B for `rows` rows of C and
 * `blocks` blocks of 16 (gemm16x2) or 4 (gemm4x4) columns:
 *   C(m, n) = sum over kk < k of A(m, kk) * B[kk, n]            (float32, kk in order)
 * A(m, kk) is the float at a + m*aRowStep + kk*aColStep, so A and its transpose are read
 * alike (TN: no transposed copy); B rows are bRowStep bytes apart, each row's columns
 * contiguous; k >= 1. C(m, n) goes to c + m*cRowStep + n*cColStep: one v128 store per 4
 * columns when cColStep is 4, else one float store per value (C written transposed, as
 * BatchMatMul's transposeB path computes C^T; a store per 2*k multiply-adds).
 *
 * Per row group and column block the accumulators stay in registers while kk runs: each B
 * vector is loaded once for the group's splatted A values (16 columns x 2 rows: 8
 * accumulators, 2 splats + 4 loads per 8 multiply-adds, the shape of convRows16x2). Rows go
 * 2 (gemm16x2) or 4 (gemm4x4) at a time, then one at a time for the rest; the column blocks
 * of one row group run back to back while its A values are in L1. Measured on dense_1's
 * products (32 x 2304 x 128, FMA): 16x2 ~39 GFLOP/s (8x4 about the same, 16x3 and 16x4 ~27:
 * 16 accumulators spill); 4x4 ~18-28, 4x2 ~11-23.
 */
#include "kernels.h"

#define MAX_VECTORS 4
#define MAX_GROUP 4

/* v's 4 floats at p, p + step, p + 2*step, p + 3*step (bytes). */
INLINE void store_strided(float *p, int step, v128_t v) {
  *p = wasm_f32x4_extract_lane(v, 0);
  *BYTES(p, step) = wasm_f32x4_extract_lane(v, 1);
  *BYTES(p, 2 * step) = wasm_f32x4_extract_lane(v, 2);
  *BYTES(p, 3 * step) = wasm_f32x4_extract_lane(v, 3);
}

/* One block of 4 * vectors columns for `group` rows of C from A's row a and C's (row, column) c. */
INLINE void gemm_block(int vectors, int group, const float *a, const float *b, float *c, int k, int aRowStep,
                       int aColStep, int bRowStep, int cRowStep, int cColStep) {
  v128_t acc[MAX_GROUP][MAX_VECTORS];
  for (int p = 0; p < group; p++)
    for (int j = 0; j < vectors; j++) acc[p][j] = wasm_f32x4_splat(0);
  const float *ap = a, *bp = b;
  int kk = k;
  do {
    v128_t as[MAX_GROUP];
    for (int p = 0; p < group; p++) as[p] = load_splat(BYTES(ap, p * aRowStep));
    for (int j = 0; j < vectors; j++) {
      v128_t bv = load4(bp + 4 * j);
      for (int p = 0; p < group; p++) acc[p][j] = multiply_add(acc[p][j], as[p], bv);
    }
    ap = BYTES(ap, aColStep);
    bp = BYTES(bp, bRowStep);
  } while (--kk != 0);
  if (cColStep == 4) {
    for (int p = 0; p < group; p++, c = BYTES(c, cRowStep))
      for (int j = 0; j < vectors; j++) store4(c + 4 * j, acc[p][j]);
  } else {
    for (int p = 0; p < group; p++, c = BYTES(c, cRowStep)) {
      for (int j = 0; j < vectors; j++) store_strided(BYTES(c, 4 * j * cColStep), cColStep, acc[p][j]);
    }
  }
}

/* `group` rows of C, every column block, back to back while their A values are in L1. */
INLINE void gemm_rows(int vectors, int group, const float *a, const float *b, float *c, unsigned blocks, int k,
                      int aRowStep, int aColStep, int bRowStep, int cRowStep, int cColStep) {
  for (unsigned blk = 0; blk < blocks; blk++, b += 4 * vectors, c = BYTES(c, cColStep * 4 * vectors))
    gemm_block(vectors, group, a, b, c, k, aRowStep, aColStep, bRowStep, cRowStep, cColStep);
}

/* Rows rowGroup at a time while that many are left, then one at a time. */
INLINE void gemm(int vectors, int rowGroup, const float *a, const float *b, float *c, unsigned rows, unsigned blocks,
                 int k, int aRowStep, int aColStep, int bRowStep, int cRowStep, int cColStep) {
  unsigned left = rows;
  for (; left >= (unsigned)rowGroup; left -= rowGroup, a = BYTES(a, aRowStep * rowGroup), c = BYTES(c, cRowStep * rowGroup))
    gemm_rows(vectors, rowGroup, a, b, c, blocks, k, aRowStep, aColStep, bRowStep, cRowStep, cColStep);
  for (; left >= 1; left--, a = BYTES(a, aRowStep), c = BYTES(c, cRowStep))
    gemm_rows(vectors, 1, a, b, c, blocks, k, aRowStep, aColStep, bRowStep, cRowStep, cColStep);
}

EXPORT(gemm16x2)
void gemm16x2(const float *a, const float *b, float *c, unsigned rows, unsigned blocks, int k, int aRowStep,
              int aColStep, int bRowStep, int cRowStep, int cColStep) {
  gemm(4, 2, a, b, c, rows, blocks, k, aRowStep, aColStep, bRowStep, cRowStep, cColStep);
}

EXPORT(gemm4x4)
void gemm4x4(const float *a, const float *b, float *c, unsigned rows, unsigned blocks, int k, int aRowStep,
             int aColStep, int bRowStep, int cRowStep, int cColStep) {
  gemm(1, 4, a, b, c, rows, blocks, k, aRowStep, aColStep, bRowStep, cRowStep, cColStep);
}
