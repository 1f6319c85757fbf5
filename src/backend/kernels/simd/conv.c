/*
 * The direct convolution loops: Conv2D (conv2d.ts), Conv2DBackpropFilter and
 * Conv2DBackpropInput (conv2dBackprop.ts), straight from the NHWC tensors with no im2col
 * matrix and no repacked filter. Each export runs a template below with constant sizes:
 * `vectors` blocks of 4 channels (4 = 16 channels, 1 = 4) and 2 pixels or filter taps at a
 * time, so its accumulators stay in registers: 16 channels x 2 pixels is 8 accumulators, 6
 * loads per 8 multiply-adds (filterGrad16x2 measured ~33 GFLOP/s against ~24 for 32
 * channels x 1 tap; 16 x 3 or 8 x 4 per call were no faster for inputGrad).
 *
 * Every sum runs in the order written (the pixels, then the filter rows, in order), each
 * step multiply_add(): float32, fused in the FMA build.
 *
 * A tile of pixels is imgs x rows x cols: the walking pointer moves by its colStep per
 * pixel, rowStep per row and imgStep per image from where each started (strided and
 * padded convolutions are the same loops with other steps; cols >= 1).
 */
#include "kernels.h"

/* The largest template sizes (the arrays below are registers after inlining). */
#define MAX_VECTORS 4
#define MAX_GROUP 2

/* `pixels` output pixels along a row, the first's window at xc: their sums over the kh filter
 * rows, stored to y (yStep bytes apart). */
INLINE void conv_pixels(int vectors, int pixels, const float *xc, int xColStep, const float *w, int wStep, int segBytes,
                        int xRowStep, int kh, float *y, int yStep) {
  v128_t acc[MAX_GROUP][MAX_VECTORS];
  for (int p = 0; p < pixels; p++)
    for (int j = 0; j < vectors; j++) acc[p][j] = wasm_f32x4_splat(0);
  const float *wp = w;
  const float *seg = xc;
  for (unsigned r = 0; r < (unsigned)kh; r++, seg = BYTES(seg, xRowStep)) {
    const float *seg_end = BYTES(seg, segBytes);
    for (const float *xp = seg; xp < seg_end; xp++, wp = BYTES(wp, wStep)) {
      v128_t xs[MAX_GROUP];
      for (int p = 0; p < pixels; p++) xs[p] = load_splat(BYTES(xp, p * xColStep));
      for (int j = 0; j < vectors; j++) {
        v128_t wv = load4(wp + 4 * j);
        for (int p = 0; p < pixels; p++) acc[p][j] = multiply_add(acc[p][j], xs[p], wv);
      }
    }
  }
  for (int p = 0; p < pixels; p++, y = BYTES(y, yStep))
    for (int j = 0; j < vectors; j++) store4(y + 4 * j, acc[p][j]);
}

/*
 * Conv2D for one tile of output pixels and 4 * vectors output channels:
 *   y[q, c] = sum over r < kh, k < segBytes/4 of x[cell + r*xRowStep + 4k] * w[(r*segBytes/4 + k) * wStep + c]
 * for each output pixel q, its window's top-left cell at x + q's offset: per filter row the
 * window's kw*ci consecutive floats of x against the filter's rows (w: [kh*kw*ci, co] from
 * the block's first channel, rows wStep bytes apart). y moves by yStep per pixel,
 * contiguously. Pixels go `pixels` at a time along a row, then one at a time for the rest.
 */
INLINE void conv_rows(int vectors, int pixels, const float *x, const float *w, float *y, int segBytes, int wStep,
                      int imgs, int rows, int cols, int xColStep, int xRowStep, int xImgStep, int yStep, int kh) {
  for (int img = 0; img < imgs; img++, x = BYTES(x, xImgStep)) {
    const float *xr = x;
    for (int row = 0; row < rows; row++, xr = BYTES(xr, xRowStep)) {
      const float *xc = xr;
      unsigned left = cols;
      for (; left >= (unsigned)pixels; left -= pixels, xc = BYTES(xc, xColStep * pixels), y = BYTES(y, yStep * pixels))
        conv_pixels(vectors, pixels, xc, xColStep, w, wStep, segBytes, xRowStep, kh, y, yStep);
      for (; left >= 1; left--, xc = BYTES(xc, xColStep), y = BYTES(y, yStep))
        conv_pixels(vectors, 1, xc, xColStep, w, wStep, segBytes, xRowStep, kh, y, yStep);
    }
  }
}

EXPORT(convRows16x2)
void convRows16x2(const float *x, const float *w, float *y, int segBytes, int wStep, int imgs, int rows, int cols,
                  int xColStep, int xRowStep, int xImgStep, int yStep, int kh) {
  conv_rows(4, 2, x, w, y, segBytes, wStep, imgs, rows, cols, xColStep, xRowStep, xImgStep, yStep, kh);
}

EXPORT(convRows4x2)
void convRows4x2(const float *x, const float *w, float *y, int segBytes, int wStep, int imgs, int rows, int cols,
                 int xColStep, int xRowStep, int xImgStep, int yStep, int kh) {
  conv_rows(1, 2, x, w, y, segBytes, wStep, imgs, rows, cols, xColStep, xRowStep, xImgStep, yStep, kh);
}

/*
 * Conv2DBackpropFilter over one tile of output pixels for 4 * vectors output channels,
 * `taps` filter taps at a time:
 *   for each filter tap kk < nk (nk a multiple of taps; its x value at x + 4*kk):
 *     acc[c] = sum over the tile's pixels of x[pixel + kk] * dy[pixel, c]    (float32)
 *     out[kk * outStep + c] += acc[c]
 * dy moves by dyStep per pixel, contiguously; each dy vector is loaded once for all `taps`
 * splatted x values.
 */
INLINE void filter_grad(int vectors, int taps, const float *x, const float *dy, float *out, int nk, int outStep,
                        int imgs, int rows, int cols, int xColStep, int xRowStep, int xImgStep, int dyStep) {
  const int rowBytes = cols * dyStep;
  for (int kk = 0; kk < nk; kk += taps, x += taps) {
    v128_t acc[MAX_GROUP][MAX_VECTORS];
    for (int t = 0; t < taps; t++)
      for (int j = 0; j < vectors; j++) acc[t][j] = wasm_f32x4_splat(0);
    const float *d = dy;
    const float *xi = x;
    for (int img = 0; img < imgs; img++, xi = BYTES(xi, xImgStep)) {
      const float *xr = xi;
      for (int row = 0; row < rows; row++, xr = BYTES(xr, xRowStep)) {
        const float *xc = xr;
        const float *row_end = BYTES(d, rowBytes);
        do {
          v128_t xs[MAX_GROUP];
          for (int t = 0; t < taps; t++) xs[t] = load_splat(xc + t);
          for (int j = 0; j < vectors; j++) {
            v128_t dv = load4(d + 4 * j);
            for (int t = 0; t < taps; t++) acc[t][j] = multiply_add(acc[t][j], xs[t], dv);
          }
          xc = BYTES(xc, xColStep);
          d = BYTES(d, dyStep);
        } while (d < row_end);
      }
    }
    for (int t = 0; t < taps; t++, out = BYTES(out, outStep))
      for (int j = 0; j < vectors; j++) store4(out + 4 * j, wasm_f32x4_add(load4(out + 4 * j), acc[t][j]));
  }
}

#define FILTER_GRAD(name, vectors, taps)                                                                    \
  EXPORT(name)                                                                                              \
  void name(const float *x, const float *dy, float *out, int nk, int outStep, int imgs, int rows, int cols, \
            int xColStep, int xRowStep, int xImgStep, int dyStep) {                                         \
    filter_grad(vectors, taps, x, dy, out, nk, outStep, imgs, rows, cols, xColStep, xRowStep, xImgStep,     \
                dyStep);                                                                                    \
  }

FILTER_GRAD(filterGrad16x2, 4, 2)
FILTER_GRAD(filterGrad16x1, 4, 1)
FILTER_GRAD(filterGrad4x2, 1, 2)
FILTER_GRAD(filterGrad4x1, 1, 1)

/* `pixels` dy pixels along a row (the first at dy, dyStep bytes apart): their products with
 * the tap's slab, added to dx (dxColStep bytes apart). */
INLINE void input_grad_pixels(int vectors, int pixels, const float *dy, int dyStep, const float *w, int wStep,
                              float *dx, int dxColStep) {
  v128_t acc[MAX_GROUP][MAX_VECTORS];
  for (int p = 0; p < pixels; p++)
    for (int j = 0; j < vectors; j++) acc[p][j] = wasm_f32x4_splat(0);
  const float *wp = w;
  const float *dy_end = BYTES(dy, dyStep);
  for (const float *dp = dy; dp < dy_end; dp++, wp = BYTES(wp, wStep)) {
    v128_t ds[MAX_GROUP];
    for (int p = 0; p < pixels; p++) ds[p] = load_splat(BYTES(dp, p * dyStep));
    for (int j = 0; j < vectors; j++) {
      v128_t wv = load4(wp + 4 * j);
      for (int p = 0; p < pixels; p++) acc[p][j] = multiply_add(acc[p][j], ds[p], wv);
    }
  }
  for (int p = 0; p < pixels; p++, dx = BYTES(dx, dxColStep))
    for (int j = 0; j < vectors; j++) store4(dx + 4 * j, wasm_f32x4_add(load4(dx + 4 * j), acc[p][j]));
}

/*
 * Conv2DBackpropInput as a scatter, for one filter tap and 4 * vectors input channels,
 * over a tile of dy pixels:
 *   for each dy pixel q of the tile (its co = dyStep/4 values at dy + q*dyStep, contiguous):
 *     acc[c] = sum over o < co of dy[q, o] * w[o * wStep + c]       (float32)
 *     dx[q's cell + c] += acc[c]
 * w is the tap's [co, ci] slab (ci contiguous, rows wStep bytes apart) from the block's
 * first channel; dx walks the tile. Pixels go `pixels` at a time along a row (then one at
 * a time), so each w vector is loaded once for all of them.
 */
INLINE void input_grad(int vectors, int pixels, const float *dy, const float *w, float *dx, int dyStep, int wStep,
                       int imgs, int rows, int cols, int dxColStep, int dxRowStep, int dxImgStep) {
  for (int img = 0; img < imgs; img++, dx = BYTES(dx, dxImgStep)) {
    float *xr = dx;
    for (int row = 0; row < rows; row++, xr = BYTES(xr, dxRowStep)) {
      float *xc = xr;
      unsigned left = cols;
      for (; left >= (unsigned)pixels; left -= pixels, xc = BYTES(xc, dxColStep * pixels), dy = BYTES(dy, dyStep * pixels))
        input_grad_pixels(vectors, pixels, dy, dyStep, w, wStep, xc, dxColStep);
      for (; left >= 1; left--, xc = BYTES(xc, dxColStep), dy = BYTES(dy, dyStep))
        input_grad_pixels(vectors, 1, dy, dyStep, w, wStep, xc, dxColStep);
    }
  }
}

EXPORT(inputGrad16x2)
void inputGrad16x2(const float *dy, const float *w, float *dx, int dyStep, int wStep, int imgs, int rows, int cols,
                   int dxColStep, int dxRowStep, int dxImgStep) {
  input_grad(4, 2, dy, w, dx, dyStep, wStep, imgs, rows, cols, dxColStep, dxRowStep, dxImgStep);
}

EXPORT(inputGrad4x2)
void inputGrad4x2(const float *dy, const float *w, float *dx, int dyStep, int wStep, int imgs, int rows, int cols,
                  int dxColStep, int dxRowStep, int dxImgStep) {
  input_grad(1, 2, dy, w, dx, dyStep, wStep, imgs, rows, cols, dxColStep, dxRowStep, dxImgStep);
}
