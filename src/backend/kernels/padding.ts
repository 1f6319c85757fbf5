/**
 * Zero padding around NHWC images on the wasm heap, so that a convolution with 'same' (or
 * any explicit) padding runs on the direct SIMD loops written for 'valid' ones (conv2d.ts,
 * conv2dBackprop.ts), at stride 1 or more:
 *
 *   forward      conv(x, W, pads)    = conv(pad(x, pads), W, valid)
 *   filter grad  dW(x, dy, pads)     = dW(pad(x, pads), dy, valid)
 *   input grad   dx(dy, W, pads)     = conv(pad(dy, k - 1 - pads), flip(W), valid)     (stride 1)
 *                                     = crop(scatter of dy into pad(dx), pads)           (strided)
 *
 * Each costs one copy of x (or dy), against a convolution that reads it kh*kw times.
 */
import type * as tf from '@tensorflow/tfjs';
import type { ConvTeam } from './convTeam.js';
import { padImage, type PadJob } from './convTiles.js';
import { f32, type WasmBackendLike } from './heap.js';
import type { SimdKernels } from './simd.js';

/** Rows and columns of zeros around each image. */
export interface Pads {
  top: number;
  bottom: number;
  left: number;
  right: number;
}

/**
 * A new [n, h + top + bottom, w + left + right, c] tensor: x in the middle, zeros around.
 * With a team (the threaded build: convTeam.ts), its threads pad an image each.
 */
export function padImages(b: WasmBackendLike, x: tf.TensorInfo, p: Pads, team?: { simd: SimdKernels; team: ConvTeam }): tf.TensorInfo {
  const [n, h, w, c] = x.shape as [number, number, number, number];
  const out = b.makeOutput([n, h + p.top + p.bottom, w + p.left + p.right, c], 'float32');
  // Views after the allocation (it may move the heap).
  const src = f32(b, x);
  const job: PadJob = { kind: 'pad', src: src.byteOffset, dst: f32(b, out).byteOffset, n, h, w, c, top: p.top, bottom: p.bottom, left: p.left, right: p.right };
  if (team) {
    team.team.run(team.simd, job);
  } else {
    const heap = new Float32Array(src.buffer);
    for (let i = 0; i < n; i++) padImage(heap, job, i);
  }
  return out;
}

/** A new [n, h, w, c] tensor: the middle of `padded` ([n, h + top + bottom, w + left + right, c]). */
export function cropImages(b: WasmBackendLike, padded: tf.TensorInfo, p: Pads): tf.TensorInfo {
  const [n, ph, pw, c] = padded.shape as [number, number, number, number];
  const h = ph - p.top - p.bottom;
  const w = pw - p.left - p.right;
  const out = b.makeOutput([n, h, w, c], 'float32');
  // Views after the allocation (it may move the heap).
  const src = f32(b, padded);
  const dst = f32(b, out);
  const row = w * c;
  for (let i = 0; i < n; i++) {
    for (let y = 0; y < h; y++) {
      const from = ((i * ph + y + p.top) * pw + p.left) * c;
      dst.set(src.subarray(from, from + row), (i * h + y) * row);
    }
  }
  return out;
}

/** Whether any side is padded. */
export function isPadded(p: Pads): boolean {
  return p.top > 0 || p.bottom > 0 || p.left > 0 || p.right > 0;
}
