import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeLetterboxed, decodePhoto, MAX_PHOTO_SIDE, scaleBoxToOriginal } from '../../../src/data/images/photo.js';
import { LETTERBOX_FILL, READER_INPUT, letterboxOf } from '../../../src/tasks/read/format.js';
import { letterboxPhoto } from '../../../src/tasks/read/letterbox.js';
import { rejection } from '../../helpers.js';
import { SvhnError } from '../../../src/errors.js';
import { writeBmp } from '../../predict/helpers.js';

const pixel = (image: Uint8Array, x: number, y: number) => Array.from(image.subarray((y * READER_INPUT.width + x) * 3, (y * READER_INPUT.width + x) * 3 + 3));

/** Pixel (x, y) of a decoded photo. */
const px = (p: { data: Uint8Array; width: number }, x: number, y: number) => Array.from(p.data.subarray((y * p.width + x) * 3, (y * p.width + x) * 3 + 3));

/** A w x h RGB gradient: red rises along x, green along y (so a rotation shows). */
function gradient(w: number, h: number): Buffer {
  const buf = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) buf.set([Math.round((x * 255) / (w - 1)), Math.round((y * 255) / (h - 1)), 40], (y * w + x) * 3);
  return buf;
}

describe('decodePhoto', () => {
  it('keeps a photo at its own size and pixels (PNG, lossless)', async () => {
    const rgb = gradient(37, 23);
    const d = await decodePhoto(await sharp(rgb, { raw: { width: 37, height: 23, channels: 3 } }).png().toBuffer());
    expect([d.photo.width, d.photo.height, d.width, d.height]).toEqual([37, 23, 37, 23]);
    expect(Buffer.from(d.photo.data)).toEqual(rgb);
  });

  it('applies EXIF orientation (6: turned 90 degrees clockwise), flattens alpha on white and makes grey RGB', async () => {
    const rotated = await sharp(gradient(30, 20), { raw: { width: 30, height: 20, channels: 3 } }).withMetadata({ orientation: 6 }).jpeg({ quality: 95 }).toBuffer();
    const r = await decodePhoto(rotated);
    expect([r.photo.width, r.photo.height, r.width, r.height]).toEqual([20, 30, 20, 30]);
    // Turned clockwise: the stored top-left corner (red 0, green 0) is now the top-right.
    expect(px(r.photo, 19, 0)[0]).toBeLessThan(30);
    expect(px(r.photo, 19, 0)[1]).toBeLessThan(30);
    const clear = await sharp(Buffer.alloc(5 * 4 * 4), { raw: { width: 5, height: 4, channels: 4 } }).png().toBuffer();
    expect(px((await decodePhoto(clear)).photo, 2, 2)).toEqual([255, 255, 255]);
    const grey = await sharp(Buffer.alloc(6 * 6, 77), { raw: { width: 6, height: 6, channels: 1 } }).toColourspace('b-w').png().toBuffer();
    const g = await decodePhoto(grey);
    expect(g.photo.data.length).toBe(6 * 6 * 3);
    expect(px(g.photo, 3, 3)).toEqual([77, 77, 77]);
  });

  it('reads BMP, which libvips does not', async () => {
    const bmp = writeBmp({ width: 13, height: 7, bpp: 24, pixel: () => [10, 200, 30, 255] });
    const d = await decodePhoto(bmp);
    expect([d.photo.width, d.photo.height]).toEqual([13, 7]);
    expect(px(d.photo, 12, 6)).toEqual([10, 200, 30]);
  });

  it(`scales a photo whose longer side is over ${MAX_PHOTO_SIDE} px down to it, and a box found there maps back to the original's pixels`, async () => {
    const big = await sharp({ create: { width: 2000, height: 1000, channels: 3, background: '#336699' } }).png().toBuffer();
    const d = await decodePhoto(big);
    expect([d.photo.width, d.photo.height, d.width, d.height]).toEqual([1600, 800, 2000, 1000]);
    expect(d.photo.data.length).toBe(1600 * 800 * 3);
    expect(scaleBoxToOriginal([160, 80, 320, 400], d)).toEqual([200, 100, 400, 500]);
    const small = await decodePhoto(big, { maxSide: 2000 });
    expect([small.photo.width, small.photo.height]).toEqual([2000, 1000]); // at the limit: untouched
    expect(scaleBoxToOriginal([1, 2, 3, 4], small)).toEqual([1, 2, 3, 4]);
  });

  it('fails with the reason alone for an empty or damaged file', async () => {
    await expect(decodePhoto(new Uint8Array(0))).rejects.toThrow(/^empty file \(0 bytes\)$/);
    const png = await sharp({ create: { width: 40, height: 40, channels: 3, background: '#000' } }).png().toBuffer();
    const e = await decodePhoto(png.subarray(0, 60)).catch((x) => x);
    expect(e).toBeInstanceOf(SvhnError);
    expect(e.message).toMatch(/^not a readable image: /);
  });
});

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

describe('letterboxPhoto', () => {
  it('puts the resized photo at (padX, padY) and the fill everywhere else', async () => {
    const lb = letterboxOf(50, 50); // 48x48 at padX 24
    const { pixels: out, letterbox } = await letterboxPhoto({ data: new Uint8Array(50 * 50 * 3).fill(9), width: 50, height: 50 });
    expect(letterbox).toEqual(lb);
    expect(pixel(out, lb.padX - 1, 0)).toEqual([LETTERBOX_FILL, LETTERBOX_FILL, LETTERBOX_FILL]);
    expect(pixel(out, lb.padX, 0)).toEqual([9, 9, 9]);
    expect(pixel(out, lb.padX + lb.width - 1, 47)).toEqual([9, 9, 9]);
    expect(pixel(out, lb.padX + lb.width, 47)).toEqual([LETTERBOX_FILL, LETTERBOX_FILL, LETTERBOX_FILL]);
  });
});
