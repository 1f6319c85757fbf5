/**
 * A whole photo -> the reader's input (tasks/read/format.ts): READER_INPUT, letterboxed.
 *
 *   1. decode as the digit decoder does (./decode.ts): sharp for PNG, JPEG, WebP, GIF (first
 *      frame), TIFF (first page), ./bmp.ts for BMP; EXIF orientation applied; alpha flattened
 *      onto white; grey, CMYK and 16-bit converted to 8-bit sRGB.
 *   2. resize to the letterbox's width x height (letterboxOf of the oriented size), sharp's
 *      default kernel (lanczos3);
 *   3. placed at (padX, padY) on a LETTERBOX_FILL canvas, in a raw pixel array.
 *
 * Deterministic: the same bytes give the same pixels (for the same sharp and libvips).
 * Errors are SvhnError('BAD_INPUT') whose message is the reason alone: the caller names the file.
 */
import sharp, { type Sharp } from 'sharp';
import { SvhnError } from '../../errors.js';
import { LETTERBOX_FILL, READER_IMAGE_BYTES, READER_INPUT, letterboxOf, type Letterbox } from '../../tasks/read/format.js';
import { decodeBmp, isBmp } from './bmp.js';
import { FLATTEN_BACKGROUND, reason, retryUnknownErrors } from './decode.js';

export interface LetterboxedPhoto {
  /** The photo's own size, after EXIF orientation (boxes are in these pixels). */
  width: number;
  height: number;
  letterbox: Letterbox;
  /** READER_INPUT.height x width x 3 uint8, HWC. */
  image: Uint8Array;
}

/** The resized photo (lb.width x lb.height x 3) placed on a LETTERBOX_FILL canvas of READER_INPUT. */
export function placeInLetterbox(resized: Uint8Array, lb: Letterbox): Uint8Array {
  const c = READER_INPUT.channels;
  if (resized.length !== lb.width * lb.height * c) throw new Error(`placeInLetterbox: expected ${lb.width}x${lb.height}x${c} bytes, got ${resized.length}`);
  const out = new Uint8Array(READER_IMAGE_BYTES).fill(LETTERBOX_FILL);
  const row = lb.width * c;
  for (let y = 0; y < lb.height; y++) out.set(resized.subarray(y * row, (y + 1) * row), ((lb.padY + y) * READER_INPUT.width + lb.padX) * c);
  return out;
}

/** The decoding pipeline and the photo's oriented size. */
async function openPhoto(bytes: Uint8Array): Promise<{ pipeline: Sharp; width: number; height: number }> {
  if (isBmp(bytes)) {
    const bmp = decodeBmp(bytes);
    return { pipeline: sharp(bmp.data, { raw: { width: bmp.width, height: bmp.height, channels: bmp.channels } }), width: bmp.width, height: bmp.height };
  }
  // failOn 'error': a truncated file fails instead of decoding half grey; pages 1: first frame.
  const pipeline = sharp(bytes, { failOn: 'error', pages: 1 }).autoOrient();
  const meta = await pipeline.metadata(); // the header only; its autoOrient is the size once turned
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  if (!width || !height) throw new SvhnError('BAD_INPUT', 'not a readable image: no size in its header');
  return { pipeline, width, height };
}

async function decodeOnce(bytes: Uint8Array): Promise<LetterboxedPhoto> {
  try {
    const { pipeline, width, height } = await openPhoto(bytes);
    const letterbox = letterboxOf(width, height);
    const { data, info } = await pipeline
      .flatten({ background: FLATTEN_BACKGROUND })
      .toColourspace('srgb')
      .resize(letterbox.width, letterbox.height, { fit: 'fill' })
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== READER_INPUT.channels || info.width !== letterbox.width || info.height !== letterbox.height) {
      throw new SvhnError('BAD_INPUT', `decoder returned ${info.width}x${info.height}x${info.channels}, expected ${letterbox.width}x${letterbox.height}x3`);
    }
    return { width, height, letterbox, image: placeInLetterbox(new Uint8Array(data.buffer, data.byteOffset, data.length), letterbox) };
  } catch (e) {
    if (e instanceof SvhnError) throw e;
    throw new SvhnError('BAD_INPUT', `not a readable image: ${reason(e)}`, { cause: e });
  }
}

/** Decodes a photo's bytes (any supported format) into the reader's letterboxed input. */
export async function decodeLetterboxed(bytes: Uint8Array): Promise<LetterboxedPhoto> {
  if (bytes.length === 0) throw new SvhnError('BAD_INPUT', 'empty file (0 bytes)');
  return retryUnknownErrors(() => decodeOnce(bytes));
}
