/*
 * The N-API face of kernels.c. JS calls each kernel as its wasm export, with the heap first:
 *
 *   convRows16(heap, x, w, y, segBytes, wStep, imgs, rows, cols, xColStep, xRowStep, xImgStep, yStep, kh)
 *   filterGrad16(heap, x, dy, out, nk, outStep, imgs, rows, cols, xColStep, xRowStep, xImgStep, dyStep)
 *   inputGrad16(heap, dy, w, dx, dyStep, wStep, imgs, rows, cols, dxColStep, dxRowStep, dxImgStep)
 *   gemm16(heap, a, b, c, rows, blocks, k, aRowStep, aColStep, bRowStep, cRowStep, cColStep)
 *
 * heap is a Uint8Array over the wasm memory's buffer (an ArrayBuffer, or the threaded
 * build's SharedArrayBuffer); the rest are the byte offsets, counts and byte strides the
 * wasm export takes. A wasm kernel that strays off the heap traps; these check instead
 * that everything they will touch lies inside the heap, and throw a RangeError if not.
 * Counts and strides must be >= 0 (the callers' always are).
 *
 * exports: one kernel object per variant this CPU runs, widest first: 'avx512-fused',
 * 'avx512-plain', 'avx2-fused', 'avx2-plain' (none on a host that is not x86-64). Fused
 * kernels use FMA (to pair with the wasm FMA module), plain ones a multiply then an add
 * (the plain module). Registered per thread (NAPI_MODULE_INIT), so a worker_thread may
 * load it too.
 */
#include <stdbool.h>
#include <stdint.h>

#include <node_api.h>

#include "kernels.h"

#define MAX_ARGS 14

/* The heap and the call's integer arguments (argv[1..]), read and range-checked. */
typedef struct {
  char *base;
  uint64_t length;
  int32_t v[MAX_ARGS - 1];
} Call;

/* Throws a RangeError; returns NULL (a callback's undefined) to return with. */
static napi_value fail(napi_env env, const char *message) {
  napi_throw_range_error(env, "ERR_SVHN_NATIVE_KERNEL", message);
  return NULL;
}

/* Reads the heap and `count` integers, each in 0 ..= INT32_MAX; false after throwing. */
static bool read_call(napi_env env, napi_callback_info info, size_t count, Call *call, const KernelSet **set) {
  size_t argc = MAX_ARGS;
  napi_value argv[MAX_ARGS];
  void *data;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, &data) != napi_ok) return fail(env, "bad call"), false;
  if (argc != count + 1) return fail(env, "wrong number of arguments"), false;
  *set = data;
  napi_typedarray_type type;
  size_t length;
  void *base;
  if (napi_get_typedarray_info(env, argv[0], &type, &length, &base, NULL, NULL) != napi_ok || type != napi_uint8_array)
    return fail(env, "the heap must be a Uint8Array"), false;
  call->base = base;
  call->length = length;
  for (size_t i = 0; i < count; i++) {
    int64_t v;
    if (napi_get_value_int64(env, argv[i + 1], &v) != napi_ok) return fail(env, "arguments must be numbers"), false;
    if (v < 0 || v > INT32_MAX) return fail(env, "offsets, counts and strides must be in 0 ..= 2^31 - 1"), false;
    call->v[i] = (int32_t)v;
  }
  return true;
}

/*
 * Bounds: a region's far end is its start plus (count - 1) * step for each of its axes plus
 * the width of its last access. Terms saturate at 2^40, far above any heap (at most 2^32).
 */
#define FAR ((uint64_t)1 << 40)

static uint64_t product(int64_t a, int64_t b) {
  uint64_t p;
  return __builtin_mul_overflow((uint64_t)a, (uint64_t)b, &p) || p > FAR ? FAR : p;
}

static uint64_t span(int64_t count, int64_t step) { return count <= 0 ? 0 : product(count - 1, step); }

/* Whether [at, at + reach) lies inside the heap (reach: a sum of a few terms of at most 2^40). */
static bool inside(const Call *call, int32_t at, uint64_t reach) { return (uint64_t)at + reach <= call->length; }

static float *pointer(const Call *call, int32_t at) { return (float *)(call->base + at); }

/* Floats a loop reads while below start + bytes (4 bytes a step). */
static int64_t floats(int64_t bytes) { return (bytes + 3) / 4; }

static napi_value conv_rows(napi_env env, napi_callback_info info) {
  Call c;
  const KernelSet *set;
  if (!read_call(env, info, 13, &c, &set)) return NULL;
  ConvRowsArgs a = {
      pointer(&c, c.v[0]), pointer(&c, c.v[1]), pointer(&c, c.v[2]),
      c.v[3], c.v[4], c.v[5], c.v[6], c.v[7], c.v[8], c.v[9], c.v[10], c.v[11], c.v[12],
  };
  uint64_t pixels = product(product(a.imgs, a.rows), a.cols);
  uint64_t taps = product(a.kh, floats(a.segBytes));
  if (pixels > 0) {
    if (!inside(&c, c.v[2], span(pixels, a.yStep) + 64)) return fail(env, "convRows16: y is off the heap");
    if (taps > 0) {
      uint64_t x = span(a.imgs, a.xImgStep) + span(a.rows + a.kh - 1, a.xRowStep) + span(a.cols, a.xColStep) +
                   4 * floats(a.segBytes);
      if (!inside(&c, c.v[0], x)) return fail(env, "convRows16: x is off the heap");
      if (!inside(&c, c.v[1], span(taps, a.wStep) + 64)) return fail(env, "convRows16: w is off the heap");
    }
  }
  set->conv_rows(&a);
  return NULL;
}

static napi_value filter_grad(napi_env env, napi_callback_info info) {
  Call c;
  const KernelSet *set;
  if (!read_call(env, info, 12, &c, &set)) return NULL;
  FilterGradArgs a = {
      pointer(&c, c.v[0]), pointer(&c, c.v[1]), pointer(&c, c.v[2]),
      c.v[3], c.v[4], c.v[5], c.v[6], c.v[7], c.v[8], c.v[9], c.v[10], c.v[11],
  };
  // The wasm loop visits each row's first pixel before testing its end.
  if (a.cols < 1) return fail(env, "filterGrad16: cols must be >= 1");
  if (a.nk > 0 && a.imgs > 0 && a.rows > 0) {
    uint64_t x = span(a.imgs, a.xImgStep) + span(a.rows, a.xRowStep) + span(a.cols, a.xColStep) + 4 * (uint64_t)a.nk;
    if (!inside(&c, c.v[0], x)) return fail(env, "filterGrad16: x is off the heap");
    uint64_t pixels = product(product(a.imgs, a.rows), a.cols);
    if (!inside(&c, c.v[1], span(pixels, a.dyStep) + 64)) return fail(env, "filterGrad16: dy is off the heap");
  }
  if (a.nk > 0 && !inside(&c, c.v[2], span(a.nk, a.outStep) + 64)) return fail(env, "filterGrad16: out is off the heap");
  set->filter_grad(&a);
  return NULL;
}

static napi_value input_grad(napi_env env, napi_callback_info info) {
  Call c;
  const KernelSet *set;
  if (!read_call(env, info, 11, &c, &set)) return NULL;
  InputGradArgs a = {
      pointer(&c, c.v[0]), pointer(&c, c.v[1]), pointer(&c, c.v[2]),
      c.v[3], c.v[4], c.v[5], c.v[6], c.v[7], c.v[8], c.v[9], c.v[10],
  };
  uint64_t pixels = product(product(a.imgs, a.rows), a.cols);
  if (pixels > 0) {
    uint64_t dx = span(a.imgs, a.dxImgStep) + span(a.rows, a.dxRowStep) + span(a.cols, a.dxColStep) + 64;
    if (!inside(&c, c.v[2], dx)) return fail(env, "inputGrad16: dx is off the heap");
    if (a.dyStep > 0) {
      if (!inside(&c, c.v[0], span(pixels, a.dyStep) + 4 * floats(a.dyStep))) return fail(env, "inputGrad16: dy is off the heap");
      if (!inside(&c, c.v[1], span(floats(a.dyStep), a.wStep) + 64)) return fail(env, "inputGrad16: w is off the heap");
    }
  }
  set->input_grad(&a);
  return NULL;
}

static napi_value gemm(napi_env env, napi_callback_info info) {
  Call c;
  const KernelSet *set;
  if (!read_call(env, info, 11, &c, &set)) return NULL;
  GemmArgs a = {
      pointer(&c, c.v[0]), pointer(&c, c.v[1]), pointer(&c, c.v[2]),
      c.v[3], c.v[4], c.v[5], c.v[6], c.v[7], c.v[8], c.v[9], c.v[10],
  };
  // The wasm loop takes k >= 1 (it tests kk after the first step).
  if (a.k < 1) return fail(env, "gemm16: k must be >= 1");
  if (a.rows > 0 && a.blocks > 0) {
    if (!inside(&c, c.v[0], span(a.rows, a.aRowStep) + span(a.k, a.aColStep) + 4)) return fail(env, "gemm16: a is off the heap");
    if (!inside(&c, c.v[1], span(a.k, a.bRowStep) + product(a.blocks, 64))) return fail(env, "gemm16: b is off the heap");
    uint64_t cols = a.cColStep == 4 ? product(a.blocks, 64) : span(product(a.blocks, 16), a.cColStep) + 4;
    if (!inside(&c, c.v[2], span(a.rows, a.cRowStep) + cols)) return fail(env, "gemm16: c is off the heap");
  }
  set->gemm(&a);
  return NULL;
}

/* { convRows16, filterGrad16, inputGrad16, gemm16 } calling `set`'s kernels. */
static napi_value kernel_object(napi_env env, const KernelSet *set) {
  static const struct {
    const char *name;
    napi_callback fn;
  } KERNELS[] = {
      {"convRows16", conv_rows}, {"filterGrad16", filter_grad}, {"inputGrad16", input_grad}, {"gemm16", gemm}};
  napi_value object;
  napi_create_object(env, &object);
  for (size_t i = 0; i < sizeof KERNELS / sizeof KERNELS[0]; i++) {
    napi_value fn;
    napi_create_function(env, KERNELS[i].name, NAPI_AUTO_LENGTH, KERNELS[i].fn, (void *)set, &fn);
    napi_set_named_property(env, object, KERNELS[i].name, fn);
  }
  return object;
}

NAPI_MODULE_INIT() {
  for (int i = 0; kernel_variant(i); i++) {
    const KernelVariant *v = kernel_variant(i);
    if (kernel_runs(v)) napi_set_named_property(env, exports, v->name, kernel_object(env, v->set));
  }
  return exports;
}
