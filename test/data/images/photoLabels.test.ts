/** The labelled-photos CSV (src/data/images/photoLabels.ts): what it accepts, what it refuses, and a round trip. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fitBoxes, formatPhotoLabels, parsePhotoLabels, type PhotoLabel } from '../../../src/data/images/photoLabels.js';
import { SvhnError } from '../../../src/errors.js';

const REAL = join(import.meta.dirname, '../../../../shared/realsvhn/photos.csv');

function refusal(text: string): string {
  try {
    parsePhotoLabels(text, 'x.csv');
  } catch (e) {
    expect(e).toBeInstanceOf(SvhnError);
    return (e as SvhnError).message;
  }
  throw new Error('expected a refusal');
}

describe('photo labels CSV', () => {
  it('reads numbers with and without boxes, photos without a number, quoted names', () => {
    const rows = parsePhotoLabels(
      'file,number,boxes\r\nphotos/1.png,19,246 77 327 296;323 81 419 300\n"a, b.png",7,\nnone.png,,\n\n',
      'x.csv',
    );
    expect(rows).toEqual<PhotoLabel[]>([
      { file: 'photos/1.png', number: '19', boxes: [[246, 77, 327, 296], [323, 81, 419, 300]], line: 2 },
      { file: 'a, b.png', number: '7', boxes: null, line: 3 },
      { file: 'none.png', number: '', boxes: [], line: 4 },
    ]);
    expect(parsePhotoLabels('file,number\n1.png,0207\n', 'x.csv')).toEqual([{ file: '1.png', number: '0207', boxes: null, line: 2 }]);
  });

  it('writes what it reads', () => {
    const rows = parsePhotoLabels('file,number,boxes\n"q""uote.png",5,1 2 3 4\nn.png,,\n', 'x.csv');
    const text = formatPhotoLabels(rows);
    expect(text).toBe('file,number,boxes\n"q""uote.png",5,1 2 3 4\nn.png,,\n');
    expect(parsePhotoLabels(text, 'x.csv')).toEqual(rows);
    expect(formatPhotoLabels([{ file: 'a.png', number: '12', boxes: null }])).toBe('file,number\na.png,12\n');
  });

  it('refuses each malformed row with one line naming the file and line', () => {
    expect(refusal('1.png,19\n')).toBe("x.csv line 1: expected the header 'file,number' or 'file,number,boxes', got '1.png,19'");
    expect(refusal('')).toBe("x.csv: no header: expected 'file,number' or 'file,number,boxes' on the first line");
    expect(refusal('file,number\na.png,1a\n')).toBe("x.csv line 2: number '1a' for a.png: expected digits 0-9 only (or nothing, for a photo without a number)");
    expect(refusal('file,number\na.png,1234567\n')).toMatch(/line 2: number '1234567' for a\.png: expected at most 6 digits/);
    expect(refusal('file,number,boxes\na.png,12,1 2 3 4\n')).toBe("x.csv line 2: a.png: 1 box for the 2-digit number '12': expected one box per digit");
    expect(refusal('file,number,boxes\na.png,1,1 2 3\n')).toBe("x.csv line 2: a.png: box 1 '1 2 3': expected four integers 'left top right bottom'");
    expect(refusal('file,number,boxes\na.png,1,1 2.5 3 4\n')).toMatch(/box 1 '1 2\.5 3 4': expected four integers/);
    expect(refusal('file,number,boxes\na.png,1,5 2 3 4\n')).toBe("x.csv line 2: a.png: box 1 '5 2 3 4': expected right > left and bottom > top");
    expect(refusal('file,number\na.png,1,2\n')).toBe('x.csv line 2: expected 2 fields, got 3');
    expect(refusal('file,number\n"a.png,1\n')).toBe('x.csv line 2: a quoted field is not closed');
    expect(refusal('file,number\na.png,1\na.png,2\n')).toMatch(/line 3: a\.png is listed twice \(first on line 2\)/);
    expect(refusal('file,number\n,1\n')).toBe('x.csv line 2: the file is empty');
  });

  it('clips a box mostly inside its photo, and tells one that leaves it', () => {
    expect(fitBoxes([[0, 0, 10, 10]], 10, 10)).toEqual([[0, 0, 10, 10]]);
    expect(fitBoxes([[-1, 26, 15, 60]], 112, 56)).toEqual([[0, 26, 15, 56]]); // SVHN train photo 252's first box
    expect(fitBoxes([[0, 0, 10, 10], [6, 0, 14, 10]], 10, 10)).toEqual([[0, 0, 10, 10], [6, 0, 10, 10]]); // half inside
    expect(fitBoxes([[0, 0, 10, 10], [7, 0, 15, 10]], 10, 10)).toBe("box 2 '7 0 15 10' leaves the 10x10 photo");
    expect(fitBoxes([[20, 20, 30, 30]], 10, 10)).toBe("box 1 '20 20 30 30' leaves the 10x10 photo");
  });

  it.skipIf(!existsSync(REAL))("reads ../shared/realsvhn's photos.csv: 256 photos, one box per digit", () => {
    const rows = parsePhotoLabels(readFileSync(REAL, 'utf8'), REAL);
    expect(rows).toHaveLength(256);
    expect(rows.every((r) => r.boxes !== null && r.boxes.length === r.number.length && r.number.length >= 1)).toBe(true);
    expect(rows[0]).toMatchObject({ file: 'photos/1.png', number: '19' });
  });
});
