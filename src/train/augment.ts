/**
 * --augment: small random shifts, scale, rotation and contrast on the float batch, seeded;
 * --augment-strength scales the ranges. Also label smoothing, the other change a recipe makes
 * to a batch's arrays.
 * No flips (a mirrored 2 or 5 is not a digit). Plain JS on the batch's Float32Array, so it is
 * identical on every backend and adds no tensors; about 1 ms for 64 images.
 */
import { IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH, NUM_CLASSES } from '../config.js';
import type { Rng } from '../util/rng.js';

export interface AugmentOptions {
  maxShift: number; // pixels, each axis
  maxScale: number; // relative: scale in [1 - s, 1 + s]
  maxRotateDeg: number; // degrees either way
  maxContrast: number; // relative: contrast factor in [1 - c, 1 + c], about the image mean
}

/** Mild, like Keras' ImageDataGenerator settings commonly used for SVHN. */
export const AUGMENT_DEFAULTS: AugmentOptions = { maxShift: 2, maxScale: 0.1, maxRotateDeg: 10, maxContrast: 0.2 };

/** The strongest --augment-strength: 3x the defaults shifts 6 px, scales by up to 30% and turns 30 degrees, still digit-safe. */
export const MAX_AUGMENT_STRENGTH = 3;

/**
 * --augment-strength: every range of AUGMENT_DEFAULTS times `strength` (1: the defaults). No
 * flips at any strength (a mirrored 2 or 5 is not a digit); contrast never reaches 0.
 */
export function scaleAugment(strength: number): AugmentOptions {
  const d = AUGMENT_DEFAULTS;
  return {
    maxShift: d.maxShift * strength,
    maxScale: Math.min(d.maxScale * strength, 0.5),
    maxRotateDeg: d.maxRotateDeg * strength,
    maxContrast: Math.min(d.maxContrast * strength, 0.9),
  };
}

/**
 * Label smoothing (Szegedy et al. 2016) in place on `size` one-hot rows of ys:
 * y * (1 - e) + e / 10, as Keras' CategoricalCrossentropy(label_smoothing=e). The argmax
 * stays, so training accuracy still counts the true class.
 */
export function smoothLabels(ys: Float32Array, size: number, e: number): void {
  const k = NUM_CLASSES;
  for (let i = 0; i < size * k; i++) ys[i] = ys[i]! * (1 - e) + e / k;
}

const H = IMAGE_HEIGHT;
const W = IMAGE_WIDTH;
const C = IMAGE_CHANNELS;
const PIXELS = H * W * C;

/**
 * Augments `size` images of xs (NHWC float32 in [0, 1]) in place. Each image: an affine warp
 * about the centre (bilinear, edge pixels repeat outward), then contrast, clipped to [0, 1].
 * Draws exactly 5 numbers per image from rng, so the stream stays aligned run to run.
 */
export function augmentBatch(xs: Float32Array, size: number, rng: Rng, opts: AugmentOptions = AUGMENT_DEFAULTS): void {
  const src = new Float32Array(PIXELS);
  for (let n = 0; n < size; n++) {
    const img = xs.subarray(n * PIXELS, (n + 1) * PIXELS);
    src.set(img);
    const tx = rng.uniform(-opts.maxShift, opts.maxShift);
    const ty = rng.uniform(-opts.maxShift, opts.maxShift);
    const scale = rng.uniform(1 - opts.maxScale, 1 + opts.maxScale);
    const angle = (rng.uniform(-opts.maxRotateDeg, opts.maxRotateDeg) * Math.PI) / 180;
    const contrast = rng.uniform(1 - opts.maxContrast, 1 + opts.maxContrast);
    warpAffine(src, img, { tx, ty, scale, angle });
    adjustContrast(img, contrast);
  }
}

/** Output pixel (x, y) samples the input at the inverse transform of (x - tx, y - ty) about the centre. */
function warpAffine(src: Float32Array, dst: Float32Array, t: { tx: number; ty: number; scale: number; angle: number }): void {
  const cx = (W - 1) / 2;
  const cy = (H - 1) / 2;
  const cos = Math.cos(t.angle) / t.scale;
  const sin = Math.sin(t.angle) / t.scale;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const dx = x - cx - t.tx;
      const dy = y - cy - t.ty;
      let sx = cos * dx + sin * dy + cx;
      let sy = -sin * dx + cos * dy + cy;
      sx = Math.min(Math.max(sx, 0), W - 1);
      sy = Math.min(Math.max(sy, 0), H - 1);
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const x1 = Math.min(x0 + 1, W - 1);
      const y1 = Math.min(y0 + 1, H - 1);
      const fx = sx - x0;
      const fy = sy - y0;
      const o = (y * W + x) * C;
      for (let c = 0; c < C; c++) {
        const a = src[(y0 * W + x0) * C + c]!;
        const b = src[(y0 * W + x1) * C + c]!;
        const d = src[(y1 * W + x0) * C + c]!;
        const e = src[(y1 * W + x1) * C + c]!;
        dst[o + c] = (a * (1 - fx) + b * fx) * (1 - fy) + (d * (1 - fx) + e * fx) * fy;
      }
    }
  }
}

function adjustContrast(img: Float32Array, factor: number): void {
  let mean = 0;
  for (let k = 0; k < img.length; k++) mean += img[k]!;
  mean /= img.length;
  for (let k = 0; k < img.length; k++) img[k] = Math.min(1, Math.max(0, mean + (img[k]! - mean) * factor));
}
