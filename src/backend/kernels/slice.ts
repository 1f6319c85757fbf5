/**
 * Slice of a contiguous run (a range along the first axis, as model.predict takes its batches
 * of 32 from the input): one copy from a view of the heap. The native kernel first copies the
 * whole input out of the heap (readSync), then the slice from that copy: ~2 ms a batch of 32
 * from a batch of 256 images, ~3% of the resnet's inference. Other slices and string tensors
 * run the native kernel.
 */
import * as tf from '@tensorflow/tfjs';
import { asWasm, captureNative, runNative } from './heap.js';

function slice({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const b = asWasm(backend);
  const { x } = inputs as { x: tf.TensorInfo };
  const { begin, size } = attrs as unknown as { begin: number | number[]; size?: number | number[] };
  const [begin_, size_] = tf.slice_util.parseSliceParams(x, begin, size);
  if (x.dtype === 'string' || !tf.slice_util.isSliceContinous(x.shape, begin_!, size_!)) return runNative(tf.Slice, b, inputs, attrs);
  const offset = tf.slice_util.computeFlatOffset(begin_!, tf.util.computeStrides(x.shape));
  const out = b.makeOutput(size_!, x.dtype);
  // Views after the allocation (it may move the heap).
  b.typedArrayFromHeap(out).set(b.typedArrayFromHeap(x).subarray(offset, offset + tf.util.sizeFromShape(size_!)));
  return out;
}

/** Built at registration: it falls back to the native kernel, whose setup it must run. */
export function sliceConfig(): tf.KernelConfig {
  const native = captureNative(tf.Slice);
  return { kernelName: tf.Slice, backendName: 'wasm', setupFunc: native?.setupFunc, kernelFunc: slice };
}
