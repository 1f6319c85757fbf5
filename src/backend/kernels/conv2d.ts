/**
 * Conv2D on wasm for stride 1 without padding (the models' convolutions while training;
 * inference runs FusedConv2D, which stays native): a wasm SIMD loop straight from x in NHWC
 * (simd.ts convRows), no im2col and no XNNPACK repacking of a filter that changes every
 * step. Output pixels go in tiles of heap.ts TILE_BYTES (rowTiles), one call per tile and block of 16 (then
 * 4) output channels. In a training step of batch 64 (~32 GFLOP/s on layers 2 and 3):
 * layer 1 ~4.7 -> ~3.9 ms, layer 2 ~13.7 -> ~11.6, layer 3 ~5.7 -> ~4.5.
 * Every other geometry, the threaded build (XNNPACK uses its pool there, these loops would
 * not) and runtimes without the SIMD module run the native kernel.
 */
import * as tf from '@tensorflow/tfjs';
import { asWasm, captureNative, f32, rowTiles, runNative } from './heap.js';
import { simdKernels } from './simd.js';

interface Conv2DAttrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dilations: [number, number] | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}


function conv2D({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const b = asWasm(backend);
  const { x, filter } = inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
  const { strides, pad, dataFormat, dilations, dimRoundingMode } = attrs as unknown as Conv2DAttrs;
  const simd = simdKernels(b);
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], filter.shape as [number, number, number, number],
    strides, dilations, pad, dimRoundingMode, false, dataFormat === 'NCHW' ? 'channelsFirst' : 'channelsLast',
  );
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci, outChannels: co, outHeight: oh, outWidth: ow } = info;
  const { filterHeight: kh, filterWidth: kw } = info;
  const direct = simd && dataFormat === 'NHWC' && co % 4 === 0 && x.dtype === 'float32'
    && info.strideHeight === 1 && info.strideWidth === 1 && info.dilationHeight === 1 && info.dilationWidth === 1
    && info.padInfo.top === 0 && info.padInfo.left === 0 && oh + kh - 1 <= h && ow + kw - 1 <= w
    && !sharedHeap(b);
  if (!direct) return runNative(tf.Conv2D, b, inputs, attrs);
  const out = b.makeOutput([n, oh, ow, co], 'float32');
  // Views after the last allocation (an allocation may move the heap).
  const yAt = f32(b, out).byteOffset;
  const xAt = f32(b, x).byteOffset;
  const wAt = f32(b, filter).byteOffset;
  const rowBytes = ow * co * 4;
  const xSteps = [ci * 4, w * ci * 4, h * w * ci * 4] as const; // per pixel, row, image
  for (const { image: i, images, row: y, rows } of rowTiles(n, oh, rowBytes)) {
    const yTile = yAt + (i * oh + y) * rowBytes;
    const xTile = xAt + (i * h + y) * w * ci * 4;
    for (let k = 0; k < co;) {
      const [width, fn] = co - k >= 16 ? [16, simd.convRows16x2] : [4, simd.convRows4x2];
      fn(xTile, wAt + k * 4, yTile + k * 4, kw * ci * 4, co * 4, images, rows, ow, ...xSteps, co * 4, kh);
      k += width;
    }
  }
  return out;
}

function sharedHeap(b: ReturnType<typeof asWasm>): boolean {
  const module = b.wasm as unknown as { asm?: { memory?: { buffer?: unknown } }; wasmMemory?: { buffer?: unknown } };
  const memory = module.asm?.memory ?? module.wasmMemory;
  return typeof SharedArrayBuffer !== 'undefined' && memory?.buffer instanceof SharedArrayBuffer;
}

/** Built at registration: it falls back to the native kernel, whose setup (cwrap) it must run. */
export function conv2DConfig(): tf.KernelConfig {
  const native = captureNative(tf.Conv2D);
  return { kernelName: tf.Conv2D, backendName: 'wasm', setupFunc: native?.setupFunc, kernelFunc: conv2D };
}
