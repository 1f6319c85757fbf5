/** The photo decoder: EXIF orientation, alpha, grey, and the letterbox it places the photo in. */
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeLetterboxed, placeInLetterbox } from '../../../src/data/images/photo.js';
import { LETTERBOX_FILL, READER_INPUT, letterboxOf } from '../../../src/tasks/read/format.js';
import { rejection } from '../../helpers.js';

const pixel = (image: Uint8Array, x: number, y: number) => Array.from(image.subarray((y * READER_INPUT.width + x) * 3, (y * READER_INPUT.width + x) * 3 + 3));

describe('decodeLetterboxed', () => {
  it('applies EXIF orientation: a 40x100 JPEG tagged 6 (turn 90 degrees clockwise) is a 100x40 photo, its top at the right', async () => {
    const top = await sharp({ create: { width: 40, height: 50, channels: 3, background: { r: 255, g: 0, b: 0 } } }).png().toBuffer();
    const jpg = await sharp({ create: { width: 40, height: 100, channels: 3, background: { r: 0, g: 0, b: 255 } } })
      .composite([{ input: top, top: 0, left: 0 }])
      .jpeg({ quality: 95 })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const r = await decodeLetterboxed(jpg);
    expect([r.width, r.height]).toEqual([100, 40]);
    expect(r.letterbox).toEqual(letterboxOf(100, 40));
    expect(pixel(r.image, 85, 24)[0]).toBeGreaterThan(240); // red: the stored top, now at the right
    expect(pixel(r.image, 10, 24)[2]).toBeGreaterThan(240);
    expect(pixel(r.image, 10, 0)).toEqual([LETTERBOX_FILL, LETTERBOX_FILL, LETTERBOX_FILL]); // padY = 5
  });

  it('flattens alpha onto white and turns grey into RGB', async () => {
    const clear = await sharp({ create: { width: 96, height: 48, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } }).png().toBuffer();
    expect(pixel((await decodeLetterboxed(clear)).image, 40, 20)).toEqual([255, 255, 255]);
    const grey = await sharp(Buffer.alloc(96 * 48, 77), { raw: { width: 96, height: 48, channels: 1 } }).png().toBuffer();
    expect(pixel((await decodeLetterboxed(grey)).image, 40, 20)).toEqual([77, 77, 77]);
  });

  it('refuses what is not an image, with the reason alone', async () => {
    expect((await rejection(decodeLetterboxed(Buffer.from('not an image')))).message).toMatch(/^not a readable image/);
    expect((await rejection(decodeLetterboxed(new Uint8Array(0)))).message).toBe('empty file (0 bytes)');
  });
});

describe('placeInLetterbox', () => {
  it('puts the resized photo at (padX, padY) and the fill everywhere else', () => {
    const lb = letterboxOf(50, 50); // 48x48 at padX 24
    const out = placeInLetterbox(new Uint8Array(lb.width * lb.height * 3).fill(9), lb);
    expect(pixel(out, lb.padX - 1, 0)).toEqual([LETTERBOX_FILL, LETTERBOX_FILL, LETTERBOX_FILL]);
    expect(pixel(out, lb.padX, 0)).toEqual([9, 9, 9]);
    expect(pixel(out, lb.padX + lb.width - 1, 47)).toEqual([9, 9, 9]);
    expect(pixel(out, lb.padX + lb.width, 47)).toEqual([LETTERBOX_FILL, LETTERBOX_FILL, LETTERBOX_FILL]);
  });
});
