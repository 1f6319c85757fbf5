/**
 * The digitStruct.mat reader against files h5py wrote in MATLAB v7.3's layout
 * (test/fixtures/full/make_full_fixtures.py): the values it stored, and one clear error for each
 * kind of broken file.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readDigitStruct, roundEdge } from '../../../src/data/mat/digitStruct.js';
import { rejection } from '../../helpers.js';

const FIXTURES = resolve(import.meta.dirname, '../../fixtures/full');
const fixture = (name: string) => join(FIXTURES, name);

interface RawPhoto {
  name: string;
  label: number[];
  left: number[];
  top: number[];
  width: number[];
  height: number[];
}
const EXPECTED = JSON.parse(readFileSync(fixture('expected.json'), 'utf8')) as Record<string, { digitStruct: RawPhoto[] }>;

describe('readDigitStruct', () => {
  it('reads names, labels (10 -> 0) and boxes h5py stored, through the user block and both reference layouts', async () => {
    const entries = await readDigitStruct(fixture('digitStruct.mat'));
    const raw = EXPECTED['train']!.digitStruct;
    expect(entries.map((e) => e.name)).toEqual(['1.png', '2.png', '3.png']);
    expect(entries.map((e) => e.digits)).toEqual(raw.map((p) => p.label.map((l) => l % 10)));
    expect(entries[1]!.digits).toEqual([0]); // label 10, stored directly (k = 1)
    for (const [i, p] of raw.entries()) {
      expect(entries[i]!.boxes).toEqual(p.label.map((_, j) => [
        roundEdge(p.left[j]!), roundEdge(p.top[j]!), roundEdge(p.left[j]! + p.width[j]!), roundEdge(p.top[j]! + p.height[j]!),
      ]));
    }
    // Known values: photo 1, two digits behind references; photo 2 crosses the left edge (kept here, clipped later).
    expect(entries[0]!.boxes).toEqual([[3, 2, 9, 12], [9, 2, 16, 13]]);
    expect(entries[1]!.boxes).toEqual([[-1, 1, 7, 11]]);
    // Photo 3's fractions: left 2.5 -> 3, top 1.5 -> 2, right 2.5 + 6.4 = 8.9 -> 9, bottom 1.5 + 12.5 = 14.
    expect(entries[2]!.boxes[0]).toEqual([3, 2, 9, 14]);
  });

  it('rounds half away from zero, as MATLAB does', () => {
    expect([2.5, -2.5, 1.4, -1.5, 0].map(roundEdge)).toEqual([3, -3, 1, -2, 0]);
  });

  it.each([
    ['bad_label.mat', /bad_label\.mat: photo 2 \(2\.png\): digit 1 has label 11: expected 1\.\.10/],
    ['bad_counts.mat', /bad_counts\.mat: \/digitStruct\/name lists 2 photos but \/digitStruct\/bbox 3: expected one bbox per name/],
    ['bad_name_ref.mat', /bad_name_ref\.mat: photo 2: its name reference does not resolve \(/],
    ['bad_bbox_ref.mat', /bad_bbox_ref\.mat: photo 3 \(3\.png\): its bbox reference does not resolve \(/],
    ['not_hdf5.mat', /not_hdf5\.mat: not an HDF5 file \(MATLAB v7\.3\): expected the HDF5 signature at byte 0 or 512/],
  ])('%s: one line naming the file and the photo', async (name, message) => {
    const e = await rejection(readDigitStruct(fixture(name)));
    expect(e.message).toMatch(message);
    expect(e.message).not.toContain('\n');
    expect(e.code).toBe('BAD_MAT');
  });

  it('a missing file is an IO error naming it', async () => {
    const e = await rejection(readDigitStruct(fixture('nothing-here.mat')));
    expect(e.message).toMatch(/cannot read .*nothing-here\.mat: no such file/);
  });
});
