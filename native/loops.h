/*
 * The loops of kernels.c, written once for every instruction set it builds them for.
 * kernels.c includes this file once per variant, after defining:
 *
 *   TARGET               the variant's instruction sets, __attribute__((target(...)))
 *   VEC, LANES           the vector type and its float32 lanes (16: AVX-512, 8: AVX2)
 *   GROUP                pixels, taps or rows per register block (8 or 4)
 *   load, store, splat, zero, add, multiply_add    on VEC
 *   NAME(f)              f with the variant's suffix
 *
 * Each loop is the wasm loop of the same name in src/backend/kernels/simd/{conv,gemm}.c,
 * for 16 channels (or columns): VECTORS registers per pixel. Only the register blocking
 * differs: GROUP pixels (taps, rows) at a time, then 4, 2 and 1 for the rest. Every output
 * value is still one float32 accumulator that starts at 0 and takes its products in the
 * wasm loop's order (filter rows, then the segment's floats; the tile's pixels; kk from 0),
 * each step multiply_add(), then is stored or added to the output (out + acc) as there.
 * So the results are the wasm kernels' bits. A change to one of those wasm loops needs the
 * same change here: test/backend/native.test.ts compares the two bit for bit.
 */

#define VECTORS (16 / LANES)

/* The sizes a run of `count` items is cut into: GROUP while that many are left, then at
 * most one each of 4, 2 and 1 (GROUP is 8 or 4). STEP(n) handles n items and moves on. */
#define BY_GROUPS(count, STEP)                         \
  do {                                                 \
    unsigned left_ = (count);                          \
    for (; left_ >= GROUP; left_ -= GROUP) STEP(GROUP); \
    if (GROUP > 4 && left_ >= 4) STEP(4), left_ -= 4;  \
    if (left_ >= 2) STEP(2), left_ -= 2;               \
    if (left_ >= 1) STEP(1);                           \
  } while (0)

/* convRows: `pixels` output pixels along a row, the first's window at xc; their sums over
 * the kh filter rows, stored to y (yStep bytes apart). */
TARGET INLINE void NAME(conv_pixels)(const ConvRowsArgs *a, int pixels, const float *xc, float *y) {
  VEC acc[MAX_GROUP][VECTORS];
  UNROLL for (int p = 0; p < pixels; p++)
    UNROLL for (int j = 0; j < VECTORS; j++) acc[p][j] = zero();
  const float *wp = a->w;
  const float *seg = xc;
  for (unsigned r = 0; r < (unsigned)a->kh; r++, seg = BYTES(seg, a->xRowStep)) {
    const float *seg_end = BYTES(seg, a->segBytes);
    for (const float *xp = seg; xp < seg_end; xp++, wp = BYTES(wp, a->wStep)) {
      VEC xs[MAX_GROUP];
      UNROLL for (int p = 0; p < pixels; p++) xs[p] = splat(BYTES(xp, p * a->xColStep));
      UNROLL for (int j = 0; j < VECTORS; j++) {
        VEC wv = load(wp + LANES * j);
        UNROLL for (int p = 0; p < pixels; p++) acc[p][j] = multiply_add(acc[p][j], xs[p], wv);
      }
    }
  }
  UNROLL for (int p = 0; p < pixels; p++, y = BYTES(y, a->yStep))
    UNROLL for (int j = 0; j < VECTORS; j++) store(y + LANES * j, acc[p][j]);
}

TARGET static void NAME(conv_rows)(const ConvRowsArgs *a) {
  const float *x = a->x;
  float *y = a->y;
  for (int img = 0; img < a->imgs; img++, x = BYTES(x, a->xImgStep)) {
    const float *xr = x;
    for (int row = 0; row < a->rows; row++, xr = BYTES(xr, a->xRowStep)) {
      const float *xc = xr;
#define CONV_STEP(n) \
  (NAME(conv_pixels)(a, n, xc, y), xc = BYTES(xc, a->xColStep * (n)), y = BYTES(y, a->yStep * (n)))
      BY_GROUPS(a->cols, CONV_STEP);
#undef CONV_STEP
    }
  }
}

/* filterGrad: `taps` consecutive filter taps from x (the tile's first pixel's value of the
 * first tap): each one's sum over the tile's pixels, added into out (outStep bytes apart). */
TARGET INLINE void NAME(filter_taps)(const FilterGradArgs *a, int taps, const float *x, float *out) {
  VEC acc[MAX_GROUP][VECTORS];
  UNROLL for (int t = 0; t < taps; t++)
    UNROLL for (int j = 0; j < VECTORS; j++) acc[t][j] = zero();
  const int rowBytes = a->cols * a->dyStep;
  const float *d = a->dy;
  const float *xi = x;
  for (int img = 0; img < a->imgs; img++, xi = BYTES(xi, a->xImgStep)) {
    const float *xr = xi;
    for (int row = 0; row < a->rows; row++, xr = BYTES(xr, a->xRowStep)) {
      const float *xc = xr;
      const float *row_end = BYTES(d, rowBytes);
      do {
        VEC xs[MAX_GROUP];
        UNROLL for (int t = 0; t < taps; t++) xs[t] = splat(xc + t);
        UNROLL for (int j = 0; j < VECTORS; j++) {
          VEC dv = load(d + LANES * j);
          UNROLL for (int t = 0; t < taps; t++) acc[t][j] = multiply_add(acc[t][j], xs[t], dv);
        }
        xc = BYTES(xc, a->xColStep);
        d = BYTES(d, a->dyStep);
      } while (d < row_end);
    }
  }
  UNROLL for (int t = 0; t < taps; t++, out = BYTES(out, a->outStep))
    UNROLL for (int j = 0; j < VECTORS; j++) store(out + LANES * j, add(load(out + LANES * j), acc[t][j]));
}

/* filterGrad16x2 and filterGrad16x1 alike: every tap kk < nk, GROUP at a time. */
TARGET static void NAME(filter_grad)(const FilterGradArgs *a) {
  const float *x = a->x;
  float *out = a->out;
#define FILTER_STEP(n) (NAME(filter_taps)(a, n, x, out), x += (n), out = BYTES(out, a->outStep * (n)))
  BY_GROUPS(a->nk, FILTER_STEP);
#undef FILTER_STEP
}

/* inputGrad: `pixels` dy pixels along a row (the first at dy, dyStep bytes apart): their
 * products with the tap's slab, added to dx (dxColStep bytes apart). */
TARGET INLINE void NAME(input_grad_pixels)(const InputGradArgs *a, int pixels, const float *dy, float *dx) {
  VEC acc[MAX_GROUP][VECTORS];
  UNROLL for (int p = 0; p < pixels; p++)
    UNROLL for (int j = 0; j < VECTORS; j++) acc[p][j] = zero();
  const float *wp = a->w;
  const float *dy_end = BYTES(dy, a->dyStep);
  for (const float *dp = dy; dp < dy_end; dp++, wp = BYTES(wp, a->wStep)) {
    VEC ds[MAX_GROUP];
    UNROLL for (int p = 0; p < pixels; p++) ds[p] = splat(BYTES(dp, p * a->dyStep));
    UNROLL for (int j = 0; j < VECTORS; j++) {
      VEC wv = load(wp + LANES * j);
      UNROLL for (int p = 0; p < pixels; p++) acc[p][j] = multiply_add(acc[p][j], ds[p], wv);
    }
  }
  UNROLL for (int p = 0; p < pixels; p++, dx = BYTES(dx, a->dxColStep))
    UNROLL for (int j = 0; j < VECTORS; j++) store(dx + LANES * j, add(load(dx + LANES * j), acc[p][j]));
}

TARGET static void NAME(input_grad)(const InputGradArgs *a) {
  const float *dy = a->dy;
  float *dx = a->dx;
  for (int img = 0; img < a->imgs; img++, dx = BYTES(dx, a->dxImgStep)) {
    float *xr = dx;
    for (int row = 0; row < a->rows; row++, xr = BYTES(xr, a->dxRowStep)) {
      float *xc = xr;
#define INPUT_STEP(n) \
  (NAME(input_grad_pixels)(a, n, dy, xc), xc = BYTES(xc, a->dxColStep * (n)), dy = BYTES(dy, a->dyStep * (n)))
      BY_GROUPS(a->cols, INPUT_STEP);
#undef INPUT_STEP
    }
  }
}

/* gemm: one block of 16 columns for `group` rows of C, from A's row a0 and C's (row, column) c. */
TARGET INLINE void NAME(gemm_block)(const GemmArgs *g, int group, const float *a0, const float *b, float *c) {
  VEC acc[MAX_GROUP][VECTORS];
  UNROLL for (int p = 0; p < group; p++)
    UNROLL for (int j = 0; j < VECTORS; j++) acc[p][j] = zero();
  const float *ap = a0, *bp = b;
  int kk = g->k;
  do {
    VEC as[MAX_GROUP];
    UNROLL for (int p = 0; p < group; p++) as[p] = splat(BYTES(ap, p * g->aRowStep));
    UNROLL for (int j = 0; j < VECTORS; j++) {
      VEC bv = load(bp + LANES * j);
      UNROLL for (int p = 0; p < group; p++) acc[p][j] = multiply_add(acc[p][j], as[p], bv);
    }
    ap = BYTES(ap, g->aColStep);
    bp = BYTES(bp, g->bRowStep);
  } while (--kk != 0);
  if (g->cColStep == 4) {
    UNROLL for (int p = 0; p < group; p++, c = BYTES(c, g->cRowStep))
      UNROLL for (int j = 0; j < VECTORS; j++) store(c + LANES * j, acc[p][j]);
  } else {
    /* C written transposed: one float store per value, column n at c + n*cColStep. */
    for (int p = 0; p < group; p++, c = BYTES(c, g->cRowStep)) {
      float lanes[16];
      UNROLL for (int j = 0; j < VECTORS; j++) store(lanes + LANES * j, acc[p][j]);
      for (int n = 0; n < 16; n++) *BYTES(c, n * g->cColStep) = lanes[n];
    }
  }
}

/* `group` rows of C, every column block, back to back while their A values are in L1. */
TARGET INLINE void NAME(gemm_rows)(const GemmArgs *g, int group, const float *a0, float *c) {
  const float *b = g->b;
  for (unsigned blk = 0; blk < g->blocks; blk++, b += 16, c = BYTES(c, g->cColStep * 16))
    NAME(gemm_block)(g, group, a0, b, c);
}

TARGET static void NAME(gemm)(const GemmArgs *g) {
  const float *a0 = g->a;
  float *c = g->c;
#define GEMM_STEP(n) (NAME(gemm_rows)(g, n, a0, c), a0 = BYTES(a0, g->aRowStep * (n)), c = BYTES(c, g->cRowStep * (n)))
  BY_GROUPS(g->rows, GEMM_STEP);
#undef GEMM_STEP
}

#undef VECTORS
#undef BY_GROUPS
