/**
 * The two notebook CNNs built inline for the backend tests (so they test the wasm kernels
 * on exactly these layer shapes without depending on the training code). `dropout: false`
 * leaves the Dropout layers out: gradients then compare deterministically across backends.
 */
import * as tf from '@tensorflow/tfjs';

export type TestModelName = 'baseline' | 'optimized';

export function buildTestModel(name: TestModelName, opts: { seed: number; dropout: boolean }): tf.Sequential {
  let seed = opts.seed;
  const init = () => tf.initializers.glorotUniform({ seed: seed++ });
  const m = tf.sequential();
  const conv = (filters: number, first: boolean) =>
    tf.layers.conv2d({ filters, kernelSize: 3, activation: 'relu', kernelInitializer: init(), ...(first ? { inputShape: [32, 32, 3] } : {}) });
  const drop = (rate: number) => {
    if (opts.dropout) m.add(tf.layers.dropout({ rate }));
  };
  if (name === 'baseline') {
    m.add(conv(32, true));
    m.add(tf.layers.maxPooling2d({ poolSize: 2 }));
    m.add(conv(64, false));
    m.add(tf.layers.maxPooling2d({ poolSize: 2 }));
    m.add(tf.layers.flatten());
    drop(0.5);
  } else {
    [32, 64, 128].forEach((f, i) => {
      m.add(conv(f, i === 0));
      m.add(tf.layers.batchNormalization({ momentum: 0.99, epsilon: 1e-3 }));
      m.add(tf.layers.maxPooling2d({ poolSize: 2 }));
    });
    m.add(tf.layers.flatten());
    drop(0.4);
  }
  m.add(tf.layers.dense({ units: 128, activation: 'relu', kernelInitializer: init() }));
  drop(0.3);
  m.add(tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: init() }));
  return m;
}
