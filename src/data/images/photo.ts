/**
 * Any image file -> a whole photo's RGB pixels at its own size (tasks/read/reading.ts RgbPhoto),
 * the way photos enter `svhn read`. Decoding, EXIF orientation, alpha flattened on white and
 * grey/CMYK/16-bit to 8-bit sRGB are decode.ts's steps 1-3 (decodeWith), so a photo reads the
 * same here as its crops do in predict; only the size step differs:
 *
 *   A photo whose longer side exceeds MAX_PHOTO_SIDE is scaled down to it first (keeping its
 *   aspect ratio, lanczos3). The reader letterboxes every photo into 48x96 anyway
 *   (tasks/read/format.ts), so the pixels above 1600 carry nothing it could use, and a 48 MP
 *   phone photo would otherwise hold 144 MB of RGB per photo in flight. The original size is
 *   returned beside the pixels: a box found in the scaled photo is mapped back with
 *   scaleBoxToOriginal, so readings are always in the original photo's pixels.
 *
 * decodeLetterboxed is the same decode, then the reader's letterbox (tasks/read/letterbox.ts):
 * `svhn preprocess --format full` builds the photo cache through it, and `svhn read` reaches the
 * same letterbox from decodePhoto's pixels, so a photo is the same input in training and in use.
 */
import type { Box } from './photoLabels.js';
import type { RgbPhoto } from '../../tasks/read/reading.js';
import { SvhnError } from '../../errors.js';
import { decodeWith, readImageFile, type DecodeOptions } from './decode.js';
import type { Letterbox } from '../../tasks/read/format.js';
import { letterboxPhoto } from '../../tasks/read/letterbox.js';

/** px: the longest side a photo is decoded at (see the top of this file). */
export const MAX_PHOTO_SIDE = 1600;

export interface DecodedPhoto {
  /** The pixels the reader sees: the photo, scaled down when a side was over the limit. */
  photo: RgbPhoto;
  /** The photo's own size, EXIF orientation applied, before any scaling. */
  width: number;
  height: number;
}

export interface PhotoDecodeOptions extends DecodeOptions {
  /** Longest side decoded, px (default MAX_PHOTO_SIDE). */
  maxSide?: number;
}

/** Decodes image bytes (any supported format) to RGB at the photo's size, or scaled so its longer side is `maxSide`. */
export async function decodePhoto(bytes: Uint8Array, opts: PhotoDecodeOptions = {}): Promise<DecodedPhoto> {
  const maxSide = opts.maxSide ?? MAX_PHOTO_SIDE;
  return decodeWith(bytes, opts, async (pipeline) => {
    const meta = await pipeline.metadata();
    const width = meta.autoOrient?.width ?? meta.width;
    const height = meta.autoOrient?.height ?? meta.height;
    if (!(width > 0 && height > 0)) throw new SvhnError('BAD_INPUT', `not a readable image: no size in its header`);
    if (Math.max(width, height) > maxSide) pipeline = pipeline.resize(maxSide, maxSide, { fit: 'inside' });
    const { data, info } = await pipeline.removeAlpha().raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new SvhnError('BAD_INPUT', `decoder returned ${info.channels} channels, expected 3 (RGB)`);
    return { photo: { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height }, width, height };
  });
}

/** Reads and decodes one photo file; an unreadable file is a BAD_INPUT error like a bad image. */
export async function decodePhotoFile(path: string, opts: PhotoDecodeOptions = {}): Promise<DecodedPhoto> {
  return decodePhoto(await readImageFile(path), opts);
}

/** A box in the decoded (maybe scaled) photo's pixels -> the original photo's pixels. */
export function scaleBoxToOriginal(box: Box, decoded: DecodedPhoto): Box {
  const sx = decoded.width / decoded.photo.width;
  const sy = decoded.height / decoded.photo.height;
  return [box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy];
}

export interface LetterboxedPhoto {
  /** The photo's own size, after EXIF orientation (boxes are in these pixels). */
  width: number;
  height: number;
  /** Where the decoded photo sits in the input (of the decoded size: boxToInput with width/height maps the original's boxes, the ratios being equal up to rounding of a >1600 px photo). */
  letterbox: Letterbox;
  /** READER_INPUT.height x width x 3 uint8, HWC. */
  image: Uint8Array;
}

/** Decodes a photo's bytes (any supported format) into the reader's letterboxed input. */
export async function decodeLetterboxed(bytes: Uint8Array, opts: PhotoDecodeOptions = {}): Promise<LetterboxedPhoto> {
  const decoded = await decodePhoto(bytes, opts);
  const { pixels, letterbox } = await letterboxPhoto(decoded.photo);
  return { width: decoded.width, height: decoded.height, letterbox, image: pixels };
}
