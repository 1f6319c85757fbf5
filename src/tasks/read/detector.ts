/**
 * The reader's detector: a small fully convolutional network that finds each digit's centre
 * and box in a letterboxed photo (format.ts), after CenterNet (Zhou et al. 2019, "Objects as
 * Points"), class-agnostic: which digit each box holds is the digit classifier's answer
 * (reader.ts), the model that already reads 32x32 crops best.
 *
 *   input   48 x 96 x 3, the photo letterboxed, pixels / 255
 *   stem    Conv(16, 3x3) -> BN -> ReLU                                      48 x 96 x 16
 *           Conv(32, 3x3, stride 2) -> BN -> ReLU, Conv(32, 3x3) -> BN -> ReLU  24 x 48 x 32  (fine)
 *   body    Conv(48, 3x3, stride 2) -> BN -> ReLU, 4 x [Conv(48, 3x3) -> BN -> ReLU]  12 x 24 x 48
 *   back    Conv(32, 1x1) -> BN of the body, UpSampling(2), Add(fine) -> ReLU   24 x 48 x 32
 *           Conv(32, 3x3) -> BN -> ReLU                                       24 x 48 x 32
 *   head    Conv(5, 1x1): per cell of the 24 x 48 grid (a cell is 2 x 2 input pixels)
 *             0  centre logit: sigmoid = the chance a digit's centre lies in this cell
 *             1  x offset of that centre within the cell, in cells (0..1)
 *             2  y offset, in cells
 *             3  log of the box's width, in cells
 *             4  log of its height, in cells
 *
 * The grid was 12 x 24 (4 x 4-pixel cells, the body's own) until the real photos showed that one
 * cell cannot hold two centres: in 16 of bench:read's 256 photos (6.3%; 8.7% of the synthetic
 * test photos) two neighbouring digits' centres fell within one cell of each other, where the
 * 3 x 3 peak rule (peaks.ts) keeps one, and all 16 were read wrong. With 2 x 2-pixel cells it is
 * 3 of 256 (1.2%). The body still sees at 4 px; `fine` gives the head back the 2-px detail.
 *
 * Receptive field 57 input pixels: a whole digit (about 31 px tall in the median photo) and
 * some of its neighbours. About 115 MFLOP per photo forward. Every layer is a stock tfjs layer
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
  const fine = convBnRelu(x, 32);
  x = convBnRelu(fine, 48, 2);
  for (let i = 0; i < 4; i++) x = convBnRelu(x, 48);
  // back to 2-px cells: the body's features, 1x1 to fine's width, each cell repeated 2 x 2, added to fine
  const lateral = tf.layers.conv2d({
    name: name('conv2d'),
    filters: 32,
    kernelSize: 1,
    useBias: false,
    kernelInitializer: tf.initializers.heNormal({ seed: seeds.next() }),
  });
  const up = tf.layers.upSampling2d({ name: name('up_sampling2d'), size: [2, 2] }).apply(batchNorm(name('batch_normalization')).apply(lateral.apply(x))) as tf.SymbolicTensor;
  x = tf.layers.reLU({ name: name('re_lu') }).apply(tf.layers.add({ name: name('add') }).apply([up, fine])) as tf.SymbolicTensor;
  x = convBnRelu(x, 32);
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
