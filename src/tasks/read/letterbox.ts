/**
 * Photo pixels in and out of the reader's input (format.ts): the letterbox itself, and the
 * square crop of a digit box that the digit classifier reads.
 */
import sharp from 'sharp';
import { IMAGE_HEIGHT, IMAGE_WIDTH } from '../../config.js';
import type { Box } from '../../data/images/photoLabels.js';
import { digitSquare } from './assemble.js';
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
  // the square's pixels, each clamped to the photo (edge repeat)
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
  const { data } = await sharp(square, { raw: { width: side, height: side, channels: 3 } })
    .resize(IMAGE_WIDTH, IMAGE_HEIGHT, { fit: 'fill', kernel: 'cubic' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}
