/**
 * A residual network for 32x32 digits, after He et al. 2016 ("Deep Residual Learning for
 * Image Recognition", section 4.2: the CIFAR-10 ResNets), with BatchNorm after every
 * convolution and a dropout before the head:
 *
 *   stem     Conv2D(16, 3x3, same) -> BN -> ReLU                               32x32x16
 *   stage 1  3 basic blocks, 16 filters                                        32x32x16
 *   stage 2  3 basic blocks, 32 filters, the first with stride 2               16x16x32
 *   stage 3  3 basic blocks, 64 filters, the first with stride 2                8x8x64
 *   head     GlobalAveragePooling -> Dropout(0.2) -> Dense(10, softmax)
 *
 *   basic block:  x -> Conv(3x3, stride s, same) -> BN -> ReLU -> Conv(3x3, same) -> BN
 *                   -> Add(shortcut) -> ReLU
 *   shortcut:     x itself, or where the shape changes Conv(1x1, stride 2) -> BN
 *                 (He et al.'s option B)
 *
 * That is ResNet-20 (19 convolutions and the dense layer), 272,474 trainable parameters.
 * Convolutions carry no bias (the BatchNorm after each has one) and start from He-normal
 * weights, as Keras' ResNet examples do; everything is seeded from the run seed in layer order.
 * Every layer is a stock Keras/tfjs layer once saved (SeededDropout and
 * SyncBatchNormalization save as Dropout and BatchNormalization: models/io.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH, NUM_CLASSES } from '../config.js';
import { batchNorm, dense, LayerSeeds, SeededDropout } from './layers.js';

/** Filters per stage; each stage after the first halves the resolution. */
export const RESNET_WIDTHS = [16, 32, 64] as const;
/** Basic blocks per stage: 3 gives ResNet-20 (6n + 2 layers with n = 3). */
export const RESNET_BLOCKS = 3;
export const RESNET_DROPOUT = 0.2;

export function buildResnet(opts: { seed: number }): tf.LayersModel {
  const seeds = new LayerSeeds(opts.seed);
  const names = new LayerNames();
  const conv = (x: tf.SymbolicTensor, filters: number, kernelSize: number, strides: number): tf.SymbolicTensor =>
    tf.layers
      .conv2d({
        name: names.next('conv2d'),
        filters,
        kernelSize,
        strides,
        padding: 'same',
        useBias: false,
        kernelInitializer: tf.initializers.heNormal({ seed: seeds.next() }),
      })
      .apply(x) as tf.SymbolicTensor;
  const bn = (x: tf.SymbolicTensor) => batchNorm(names.next('batch_normalization')).apply(x) as tf.SymbolicTensor;
  const relu = (x: tf.SymbolicTensor) => tf.layers.reLU({ name: names.next('re_lu') }).apply(x) as tf.SymbolicTensor;

  const block = (x: tf.SymbolicTensor, filters: number, strides: number): tf.SymbolicTensor => {
    const inFilters = x.shape[3];
    const shortcut = strides === 1 && inFilters === filters ? x : bn(conv(x, filters, 1, strides));
    const y = bn(conv(relu(bn(conv(x, filters, 3, strides))), filters, 3, 1));
    return relu(tf.layers.add({ name: names.next('add') }).apply([y, shortcut]) as tf.SymbolicTensor);
  };

  const input = tf.input({ shape: [IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_CHANNELS], name: 'input_1' });
  let x = relu(bn(conv(input, RESNET_WIDTHS[0], 3, 1)));
  RESNET_WIDTHS.forEach((filters, stage) => {
    for (let b = 0; b < RESNET_BLOCKS; b++) x = block(x, filters, stage > 0 && b === 0 ? 2 : 1);
  });
  x = tf.layers.globalAveragePooling2d({ name: 'global_average_pooling2d' }).apply(x) as tf.SymbolicTensor;
  x = new SeededDropout({ name: 'dropout_1', rate: RESNET_DROPOUT, seed: seeds.next() }).apply(x) as tf.SymbolicTensor;
  const output = dense(seeds, 'dense_1', NUM_CLASSES, 'softmax').apply(x) as tf.SymbolicTensor;
  return tf.model({ name: 'resnet', inputs: input, outputs: output });
}

/** Keras-style layer names: conv2d_1, conv2d_2, ... per kind, in build order. */
class LayerNames {
  private readonly counts = new Map<string, number>();
  next(kind: string): string {
    const n = (this.counts.get(kind) ?? 0) + 1;
    this.counts.set(kind, n);
    return `${kind}_${n}`;
  }
}
