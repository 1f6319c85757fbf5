/*
 * Native twins of the hottest wasm SIMD kernels (src/backend/kernels/simd/conv.c and
 * gemm.c), 512 bits wide with AVX-512F or 256 with AVX2, on the wasm backend's heap.
 *
 * Each kernel takes the same arguments as its wasm export, gathered in a struct whose
 * pointers are the heap's base plus the byte offsets JS passed (addon.c checks them).
 * Results are the wasm kernels' bits: see loops.h.
 */
#ifndef SVHN_NATIVE_KERNELS_H
#define SVHN_NATIVE_KERNELS_H

/* convRows16x2: Conv2D over a tile of output pixels, 16 output channels (see conv.c convRows). */
typedef struct {
  const float *x, *w;
  float *y;
  int segBytes, wStep, imgs, rows, cols, xColStep, xRowStep, xImgStep, yStep, kh;
} ConvRowsArgs;

/* filterGrad16x2 and filterGrad16x1: Conv2DBackpropFilter over a tile, 16 channels, nk taps. */
typedef struct {
  const float *x, *dy;
  float *out;
  int nk, outStep, imgs, rows, cols, xColStep, xRowStep, xImgStep, dyStep;
} FilterGradArgs;

/* inputGrad16x2: Conv2DBackpropInput's scatter for one tap, 16 input channels. */
typedef struct {
  const float *dy, *w;
  float *dx;
  int dyStep, wStep, imgs, rows, cols, dxColStep, dxRowStep, dxImgStep;
} InputGradArgs;

/* gemm16x2: C = A x B, `blocks` blocks of 16 columns (see gemm.c). */
typedef struct {
  const float *a, *b;
  float *c;
  unsigned rows, blocks;
  int k, aRowStep, aColStep, bRowStep, cRowStep, cColStep;
} GemmArgs;

/* One instruction set's kernels, with fused multiply-adds or without. */
typedef struct {
  void (*conv_rows)(const ConvRowsArgs *);
  void (*filter_grad)(const FilterGradArgs *);
  void (*input_grad)(const InputGradArgs *);
  void (*gemm)(const GemmArgs *);
} KernelSet;

/* A variant: "avx512-fused", "avx512-plain", "avx2-fused" or "avx2-plain". */
typedef struct {
  const char *name;
  const KernelSet *set;
} KernelVariant;

/* Variant i (widest first), or NULL past the last (or on a host that is not x86-64). */
const KernelVariant *kernel_variant(int i);

/* Whether this CPU runs variant v. */
int kernel_runs(const KernelVariant *v);

#endif
