/**
 * A tiny model whose answers are known in advance: global average pooling then a dense
 * softmax that picks the digit whose prototype colour is nearest the image's mean colour
 * (logits = -K * |c - p_d|^2 up to a constant, with c in [0, 1] after x / 255). A solid
 * image of prototype colour d must come back as digit d: that checks decoding, colour
 * conversion and scaling end to end, not just that something was predicted.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { saveLayersModel } from '../../src/models/io.js';

/** Digit -> RGB 0..255. Grey (8) is what a wrong /255 scaling would misread as white. */
export const PROTOTYPES: [number, number, number][] = [
  [0, 0, 0], // 0 black
  [255, 255, 255], // 1 white
  [255, 0, 0], // 2 red
  [0, 255, 0], // 3 green
  [0, 0, 255], // 4 blue
  [255, 255, 0], // 5 yellow
  [0, 255, 255], // 6 cyan
  [255, 0, 255], // 7 magenta
  [128, 128, 128], // 8 grey
  [255, 128, 0], // 9 orange
];

const K = 20;

/**
 * `conv`: a 3x3 convolution in front that passes each pixel through unchanged (the centre tap
 * is the identity, padding 'same' repeats nothing the mean would notice on a solid image), so
 * the answers stay the same while the convolution kernels (and wasm's helper threads) run.
 */
export function buildColourModel(opts: { conv?: boolean } = {}): tf.LayersModel {
  const model = tf.sequential();
  if (opts.conv) model.add(tf.layers.conv2d({ inputShape: [32, 32, 3], filters: 3, kernelSize: 3, padding: 'same' }));
  model.add(tf.layers.globalAveragePooling2d(opts.conv ? {} : { inputShape: [32, 32, 3] }));
  model.add(tf.layers.dense({ units: 10, activation: 'softmax' }));
  if (opts.conv) {
    const kernel = tf.buffer([3, 3, 3, 3]);
    for (let c = 0; c < 3; c++) kernel.set(1, 1, 1, c, c);
    const weights = [kernel.toTensor(), tf.zeros([3])];
    model.layers[0]!.setWeights(weights);
    tf.dispose(weights);
  }
  const p = PROTOTYPES.map((c) => c.map((v) => v / 255));
  const kernel = tf.tensor2d([0, 1, 2].map((ch) => p.map((pd) => 2 * K * pd[ch]!))); // [3, 10]
  const bias = tf.tensor1d(p.map((pd) => -K * pd.reduce((s, v) => s + v * v, 0)));
  model.layers[model.layers.length - 1]!.setWeights([kernel, bias]);
  kernel.dispose();
  bias.dispose();
  return model;
}

/** Writes model.json, weights.bin and a metadata.json into dir. */
export async function saveColourModel(dir: string, opts: { conv?: boolean } = {}): Promise<void> {
  await mkdir(dir, { recursive: true });
  const model = buildColourModel(opts);
  await saveLayersModel(model, dir);
  const params = model.countParams();
  model.dispose();
  const metadata = {
    name: 'colour-test',
    architecture: 'colour-test',
    inputShape: [32, 32, 3],
    numClasses: 10,
    params: { total: params, trainable: params, nonTrainable: 0 },
    synthetic: false,
    dataManifestSha256: '',
    seed: 0,
    backend: 'cpu',
    threads: 1,
    versions: {},
    hyperparameters: { epochs: 0, batchSize: 1, lr: 0, patience: 0, augment: false, limit: null, valLimit: null, extra: false },
    epochsRun: 0,
    bestEpoch: 0,
    stoppedEarly: false,
    validation: { loss: 0, acc: 0 },
    wallTimeSec: 0,
    trainImagesPerSec: 0,
    createdAt: new Date(0).toISOString(),
  };
  await writeFile(join(dir, 'metadata.json'), JSON.stringify(metadata));
}

/** A solid w x h RGB buffer of prototype colour `digit`. */
export function solidRgb(digit: number, w: number, h: number): Buffer {
  const [r, g, b] = PROTOTYPES[digit]!;
  const buf = Buffer.alloc(w * h * 3);
  for (let i = 0; i < w * h; i++) {
    buf[i * 3] = r;
    buf[i * 3 + 1] = g;
    buf[i * 3 + 2] = b;
  }
  return buf;
}

/** A minimal BMP writer for layouts Pillow does not write: top-down rows, 16-bit 5-6-5, V4 with an alpha mask. */
export function writeBmp(opts: { width: number; height: number; bpp: 16 | 24 | 32; topDown?: boolean; pixel: (x: number, y: number) => [number, number, number, number] }): Buffer {
  const { width, height, bpp } = opts;
  const headerSize = bpp === 24 ? 40 : 108; // V4 carries the masks (and alpha) for 16/32 bit
  const stride = Math.floor((bpp * width + 31) / 32) * 4;
  const offset = 14 + headerSize;
  const buf = Buffer.alloc(offset + stride * height);
  buf.write('BM', 0, 'ascii');
  buf.writeUInt32LE(buf.length, 2);
  buf.writeUInt32LE(offset, 10);
  buf.writeUInt32LE(headerSize, 14);
  buf.writeInt32LE(width, 18);
  buf.writeInt32LE(opts.topDown ? -height : height, 22);
  buf.writeUInt16LE(1, 26);
  buf.writeUInt16LE(bpp, 28);
  buf.writeUInt32LE(bpp === 24 ? 0 : 3, 30); // BI_RGB or BI_BITFIELDS
  buf.writeUInt32LE(stride * height, 34);
  if (bpp === 16) {
    buf.writeUInt32LE(0xf800, 54);
    buf.writeUInt32LE(0x07e0, 58);
    buf.writeUInt32LE(0x001f, 62);
    buf.writeUInt32LE(0, 66);
  } else if (bpp === 32) {
    buf.writeUInt32LE(0x00ff0000, 54);
    buf.writeUInt32LE(0x0000ff00, 58);
    buf.writeUInt32LE(0x000000ff, 62);
    buf.writeUInt32LE(0xff000000, 66);
  }
  for (let y = 0; y < height; y++) {
    const row = offset + (opts.topDown ? y : height - 1 - y) * stride;
    for (let x = 0; x < width; x++) {
      const [r, g, b, a] = opts.pixel(x, y);
      if (bpp === 24) {
        buf[row + x * 3] = b;
        buf[row + x * 3 + 1] = g;
        buf[row + x * 3 + 2] = r;
      } else if (bpp === 16) {
        buf.writeUInt16LE(((r >> 3) << 11) | ((g >> 2) << 5) | (b >> 3), row + x * 2);
      } else {
        buf.writeUInt32LE(((a << 24) | (r << 16) | (g << 8) | b) >>> 0, row + x * 4);
      }
    }
  }
  return buf;
}
