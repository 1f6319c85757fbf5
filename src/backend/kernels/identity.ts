/**
 * Identity without a copy, as the cpu backend does it: the output shares the input's heap
 * buffer and bumps its reference count (the buffer is freed when both are disposed). The
 * native kernel copies: ~135 copies, ~12 ms, per training step of the optimized model, from
 * tf.clone / tf.identity in the optimizer and layers.
 */
import * as tf from '@tensorflow/tfjs';

/** The same buffer under a new tensor: the output holds a reference of its own, so the
 * buffer is freed when both are disposed (as the cpu backend's Identity does). */
export function shareBuffer(backend: unknown, x: tf.TensorInfo): tf.TensorInfo {
  (backend as { incRef(dataId: object): void }).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

function identity({ inputs, backend }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const { x } = inputs as { x: tf.TensorInfo };
  if (x.dtype === 'string') throw new Error('wasm Identity: string tensors are not supported');
  return shareBuffer(backend, x);
}

export const identityConfig: tf.KernelConfig = {
  kernelName: tf.Identity,
  backendName: 'wasm',
  kernelFunc: identity,
};
