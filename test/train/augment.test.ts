import { describe, expect, it } from 'vitest';
import { IMAGE_BYTES } from '../../src/config.js';
import { AUGMENT_DEFAULTS, augmentBatch, scaleAugment, smoothLabels } from '../../src/train/augment.js';
import { Rng } from '../../src/util/rng.js';

function batch(n: number): Float32Array {
  const rng = new Rng(2);
  return Float32Array.from({ length: n * IMAGE_BYTES }, () => rng.next());
}

describe('augmentBatch', () => {
  it('is seeded, keeps pixels in [0, 1] and changes the images', () => {
    const x = batch(4);
    const a = x.slice();
    const b = x.slice();
    augmentBatch(a, 4, new Rng(9));
    augmentBatch(b, 4, new Rng(9));
    expect(a).toEqual(b);
    expect(a).not.toEqual(x);
    expect(Math.min(...a)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...a)).toBeLessThanOrEqual(1);
    const c = x.slice();
    augmentBatch(c, 4, new Rng(10));
    expect(c).not.toEqual(a);
  });

  it('is the identity with every range at zero (no hidden flips or offsets)', () => {
    const x = batch(2);
    const y = x.slice();
    augmentBatch(y, 2, new Rng(1), { maxShift: 0, maxScale: 0, maxRotateDeg: 0, maxContrast: 0 });
    for (let i = 0; i < x.length; i += 97) expect(y[i]).toBeCloseTo(x[i]!, 6);
  });

  it('shifts content: a bright column moves by at most the shift range', () => {
    const x = new Float32Array(IMAGE_BYTES);
    for (let r = 0; r < 32; r++) for (let c = 0; c < 3; c++) x[(r * 32 + 16) * 3 + c] = 1; // column 16
    augmentBatch(x, 1, new Rng(4), { maxShift: 2, maxScale: 0, maxRotateDeg: 0, maxContrast: 0 });
    const colMass = Array.from({ length: 32 }, (_, col) => x[(16 * 32 + col) * 3]!);
    const centre = colMass.reduce((s, v, col) => s + v * col, 0) / colMass.reduce((s, v) => s + v, 0);
    expect(Math.abs(centre - 16)).toBeLessThanOrEqual(2.01);
  });
});

describe('--augment-strength and label smoothing', () => {
  it('scales every range, 0 leaves images as they are, and contrast never reaches 0', () => {
    expect(scaleAugment(1)).toEqual(AUGMENT_DEFAULTS);
    expect(scaleAugment(2)).toEqual({ maxShift: 4, maxScale: 0.2, maxRotateDeg: 20, maxContrast: 0.4 });
    expect(scaleAugment(3).maxContrast).toBeLessThan(1);
    const x = Float32Array.from({ length: 2 * IMAGE_BYTES }, (_, i) => ((i * 37) % 101) / 100);
    const y = x.slice();
    augmentBatch(y, 2, new Rng(1), scaleAugment(0));
    for (let i = 0; i < x.length; i++) expect(y[i]).toBeCloseTo(x[i]!, 6);
    const z = x.slice();
    augmentBatch(z, 2, new Rng(1), scaleAugment(2));
    expect(z.some((v, i) => Math.abs(v - x[i]!) > 0.05)).toBe(true);
  });

  it('smooths one-hot rows to y(1 - e) + e/10, rows still summing to 1, the argmax kept', () => {
    const ys = new Float32Array(20);
    ys[3] = 1;
    ys[10 + 7] = 1;
    smoothLabels(ys, 2, 0.1);
    expect(ys[3]).toBeCloseTo(0.91, 6);
    expect(ys[0]).toBeCloseTo(0.01, 6);
    expect(ys.slice(0, 10).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    expect(ys.slice(10).indexOf(Math.max(...ys.slice(10)))).toBe(7);
  });
});
