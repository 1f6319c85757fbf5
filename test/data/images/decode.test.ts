import sharp from 'sharp';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage, decodeImageFile, padToSquare } from '../../../src/data/images/decode.js';
import { PROTOTYPES, solidRgb, writeBmp } from '../../predict/helpers.js';

/** Pixel (x, y) of a decoded 32x32x3 image. */
const px = (img: Uint8Array, x: number, y: number) => Array.from(img.subarray((y * 32 + x) * 3, (y * 32 + x) * 3 + 3));

function expectNear(got: number[], want: number[], tol: number): void {
  got.forEach((v, i) => expect(Math.abs(v - want[i]!), `channel ${i}: got ${got} want ${want}`).toBeLessThanOrEqual(tol));
}

/** Left half colour a, right half colour b. */
function halves(w: number, h: number, a: number[], b: number[]): Buffer {
  const buf = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) buf.set(x < w / 2 ? a : b, (y * w + x) * 3);
  return buf;
}

describe('decodeImage', () => {
  const raw = (buf: Buffer, w: number, h: number, channels: 1 | 2 | 3 | 4 = 3) => sharp(buf, { raw: { width: w, height: h, channels } });

  const formats: [string, (s: sharp.Sharp) => sharp.Sharp, number][] = [
    ['png', (s) => s.png(), 0],
    ['jpeg', (s) => s.jpeg({ quality: 95 }), 6],
    ['webp', (s) => s.webp({ lossless: true }), 0],
    ['gif', (s) => s.gif(), 8],
    ['tiff', (s) => s.tiff({ compression: 'lzw' }), 0],
  ];
  for (const [name, encode, tol] of formats) {
    it(`decodes ${name} of an odd size (45x27) to 32x32 RGB of the same colour`, async () => {
      const bytes = await encode(raw(solidRgb(9, 45, 27), 45, 27)).toBuffer();
      const img = await decodeImage(bytes);
      expect(img.length).toBe(3072);
      for (const [x, y] of [[0, 0], [16, 16], [31, 31]] as const) expectNear(px(img, x, y), PROTOTYPES[9]!, tol);
    });
  }

  it('decodes BMP (24-bit and 32-bit with alpha)', async () => {
    const img = await decodeImage(writeBmp({ width: 10, height: 7, bpp: 24, pixel: () => [255, 0, 255, 255] }));
    expect(px(img, 5, 5)).toEqual([255, 0, 255]);
    const clear = await decodeImage(writeBmp({ width: 10, height: 7, bpp: 32, pixel: () => [0, 0, 0, 0] }));
    expect(px(clear, 5, 5)).toEqual([255, 255, 255]); // transparent -> white
  });

  it('turns grey into three equal channels', async () => {
    const bytes = await sharp(Buffer.alloc(20 * 12, 90), { raw: { width: 20, height: 12, channels: 1 } }).toColourspace('b-w').png().toBuffer();
    expect((await sharp(bytes).metadata()).channels).toBe(1);
    const img = await decodeImage(bytes);
    expect(px(img, 10, 10)).toEqual([90, 90, 90]);
  });

  it('flattens alpha onto white', async () => {
    const rgba = Buffer.alloc(8 * 8 * 4);
    for (let i = 0; i < 64; i++) rgba.set(i < 32 ? [0, 0, 0, 0] : [0, 0, 255, 255], i * 4); // top half clear, bottom opaque blue
    const img = await decodeImage(await raw(rgba, 8, 8, 4).png().toBuffer());
    expect(px(img, 16, 2)).toEqual([255, 255, 255]);
    expect(px(img, 16, 29)).toEqual([0, 0, 255]);
    const greyAlpha = Buffer.alloc(6 * 6 * 2);
    for (let i = 0; i < 36; i++) greyAlpha.set([0, 128], i * 2); // black at ~50% alpha
    const ga = await decodeImage(await raw(greyAlpha, 6, 6, 2).png().toBuffer());
    expectNear(px(ga, 3, 3), [127, 127, 127], 1);
  });

  it('keeps the aspect ratio and pads with edge pixels, centred', async () => {
    // 10 wide x 20 tall, left red / right blue -> 16x32 in the middle, 8 columns of padding each side.
    const img = await decodeImage(await raw(halves(10, 20, [255, 0, 0], [0, 0, 255]), 10, 20).png().toBuffer());
    expect(px(img, 0, 10)).toEqual([255, 0, 0]);
    expect(px(img, 31, 10)).toEqual([0, 0, 255]);
    expect(px(img, 9, 10)).toEqual([255, 0, 0]);
    expect(px(img, 22, 10)).toEqual([0, 0, 255]);
  });

  it('applies EXIF orientation', async () => {
    // Stored 20x10 left red / right blue, orientation 6 (display rotated 90 degrees clockwise):
    // shown 10x20 with red on top and blue below.
    const bytes = await raw(halves(20, 10, [255, 0, 0], [0, 0, 255]), 20, 10).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
    expect((await sharp(bytes).metadata()).orientation).toBe(6);
    const img = await decodeImage(bytes);
    expectNear(px(img, 16, 4), [255, 0, 0], 30);
    expectNear(px(img, 16, 28), [0, 0, 255], 30);
  });

  it('returns a 32x32 PNG byte for byte', async () => {
    const rgb = Buffer.alloc(3072);
    for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 37 + (i >> 7)) & 255;
    const img = await decodeImage(await raw(rgb, 32, 32).png().toBuffer());
    expect(Buffer.from(img).equals(rgb)).toBe(true);
  });

  it('rejects empty, non-image and truncated data with a reason', async () => {
    await expect(decodeImage(new Uint8Array(0))).rejects.toThrow(/empty file/);
    await expect(decodeImage(Buffer.from('hello, not an image'))).rejects.toThrow(/not a readable image/);
    const png = await raw(solidRgb(2, 40, 40), 40, 40).png().toBuffer();
    await expect(decodeImage(png.subarray(0, png.length / 2))).rejects.toThrow(/not a readable image/);
  });

  it('gives every one of many concurrent decodes of a truncated PNG the same reason, never "Unknown error"', async () => {
    // libvips keeps one error buffer for its threads: under concurrency some failures read it
    // empty ("Unknown error") while others read libpng's message.
    const png = await raw(solidRgb(3, 64, 48), 64, 48).png({ compressionLevel: 0 }).toBuffer();
    const cut = png.subarray(0, Math.floor(png.length * 0.6));
    const results = await Promise.allSettled(Array.from({ length: 48 }, () => decodeImage(cut)));
    const reasons = results.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : 'decoded'));
    expect(reasons.filter((m) => /unknown error/i.test(m))).toEqual([]);
    expect(new Set(reasons).size).toBe(1);
    expect(reasons[0]).toMatch(/^not a readable image: /);
  });
});

describe('padToSquare', () => {
  it('repeats edge pixels of a 32x2 strip over the rows above and below', () => {
    const strip = new Uint8Array(32 * 2 * 3);
    strip.fill(10, 0, 96); // row 0
    strip.fill(200, 96); // row 1
    const out = padToSquare(strip, 32, 2);
    expect(px(out, 5, 0)).toEqual([10, 10, 10]); // top padding copies row 0
    expect(px(out, 5, 15)).toEqual([10, 10, 10]); // row 0 lands at y = 15
    expect(px(out, 5, 16)).toEqual([200, 200, 200]);
    expect(px(out, 5, 31)).toEqual([200, 200, 200]);
  });
});

describe('decodeImageFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'svhn-decode-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('names a zero-byte file and a missing file in the reason', async () => {
    await writeFile(join(dir, 'zero.png'), '');
    await expect(decodeImageFile(join(dir, 'zero.png'))).rejects.toThrow(/empty file \(0 bytes\)/);
    await expect(decodeImageFile(join(dir, 'gone.png'))).rejects.toThrow(/no such file/);
  });
});
