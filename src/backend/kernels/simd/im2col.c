/*
 * The copies around Conv2DBackpropFilter's and Conv2DBackpropInput's matrix-product paths
 * (conv2dBackprop.ts), where the direct loops of conv.c do not apply.
 */
#include "kernels.h"

/*
 * im2col: copies `rows` runs of runBytes per plane, the runs rowStride bytes apart and
 * the planes planeStride apart in src, one after another into dst, 16 bytes at a time
 * while a whole vector fits, then a float at a time.
 */
EXPORT(gatherRuns)
void gatherRuns(const float *src, float *dst, int planes, int rows, int runBytes, int rowStride, int planeStride) {
  for (int p = 0; p < planes; p++, src = BYTES(src, planeStride)) {
    const float *row = src;
    for (int y = 0; y < rows; y++, row = BYTES(row, rowStride)) {
      const float *from = row;
      float *run_end = BYTES(dst, runBytes);
      for (; dst + 4 <= run_end; dst += 4, from += 4) store4(dst, load4(from));
      for (; dst < run_end; dst++, from++) *dst = *from;
    }
  }
}

/* col2im's step: dst[i] += src[i] over `bytes` (a multiple of 16), float32. */
EXPORT(addRun)
void addRun(const float *src, float *dst, int bytes) {
  for (float *end = BYTES(dst, bytes); dst < end; dst += 4, src += 4) store4(dst, wasm_f32x4_add(load4(dst), load4(src)));
}
