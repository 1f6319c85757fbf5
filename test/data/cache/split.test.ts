import { describe, expect, it } from 'vitest';
import { classCounts, sampleStratified, splitStratified } from '../../../src/data/cache/split.js';
import { Rng } from '../../../src/util/rng.js';

/** Imbalanced labels like SVHN's (many 1s, few 0s and 9s), in random order. */
function makeLabels(n: number, seed: number): Uint8Array {
  const weights = [0.06, 0.19, 0.14, 0.11, 0.1, 0.09, 0.08, 0.08, 0.07, 0.08];
  const rng = new Rng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let u = rng.next();
    let k = 0;
    while (k < 9 && u >= weights[k]!) u -= weights[k++]!;
    out[i] = k;
  }
  return out;
}

const gather = (labels: Uint8Array, idx: Uint32Array) => Uint8Array.from(idx, (i) => labels[i]!);

describe('splitStratified', () => {
  const labels = makeLabels(5003, 7);

  it('partitions every index exactly once, sorted, with round(N*f) in val', () => {
    const { train, val } = splitStratified(labels, { valFraction: 0.2, seed: 42 });
    expect(val.length).toBe(Math.round(5003 * 0.2));
    expect(train.length + val.length).toBe(5003);
    const seen = new Uint8Array(5003);
    for (const i of [...train, ...val]) seen[i]!++;
    expect(seen.every((c) => c === 1)).toBe(true);
    for (const a of [train, val]) for (let i = 1; i < a.length; i++) expect(a[i]!).toBeGreaterThan(a[i - 1]!);
  });

  it('keeps each class within one image of its proportional share', () => {
    const { val } = splitStratified(labels, { valFraction: 0.2, seed: 42 });
    const all = classCounts(labels);
    const v = classCounts(gather(labels, val));
    const scale = val.length / labels.length;
    all.forEach((c, k) => expect(Math.abs(v[k]! - c * scale)).toBeLessThanOrEqual(1));
  });

  it('is deterministic for a seed and differs between seeds', () => {
    const a = splitStratified(labels, { valFraction: 0.2, seed: 42 });
    const b = splitStratified(labels, { valFraction: 0.2, seed: 42 });
    const c = splitStratified(labels, { valFraction: 0.2, seed: 43 });
    expect(Buffer.from(a.val.buffer).equals(Buffer.from(b.val.buffer))).toBe(true);
    expect(Buffer.from(a.val.buffer).equals(Buffer.from(c.val.buffer))).toBe(false);
  });

  it('rejects bad fractions and labels outside 0..9', () => {
    expect(() => splitStratified(labels, { valFraction: 1.5, seed: 1 })).toThrow(/--val-fraction/);
    expect(() => splitStratified(labels, { valFraction: 0, seed: 1 })).toThrow(/--val-fraction/);
    expect(() => splitStratified(Uint8Array.of(1, 10, 2), { valFraction: 0.5, seed: 1 })).toThrow(/expected a digit 0..9, got 10/);
  });
});

describe('sampleStratified', () => {
  const labels = makeLabels(3000, 9);

  it('draws n distinct sorted indices with proportional classes', () => {
    const idx = sampleStratified(labels, 500, 3);
    expect(idx.length).toBe(500);
    expect(new Set(idx).size).toBe(500);
    for (let i = 1; i < idx.length; i++) expect(idx[i]!).toBeGreaterThan(idx[i - 1]!);
    const all = classCounts(labels);
    const got = classCounts(gather(labels, idx));
    all.forEach((c, k) => expect(Math.abs(got[k]! - (c * 500) / 3000)).toBeLessThanOrEqual(1));
  });

  it('returns everything when n >= N, and rejects n <= 0', () => {
    expect(Array.from(sampleStratified(Uint8Array.of(3, 1, 2), 10, 1))).toEqual([0, 1, 2]);
    expect(() => sampleStratified(labels, 0, 1)).toThrow(/positive integer/);
  });

  it('is deterministic for a seed', () => {
    expect(Array.from(sampleStratified(labels, 100, 5))).toEqual(Array.from(sampleStratified(labels, 100, 5)));
    expect(Array.from(sampleStratified(labels, 100, 5))).not.toEqual(Array.from(sampleStratified(labels, 100, 6)));
  });
});
