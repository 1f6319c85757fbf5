/**
 * OneHot for the wasm backend: the native kernel writes int32 bit patterns into a float32
 * output (1 reads back as 1.4e-45). Indices outside [0, depth) give an all-off row, as on
 * cpu.
 */
import * as tf from '@tensorflow/tfjs';
import { asWasm } from './heap.js';

interface OneHotAttrs {
  depth: number;
  onValue: number;
  offValue: number;
  dtype: tf.DataType;
}

function oneHot({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const b = asWasm(backend);
  const { indices } = inputs as { indices: tf.TensorInfo };
  const { depth, onValue, offValue, dtype } = attrs as unknown as OneHotAttrs;
  const out = b.makeOutput([...indices.shape, depth], dtype);
  const idx = b.typedArrayFromHeap(indices);
  const dst = b.typedArrayFromHeap(out);
  dst.fill(offValue);
  for (let i = 0; i < idx.length; i++) {
    const k = idx[i];
    if (k >= 0 && k < depth) dst[i * depth + k] = onValue;
  }
  return out;
}

export const oneHotConfig: tf.KernelConfig = {
  kernelName: tf.OneHot,
  backendName: 'wasm',
  kernelFunc: oneHot,
};
