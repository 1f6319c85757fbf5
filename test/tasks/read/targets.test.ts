/**
 * The detector's targets (tasks/read/targets.ts) on hand-made label records, checked against
 * the arithmetic written out here: centre cell, offsets, log sizes, the bump and its weight.
 */
import { describe, expect, it } from 'vitest';
import { GRID_HEIGHT, GRID_WIDTH, LABEL_BYTES, writeLabelRecord } from '../../../src/tasks/read/format.js';
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
    // box [11, 9, 23, 41) input px: centre (17, 25) px = (4.25, 6.25) cells; 3 x 8 cells
    const labels = records([], [[11, 9, 23, 41]]);
    const out = new Float32Array(TARGET_LENGTH + 7).fill(NaN);
    encodeTarget(labels, 1, out, 7); // photo 1's record, written after 7 other floats
    expect(Number.isNaN(out[6]!)).toBe(true); // nothing before the offset touched
    const centres: Array<[number, number]> = [];
    for (let y = 0; y < GRID_HEIGHT; y++) for (let x = 0; x < GRID_WIDTH; x++) if (at(out, x, y, 1, 7) !== 0) centres.push([x, y]);
    expect(centres).toEqual([[4, 6]]);
    expect(at(out, 4, 6, 1, 7)).toBe(1);
    expect(at(out, 4, 6, 2, 7)).toBeCloseTo(0.25, 6);
    expect(at(out, 4, 6, 3, 7)).toBeCloseTo(0.25, 6);
    expect(at(out, 4, 6, 4, 7)).toBeCloseTo(Math.log(3), 6);
    expect(at(out, 4, 6, 5, 7)).toBeCloseTo(Math.log(8), 6);
    expect(at(out, 4, 6, 0, 7)).toBe(0); // (1 - bump)^4 with bump = 1 at the centre
    // Next cell along x: sigma_x = max(0.5, 3/6) = 0.5 cells, bump exp(-1 / (2 * 0.25)).
    expect(at(out, 5, 6, 0, 7)).toBeCloseTo((1 - Math.exp(-2)) ** 4, 6);
    // Next cell along y: sigma_y = 8/6 cells.
    expect(at(out, 4, 7, 0, 7)).toBeCloseTo((1 - Math.exp(-1 / (2 * (8 / 6) ** 2))) ** 4, 6);
    // Far away: weight ~1; regression channels 0 off the centre.
    expect(at(out, 20, 0, 0, 7)).toBeCloseTo(1, 6);
    for (let ch = 2; ch < TARGET_CHANNELS; ch++) expect(at(out, 5, 6, ch, 7)).toBe(0);
  });

  it('a photo without a number: all zeros except negative weights 1 everywhere', () => {
    const labels = records([]);
    const out = new Float32Array(TARGET_LENGTH).fill(5);
    encodeTarget(labels, 0, out, 0);
    for (let k = 0; k < TARGET_LENGTH; k++) expect(out[k]).toBe(k % TARGET_CHANNELS === 0 ? 1 : 0);
  });

  it('a tiny box is taken as at least a quarter cell (log size finite)', () => {
    const out = new Float32Array(TARGET_LENGTH);
    encodeTarget(records([[40, 20, 40, 20]]), 0, out, 0); // zero-area box at (10, 5) cells
    expect(at(out, 10, 5, 1)).toBe(1);
    expect(at(out, 10, 5, 4)).toBeCloseTo(Math.log(0.25), 6);
    expect(at(out, 10, 5, 5)).toBeCloseTo(Math.log(0.25), 6);
  });
});

describe('trueCentres', () => {
  it('the centre cells in reading order (by centre x), whatever the record order', () => {
    // right digit first in the record
    const labels = records([[60, 8, 72, 40], [20, 10, 30, 38]]);
    const out = new Float32Array(TARGET_LENGTH);
    encodeTarget(labels, 0, out, 0);
    expect(trueCentres(out)).toEqual([{ x: 6, y: 6 }, { x: 16, y: 6 }]);
    expect(trueCentres(new Float32Array(TARGET_LENGTH))).toEqual([]);
  });
});
