/**
 * Cast for the wasm backend: a cast to the dtype the tensor already has shares the buffer
 * (as the cpu backend does), instead of the native kernel's copy. tf.moments casts its
 * input to float32 on every BatchNormalization in training (~3 ms a step of copies on
 * the optimized model). A cast to bool is x != 0 (the native kernel stores the low byte of
 * the value: 2 -> 2, 0.5 -> 0, 254 for -2). Any other conversion goes to the native kernel.
 */
import * as tf from '@tensorflow/tfjs';
import { asWasm, runNative } from './heap.js';
import { shareBuffer } from './identity.js';

function cast({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const { x } = inputs as { x: tf.TensorInfo };
  const { dtype } = attrs as unknown as { dtype: tf.DataType };
  const b = asWasm(backend);
  if (dtype === 'bool' && (x.dtype === 'float32' || x.dtype === 'int32')) {
    const out = b.makeOutput(x.shape, 'bool');
    const src = b.typedArrayFromHeap(x);
    const dst = b.typedArrayFromHeap(out);
    for (let i = 0; i < src.length; i++) dst[i] = src[i] !== 0 ? 1 : 0; // NaN -> 1, as cpu
    return out;
  }
  if (dtype !== x.dtype || dtype === 'string' || dtype === 'complex64') return runNative(tf.Cast, b, inputs, attrs);
  return shareBuffer(backend, x);
}

export const castConfig: tf.KernelConfig = {
  kernelName: tf.Cast,
  backendName: 'wasm',
  kernelFunc: cast,
};
