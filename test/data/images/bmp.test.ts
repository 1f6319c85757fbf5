import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeBmp, isBmp } from '../../../src/data/images/bmp.js';
import { writeBmp } from '../../predict/helpers.js';

const FIXTURES = join(import.meta.dirname, '../../fixtures/bmp');
// Written and read back by Pillow (make_bmp_fixtures.py): an independent reference.
const expected = JSON.parse(readFileSync(join(FIXTURES, 'expected.json'), 'utf8')) as Record<string, { width: number; height: number; channels: number; pixels: number[] }>;

describe('decodeBmp', () => {
  for (const [name, want] of Object.entries(expected)) {
    it(`reads ${name} exactly as Pillow does`, () => {
      const got = decodeBmp(readFileSync(join(FIXTURES, name)));
      expect([got.width, got.height, got.channels]).toEqual([want.width, want.height, want.channels]);
      expect(Array.from(got.data)).toEqual(want.pixels);
    });
  }

  const pattern = (x: number, y: number): [number, number, number, number] => [(x * 40) & 255, (y * 60) & 255, ((x + y) * 25) & 255, x === 0 ? 0 : 255];

  it('reads top-down rows the same as bottom-up ones', () => {
    const up = decodeBmp(writeBmp({ width: 5, height: 4, bpp: 24, pixel: pattern }));
    const down = decodeBmp(writeBmp({ width: 5, height: 4, bpp: 24, topDown: true, pixel: pattern }));
    expect(down.data).toEqual(up.data);
    expect(Array.from(up.data.subarray((1 * 5 + 2) * 3, (1 * 5 + 2) * 3 + 3))).toEqual(pattern(2, 1).slice(0, 3));
  });

  it('reads 32-bit bitfields with an alpha mask as RGBA', () => {
    const img = decodeBmp(writeBmp({ width: 3, height: 2, bpp: 32, pixel: pattern }));
    expect(img.channels).toBe(4);
    expect(Array.from(img.data.subarray(0, 4))).toEqual(pattern(0, 0)); // alpha 0 at x = 0
    expect(Array.from(img.data.subarray(4 * 4, 4 * 4 + 4))).toEqual(pattern(1, 1));
  });

  it('reads 16-bit 5-6-5 bitfields, scaling each channel to 0..255', () => {
    const img = decodeBmp(writeBmp({ width: 2, height: 1, bpp: 16, pixel: (x) => (x === 0 ? [255, 255, 255, 255] : [255, 0, 132, 255]) }));
    expect(img.channels).toBe(3);
    expect(Array.from(img.data)).toEqual([255, 255, 255, 255, 0, Math.round(((132 >> 3) / 31) * 255)]);
  });

  it('refuses truncated, RLE and non-BMP data with a reason', () => {
    const good = readFileSync(join(FIXTURES, 'rgb24_7x5.bmp'));
    expect(() => decodeBmp(good.subarray(0, good.length - 10))).toThrow(/truncated pixel data/);
    const rle = Buffer.from(readFileSync(join(FIXTURES, 'pal8_9x4.bmp')));
    rle.writeUInt32LE(1, 30);
    expect(() => decodeBmp(rle)).toThrow(/RLE8 is not supported/);
    expect(isBmp(Buffer.from('not a bmp'))).toBe(false);
    expect(() => decodeBmp(Buffer.from('BM'))).toThrow(/shorter than a BMP header/);
  });
});
