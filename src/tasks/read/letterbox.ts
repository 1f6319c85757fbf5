/**
 * Photo pixels in and out of the reader's input (format.ts): the letterbox itself, and the
 * square crop of a digit box that the digit classifier reads.
 */
import sharp from 'sharp';
import { IMAGE_BYTES, IMAGE_HEIGHT, IMAGE_WIDTH } from '../../config.js';
import type { Box } from '../../data/images/photoLabels.js';
import { digitSquare, digitViews } from './assemble.js';
import { LETTERBOX_FILL, READER_IMAGE_BYTES, READER_INPUT, letterboxOf, type Letterbox } from './format.js';
import type { RgbPhoto } from './reading.js';

/**
 * The photo letterboxed into READER_INPUT: resized by sharp (its default kernel, lanczos3) to
 * the letterbox's size, placed at its offset on a LETTERBOX_FILL ground. 48 x 96 x 3 uint8.
 */
export async function letterboxPhoto(photo: RgbPhoto): Promise<{ pixels: Uint8Array; letterbox: Letterbox }> {
  const lb = letterboxOf(photo.width, photo.height);
  const { data } = await sharp(photo.data, { raw: { width: photo.width, height: photo.height, channels: 3 } })
    .resize(lb.width, lb.height, { fit: 'fill' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const pixels = new Uint8Array(READER_IMAGE_BYTES).fill(LETTERBOX_FILL);
  const row = lb.width * 3;
  for (let y = 0; y < lb.height; y++) pixels.set(data.subarray(y * row, (y + 1) * row), ((y + lb.padY) * READER_INPUT.width + lb.padX) * 3);
  return { pixels, letterbox: lb };
}

/**
 * A digit as SVHN cut its 32x32 crops: the box widened along its shorter side to a square
 * about its centre, resized bicubic to 32x32 (../shared/realsvhn/README.md). Where the
 * square leaves the photo, the edge pixels repeat. 32 x 32 x 3 uint8.
 */
export async function cropDigit(photo: RgbPhoto, box: Box): Promise<Uint8Array> {
  const { left, top, side } = digitSquare(box);
  return resizeSquare(squareOf(photo, left, top, side), side, IMAGE_WIDTH);
}

/**
 * A digit's views (assemble.ts DIGIT_VIEWS) as the classifier reads them, view after view,
 * 32 x 32 x 3 uint8 each: views that only move the box are windows of one resize (the square
 * grown by the largest move on each side, resized so the digit's square comes out 32 px, each
 * view 32x32 at its offset), one sharp call a digit instead of one a view; any view that scales
 * the box is cut on its own (cropDigit of digitViews' box).
 */
export async function cropDigitViews(photo: RgbPhoto, box: Box, views: ReadonlyArray<readonly [number, number, number]>): Promise<Uint8Array> {
  const out = new Uint8Array(views.length * IMAGE_BYTES);
  if (views.some(([s]) => s !== 1)) {
    const boxes = digitViews([box], views);
    for (let i = 0; i < boxes.length; i++) out.set(await cropDigit(photo, boxes[i]!), i * IMAGE_BYTES);
    return out;
  }
  // the moves in crop pixels, whole
  const moves = views.map(([, dx, dy]) => [Math.round(dx * IMAGE_WIDTH), Math.round(dy * IMAGE_HEIGHT)] as const);
  const margin = Math.max(0, ...moves.map(([x, y]) => Math.max(Math.abs(x), Math.abs(y))));
  if (margin === 0) {
    const one = await cropDigit(photo, box);
    for (let i = 0; i < views.length; i++) out.set(one, i * IMAGE_BYTES);
    return out;
  }
  const grown = IMAGE_WIDTH + 2 * margin;
  const { side } = digitSquare(box);
  const bigSide = Math.max(1, Math.round((side * grown) / IMAGE_WIDTH));
  const cx = (box[0] + box[2]) / 2;
  const cy = (box[1] + box[3]) / 2;
  const big = await resizeSquare(squareOf(photo, Math.round(cx - bigSide / 2), Math.round(cy - bigSide / 2), bigSide), bigSide, grown);
  const row = IMAGE_WIDTH * 3;
  moves.forEach(([mx, my], i) => {
    for (let y = 0; y < IMAGE_HEIGHT; y++) {
      const from = ((y + margin + my) * grown + margin + mx) * 3;
      out.set(big.subarray(from, from + row), i * IMAGE_BYTES + y * row);
    }
  });
  return out;
}

/** The side x side square at (left, top) of the photo, RGB, each pixel clamped to the photo (edge repeat). */
function squareOf(photo: RgbPhoto, left: number, top: number, side: number): Uint8Array {
  const square = new Uint8Array(side * side * 3);
  for (let y = 0; y < side; y++) {
    const sy = Math.min(photo.height - 1, Math.max(0, top + y));
    for (let x = 0; x < side; x++) {
      const sx = Math.min(photo.width - 1, Math.max(0, left + x));
      const s = (sy * photo.width + sx) * 3;
      const d = (y * side + x) * 3;
      square[d] = photo.data[s]!;
      square[d + 1] = photo.data[s + 1]!;
      square[d + 2] = photo.data[s + 2]!;
    }
  }
  return square;
}

/** An RGB square resized bicubic (sharp's cubic kernel) to size x size. */
async function resizeSquare(square: Uint8Array, side: number, size: number): Promise<Uint8Array> {
  const { data } = await sharp(square, { raw: { width: side, height: side, channels: 3 } })
    .resize(size, size, { fit: 'fill', kernel: 'cubic' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}
