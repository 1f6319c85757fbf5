/**
 * Any image file -> one 32x32 RGB uint8 image (3072 bytes, HWC), the way every image enters
 * svhn (predict's inputs, and the labelled folders and CSVs that preprocess and evaluate
 * read), so training and prediction see the same pixels:
 *
 *   1. decode: sharp (libvips) for PNG, JPEG, WebP, GIF (first frame), TIFF (first page);
 *      ./bmp.ts for BMP, which libvips does not read.
 *   2. orient: EXIF orientation applied (a phone photo shows the way its viewer shows it).
 *   3. colour: alpha flattened onto white (a digit drawn on a transparent background reads
 *      as dark-on-light, the common case); grey, CMYK and 16-bit inputs converted to 8-bit sRGB.
 *   4. size: resized to fit inside 32x32 keeping the aspect ratio (sharp fit 'inside',
 *      lanczos3), then padded to a square by repeating the edge pixels, centred.
 *      Why not stretch: SVHN's crops were made by widening each digit's box to a square
 *      around it and then resizing, so digits in training are never distorted; edge padding
 *      stands in for the neighbouring street scene a square window would have shown.
 *      A square input (such as a 32x32 SVHN crop) is resized only, never padded, and a
 *      32x32 PNG comes out byte for byte as it went in.
 *
 * Steps 1-3 are decodeWith, shared with whole photos at their own size (./photo.ts, `svhn read`).
 * Scaling to [0, 1] (x / 255, as in training) happens per batch (data/cache/batches.ts scalePixels).
 * Errors are SvhnError('BAD_INPUT') whose message is the reason alone: the caller names the file.
 */
import sharp, { type Sharp } from 'sharp';
import { IMAGE_BYTES, IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH } from '../../config.js';
import { SvhnError } from '../../errors.js';
import { readRegularFile } from '../../util/files.js';
import { decodeBmp, isBmp } from './bmp.js';

/** Extensions taken from folders (files named on the command line are tried whatever their name). */
export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp', '.gif', '.bmp', '.tif', '.tiff'] as const;

/** White: what transparent pixels become. */
const FLATTEN_BACKGROUND = { r: 255, g: 255, b: 255 };

function reason(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return (msg.split('\n')[0] ?? msg).replace(/^Input (buffer|file) /, 'image ');
}

/**
 * Pads an RGB image of w x h (both <= 32) to 32x32 by repeating its edge pixels, centred.
 * Returns the image itself when it is already 32x32.
 */
export function padToSquare(data: Uint8Array, w: number, h: number): Uint8Array {
  if (w === IMAGE_WIDTH && h === IMAGE_HEIGHT) return data;
  const out = new Uint8Array(IMAGE_BYTES);
  const left = Math.floor((IMAGE_WIDTH - w) / 2);
  const top = Math.floor((IMAGE_HEIGHT - h) / 2);
  for (let y = 0; y < IMAGE_HEIGHT; y++) {
    const sy = Math.min(h - 1, Math.max(0, y - top));
    for (let x = 0; x < IMAGE_WIDTH; x++) {
      const sx = Math.min(w - 1, Math.max(0, x - left));
      const s = (sy * w + sx) * IMAGE_CHANNELS;
      const o = (y * IMAGE_WIDTH + x) * IMAGE_CHANNELS;
      out[o] = data[s]!;
      out[o + 1] = data[s + 1]!;
      out[o + 2] = data[s + 2]!;
    }
  }
  return out;
}

export interface DecodeOptions {
  /**
   * Largest width x height decoded; bigger images fail from their header, before any pixel
   * is expanded (a decompression bomb: a few KB of PNG can claim gigapixels). Default: sharp's own.
   */
  maxPixels?: number;
}

/** Why an image over the pixel limit was refused, with its size when the header says it. */
async function pixelLimitReason(bytes: Uint8Array, maxPixels: number): Promise<string> {
  const meta = await sharp(bytes, { limitInputPixels: false }).metadata().catch(() => undefined);
  const size = meta?.width && meta.height ? `${meta.width}x${meta.height} (${meta.width * meta.height} pixels)` : 'the image';
  return `${size} is over the limit of ${maxPixels} pixels`;
}

/** Decodes image bytes (any supported format) to 32x32x3 uint8. */
export async function decodeImage(bytes: Uint8Array, opts: DecodeOptions = {}): Promise<Uint8Array> {
  return decodeWith(bytes, opts, async (pipeline) => {
    const { data, info } = await pipeline
      .resize(IMAGE_WIDTH, IMAGE_HEIGHT, { fit: 'inside' })
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== IMAGE_CHANNELS || info.width > IMAGE_WIDTH || info.height > IMAGE_HEIGHT) {
      throw new SvhnError('BAD_INPUT', `decoder returned ${info.width}x${info.height}x${info.channels}, expected at most 32x32x3`);
    }
    return padToSquare(new Uint8Array(data.buffer, data.byteOffset, data.length), info.width, info.height);
  });
}

/**
 * Steps 1-3 for any caller's size step (`finish`: 32x32 here, a whole photo in ./photo.ts):
 * `finish` gets the pipeline decoded, oriented, flattened and in sRGB, and ends it. Every
 * failure becomes a SvhnError('BAD_INPUT') with the reason alone; empty bytes fail first.
 */
export async function decodeWith<T>(bytes: Uint8Array, opts: DecodeOptions, finish: (pipeline: Sharp) => Promise<T>): Promise<T> {
  if (bytes.length === 0) throw new SvhnError('BAD_INPUT', 'empty file (0 bytes)');
  try {
    return await decodeOnce(bytes, opts, finish);
  } catch (e) {
    // libvips keeps one error buffer for its threads: a failure among concurrent decodes can
    // find it emptied by another ("Unknown error"). Decoding again alone reads the real reason,
    // so the same damaged file gets the same message wherever it fails.
    let last = e;
    for (let attempt = 0; attempt < RETRIES_ALONE && isUnknown(last); attempt++) {
      try {
        return await alone(() => decodeOnce(bytes, opts, finish));
      } catch (again) {
        last = again;
      }
    }
    throw last;
  }
}

/** Decodes again after an "Unknown error": others' first attempts may still run beside the first retry. */
const RETRIES_ALONE = 5;
const isUnknown = (e: unknown) => e instanceof SvhnError && /unknown error/i.test(e.message);

/** One decode at a time through here (the retries above). */
let aloneQueue: Promise<unknown> = Promise.resolve();
function alone<T>(run: () => Promise<T>): Promise<T> {
  const next = aloneQueue.then(run, run);
  aloneQueue = next.catch(() => undefined);
  return next;
}

async function decodeOnce<T>(bytes: Uint8Array, opts: DecodeOptions, finish: (pipeline: Sharp) => Promise<T>): Promise<T> {
  try {
    let pipeline: Sharp;
    if (isBmp(bytes)) {
      const bmp = decodeBmp(bytes, opts.maxPixels);
      pipeline = sharp(bmp.data, { raw: { width: bmp.width, height: bmp.height, channels: bmp.channels } });
    } else {
      // failOn 'error': a truncated file fails instead of decoding half grey; pages 1: first frame.
      pipeline = sharp(bytes, { failOn: 'error', pages: 1, ...(opts.maxPixels ? { limitInputPixels: opts.maxPixels } : {}) }).autoOrient();
    }
    return await finish(pipeline.flatten({ background: FLATTEN_BACKGROUND }).toColourspace('srgb'));
  } catch (e) {
    if (e instanceof SvhnError) throw e;
    if (opts.maxPixels && /exceeds pixel limit/.test(reason(e))) throw new SvhnError('BAD_INPUT', await pixelLimitReason(bytes, opts.maxPixels), { cause: e });
    throw new SvhnError('BAD_INPUT', `not a readable image: ${reason(e)}`, { cause: e });
  }
}

/** Reads one image file's bytes; an unreadable file is a BAD_INPUT error like a bad image. */
export async function readImageFile(path: string): Promise<Buffer> {
  try {
    return await readRegularFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : reason(e);
    throw new SvhnError('BAD_INPUT', `cannot read: ${why}`, { cause: e });
  }
}

/** Reads and decodes one image file; an unreadable file is a BAD_INPUT error like a bad image. */
export async function decodeImageFile(path: string): Promise<Uint8Array> {
  return decodeImage(await readImageFile(path));
}
