import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { PolygonRaster, gaussianBlur, resizeBicubic, type Projective } from '../../../src/data/synthetic/raster.js';
import { Rng } from '../../../src/util/rng.js';

const IDENTITY: Projective = [1, 0, 0, 0, 1, 0, 0, 0];
const sum = (a: Float32Array) => a.reduce((s, v) => s + v, 0);

function rect(l: number, t: number, r: number, b: number, clockwise = true): Float32Array {
  return clockwise ? Float32Array.of(l, t, r, t, r, b, l, b) : Float32Array.of(l, t, l, b, r, b, r, t);
}

function coverage(contours: Float32Array[], size: number, m: Projective = IDENTITY): Float32Array {
  const raster = new PolygonRaster();
  for (const c of contours) raster.addContour(c, m);
  const cov = new Float32Array(size * size);
  raster.fill(cov, size, size);
  return cov;
}

describe('PolygonRaster', () => {
  it('covers a rectangle by its area, with partial pixels on its edges and none outside', () => {
    // Rows 2.25..5.75 cross sub-scanlines at 0.125, 0.375, ... so the vertical cut is exact at quarter pixels.
    const cov = coverage([rect(1.5, 2.25, 6.25, 5.75)], 8);
    expect(sum(cov)).toBeCloseTo(4.75 * 3.5, 5);
    expect(cov[3 * 8 + 3]).toBeCloseTo(1, 6); // inside
    expect(cov[3 * 8 + 1]).toBeCloseTo(0.5, 6); // left edge column: half the pixel
    expect(cov[2 * 8 + 3]).toBeCloseTo(0.75, 6); // top edge row: three of four sub-scanlines
    expect(cov[0]).toBe(0);
    expect(cov[7 * 8 + 7]).toBe(0);
  });

  it('fills by the nonzero rule: overlaps count once, a reversed inner contour is a hole', () => {
    const union = coverage([rect(1, 1, 5, 5), rect(3, 3, 7, 7)], 8);
    expect(sum(union)).toBeCloseTo(16 + 16 - 4, 5);
    expect(Math.max(...union)).toBeCloseTo(1, 6);
    const ring = coverage([rect(1, 1, 7, 7), rect(3, 3, 5, 5, false)], 8);
    expect(sum(ring)).toBeCloseTo(36 - 4, 5);
    expect(ring[4 * 8 + 4]).toBe(0);
  });

  it("a triangle's coverage sums to its area within the sub-scanline error", () => {
    const cov = coverage([Float32Array.of(2, 2, 14, 4, 5, 13)], 16);
    const area = Math.abs((14 - 2) * (13 - 2) - (5 - 2) * (4 - 2)) / 2;
    expect(Math.abs(sum(cov) - area)).toBeLessThan(0.02 * area);
  });

  it('maps contours through a projective matrix (scale and shift here)', () => {
    const m: Projective = [2, 0, 1, 0, 2, 1, 0, 0];
    const cov = coverage([rect(0, 0, 2, 2)], 8, m); // -> 1..5 x 1..5
    expect(sum(cov)).toBeCloseTo(16, 5);
    expect(cov[0]).toBe(0);
    expect(cov[1 * 8 + 1]).toBeCloseTo(1, 6);
  });
});

describe('resizeBicubic', () => {
  const resize = (src: Float32Array, size: number, out: number) => {
    const dst = new Float32Array(out * out * 3);
    resizeBicubic(src, size, dst, out, new Float32Array(Math.max(size, out) ** 2 * 3));
    return dst;
  };

  it('keeps a constant image constant and an equal size unchanged', () => {
    const flat = resize(new Float32Array(12 * 12 * 3).fill(87), 12, 32);
    for (const v of flat) expect(v).toBeCloseTo(87, 3);
    const r = new Rng(3);
    const img = Float32Array.from({ length: 32 * 32 * 3 }, () => r.int(256));
    const same = resize(img, 32, 32);
    for (let i = 0; i < img.length; i++) expect(same[i]).toBeCloseTo(img[i]!, 3);
  });

  it('enlarging reproduces a linear ramp away from the edges (Keys a = -0.5 is exact for it)', () => {
    const S = 10;
    const src = new Float32Array(S * S * 3);
    for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) for (let c = 0; c < 3; c++) src[(y * S + x) * 3 + c] = 10 * x + 3 * y + c;
    const dst = resize(src, S, 32);
    const scale = S / 32;
    for (let y = 8; y < 24; y++) {
      for (let x = 8; x < 24; x++) {
        const sx = (x + 0.5) * scale - 0.5;
        const sy = (y + 0.5) * scale - 0.5;
        expect(dst[(y * 32 + x) * 3 + 1]).toBeCloseTo(10 * sx + 3 * sy + 1, 3);
      }
    }
  });

  it('shrinking matches sharp (libvips cubic) inside the image', async () => {
    const S = 48;
    const r = new Rng(48);
    const src = Float32Array.from({ length: S * S * 3 }, () => r.int(256));
    const mine = resize(src, S, 32);
    const ref = await sharp(Buffer.from(Uint8Array.from(src)), { raw: { width: S, height: S, channels: 3 } })
      .resize(32, 32, { kernel: 'cubic' })
      .raw()
      .toBuffer();
    let total = 0;
    let n = 0;
    for (let y = 4; y < 28; y++) {
      for (let x = 4; x < 28; x++) {
        for (let c = 0; c < 3; c++) {
          const i = (y * 32 + x) * 3 + c;
          const d = Math.abs(Math.min(255, Math.max(0, mine[i]!)) - ref[i]!);
          expect(d).toBeLessThan(8);
          total += d;
          n++;
        }
      }
    }
    expect(total / n).toBeLessThan(1);
  });
});

describe('gaussianBlur', () => {
  it('keeps the mean of a spot, spreads it symmetrically and leaves sigma 0 alone', () => {
    const S = 15;
    const img = new Float32Array(S * S * 3);
    img[(7 * S + 7) * 3] = 900;
    gaussianBlur(img, S, 1.2, new Float32Array(S * S * 3));
    let total = 0;
    for (let p = 0; p < S * S; p++) total += img[p * 3]!;
    expect(total).toBeCloseTo(900, 2);
    expect(img[(7 * S + 6) * 3]).toBeCloseTo(img[(7 * S + 8) * 3]!, 5);
    expect(img[(6 * S + 7) * 3]).toBeCloseTo(img[(8 * S + 7) * 3]!, 5);
    expect(img[(7 * S + 7) * 3]).toBeLessThan(900 / 4);
    const copy = Float32Array.from(img);
    gaussianBlur(img, S, 0, new Float32Array(S * S * 3));
    expect(img).toEqual(copy);
  });
});
