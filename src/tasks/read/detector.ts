/**
 * The reader's detector: a small fully convolutional network that finds each digit's centre
 * and box in a letterboxed photo (format.ts), after CenterNet (Zhou et al. 2019, "Objects as
 * Points"), class-agnostic: which digit each box holds is the digit classifier's answer
 * (reader.ts), the model that already reads 32x32 crops best.
 *
 *   input   48 x 96 x 3, the photo letterboxed, pixels / 255
 *   stem    Conv(16, 3x3) -> BN -> ReLU                                      48 x 96 x 16
 *           Conv(32, 3x3, stride 2) -> BN -> ReLU, Conv(32, 3x3) -> BN -> ReLU  24 x 48 x 32
 *           Conv(48, 3x3, stride 2) -> BN -> ReLU, 4 x [Conv(48, 3x3) -> BN -> ReLU]  12 x 24 x 48
 *   head    Conv(5, 1x1): per cell of the 12 x 24 grid (a cell is 4 x 4 input pixels)
 *             0  centre logit: sigmoid = the chance a digit's centre lies in this cell
 *             1  x offset of that centre within the cell, in cells (0..1)
 *             2  y offset, in cells
 *             3  log of the box's width, in cells
 *             4  log of its height, in cells
 *
 * Receptive field 53 input pixels: a whole digit (about 31 px tall in the median photo) and
 * some of its neighbours. About 95 MFLOP per photo forward. Every layer is a stock tfjs layer
 * (BatchNormalization saves as itself: models/io.ts), so stock tfjs and the browser load it.
 */
import * as tf from '@tensorflow/tfjs';
import { batchNorm, LayerSeeds } from '../../models/layers.js';
import { HEAD_CHANNELS, READER_INPUT } from './format.js';

/** The centre logit's starting bias: sigmoid(-2.19) = 0.1, CenterNet's prior, so the first steps are not swamped by the many empty cells. */
const CENTRE_PRIOR_BIAS = -2.19;

export function buildDetector(opts: { seed: number }): tf.LayersModel {
  const seeds = new LayerSeeds(opts.seed);
  const names = new Map<string, number>();
  const name = (kind: string) => {
    const n = (names.get(kind) ?? 0) + 1;
    names.set(kind, n);
    return `${kind}_${n}`;
  };
  const convBnRelu = (x: tf.SymbolicTensor, filters: number, strides = 1): tf.SymbolicTensor => {
    const c = tf.layers.conv2d({
      name: name('conv2d'),
      filters,
      kernelSize: 3,
      strides,
      padding: 'same',
      useBias: false,
      kernelInitializer: tf.initializers.heNormal({ seed: seeds.next() }),
    });
    const b = batchNorm(name('batch_normalization'));
    return tf.layers.reLU({ name: name('re_lu') }).apply(b.apply(c.apply(x))) as tf.SymbolicTensor;
  };
  const input = tf.input({ shape: [READER_INPUT.height, READER_INPUT.width, READER_INPUT.channels], name: 'input_1' });
  let x = convBnRelu(input, 16);
  x = convBnRelu(x, 32, 2);
  x = convBnRelu(x, 32);
  x = convBnRelu(x, 48, 2);
  for (let i = 0; i < 4; i++) x = convBnRelu(x, 48);
  const head = tf.layers.conv2d({
    name: name('conv2d'),
    filters: HEAD_CHANNELS,
    kernelSize: 1,
    padding: 'same',
    kernelInitializer: tf.initializers.glorotUniform({ seed: seeds.next() }),
    biasInitializer: tf.initializers.constant({ value: 0 }),
  });
  const output = head.apply(x) as tf.SymbolicTensor;
  const model = tf.model({ name: 'reader', inputs: input, outputs: output });
  // The centre channel starts at CenterNet's prior; the others at 0 (offset 0, size 1 cell).
  // (getWeights gives the variables themselves: not disposed here; setWeights assigns a copy.)
  const start = tf.tensor1d([CENTRE_PRIOR_BIAS, 0, 0, 0, 0]);
  head.setWeights([head.getWeights()[0]!, start]);
  start.dispose();
  return model;
}
