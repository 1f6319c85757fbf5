/**
 * The detector's targets (tasks/read/targets.ts) on hand-made label records, checked against
 * the arithmetic written out here: centre cell, offsets, log sizes, the bump and its weight, in
 * input pixels over the stride S (input pixels per cell), so they hold at any grid.
 */
import { describe, expect, it } from 'vitest';
import { DETECTOR_STRIDE as S, GRID_HEIGHT, GRID_WIDTH, LABEL_BYTES, writeLabelRecord } from '../../../src/tasks/read/format.js';
import { encodeTarget, TARGET_CHANNELS, TARGET_LENGTH, trueCentres } from '../../../src/tasks/read/targets.js';
import type { Box } from '../../../src/data/images/photoLabels.js';

/** Label records of several photos, one after another. */
function records(...photos: Box[][]): Uint8Array {
  const labels = new Uint8Array(photos.length * LABEL_BYTES);
  photos.forEach((boxes, i) => writeLabelRecord(boxes, labels, i * LABEL_BYTES));
  return labels;
}
const at = (t: Float32Array, x: number, y: number, ch: number, offset = 0) => t[offset + (y * GRID_WIDTH + x) * TARGET_CHANNELS + ch]!;

describe('encodeTarget', () => {
  it('one digit: its centre cell, offset within the cell, log size in cells, bump 1 there and weight 0', () => {
    // box [11, 9, 23, 41) input px: centre (17, 25) px, 12 x 32 px
    const [gx, gy, w, h] = [17 / S, 25 / S, 12 / S, 32 / S];
    const [ix, iy] = [Math.floor(gx), Math.floor(gy)];
    const labels = records([], [[11, 9, 23, 41]]);
    const out = new Float32Array(TARGET_LENGTH + 7).fill(NaN);
    encodeTarget(labels, 1, out, 7); // photo 1's record, written after 7 other floats
    expect(Number.isNaN(out[6]!)).toBe(true); // nothing before the offset touched
    const centres: Array<[number, number]> = [];
    for (let y = 0; y < GRID_HEIGHT; y++) for (let x = 0; x < GRID_WIDTH; x++) if (at(out, x, y, 1, 7) !== 0) centres.push([x, y]);
    expect(centres).toEqual([[ix, iy]]);
    expect(at(out, ix, iy, 1, 7)).toBe(1);
    expect(at(out, ix, iy, 2, 7)).toBeCloseTo(gx - ix, 6);
    expect(at(out, ix, iy, 3, 7)).toBeCloseTo(gy - iy, 6);
    expect(at(out, ix, iy, 4, 7)).toBeCloseTo(Math.log(w), 6);
    expect(at(out, ix, iy, 5, 7)).toBeCloseTo(Math.log(h), 6);
    expect(at(out, ix, iy, 0, 7)).toBe(0); // (1 - bump)^4 with bump = 1 at the centre
    // Every cell's weight: the Gaussian of sigma = max(0.5, side / 6) cells about the centre cell
    // (the bump is cut 4 sigma out, where it is below exp(-8): the weight differs by < 2e-3).
    const [sx, sy] = [Math.max(0.5, w / 6), Math.max(0.5, h / 6)];
    for (let y = 0; y < GRID_HEIGHT; y++) {
      for (let x = 0; x < GRID_WIDTH; x++) {
        const bump = Math.exp(-((x - ix) ** 2) / (2 * sx * sx) - (y - iy) ** 2 / (2 * sy * sy));
        expect(Math.abs(at(out, x, y, 0, 7) - (1 - bump) ** 4)).toBeLessThan(2e-3);
      }
    }
    // The next cells along x and y exactly, and far away exactly 1; regression channels 0 off the centre.
    expect(at(out, ix + 1, iy, 0, 7)).toBeCloseTo((1 - Math.exp(-1 / (2 * sx * sx))) ** 4, 6);
    expect(at(out, ix, iy + 1, 0, 7)).toBeCloseTo((1 - Math.exp(-1 / (2 * sy * sy))) ** 4, 6);
    expect(at(out, GRID_WIDTH - 1, 0, 0, 7)).toBe(1);
    for (let ch = 2; ch < TARGET_CHANNELS; ch++) expect(at(out, ix + 1, iy, ch, 7)).toBe(0);
  });

  it('a photo without a number: all zeros except negative weights 1 everywhere', () => {
    const labels = records([]);
    const out = new Float32Array(TARGET_LENGTH).fill(5);
    encodeTarget(labels, 0, out, 0);
    for (let k = 0; k < TARGET_LENGTH; k++) expect(out[k]).toBe(k % TARGET_CHANNELS === 0 ? 1 : 0);
  });

  it('a tiny box is taken as at least a quarter cell (log size finite)', () => {
    const out = new Float32Array(TARGET_LENGTH);
    encodeTarget(records([[40, 20, 40, 20]]), 0, out, 0); // zero-area box at (40, 20) px
    const [x, y] = [Math.floor(40 / S), Math.floor(20 / S)];
    expect(at(out, x, y, 1)).toBe(1);
    expect(at(out, x, y, 4)).toBeCloseTo(Math.log(0.25), 6);
    expect(at(out, x, y, 5)).toBeCloseTo(Math.log(0.25), 6);
  });
});

describe('trueCentres', () => {
  it('the centre cells in reading order (by centre x), whatever the record order', () => {
    // right digit first in the record
    const labels = records([[60, 8, 72, 40], [20, 10, 30, 38]]);
    const out = new Float32Array(TARGET_LENGTH);
    encodeTarget(labels, 0, out, 0);
    // centres (25, 24) and (66, 24) px
    expect(trueCentres(out)).toEqual([{ x: Math.floor(25 / S), y: Math.floor(24 / S) }, { x: Math.floor(66 / S), y: Math.floor(24 / S) }]);
    expect(trueCentres(new Float32Array(TARGET_LENGTH))).toEqual([]);
  });
});
