/**
 * Peak finding (tasks/read/peaks.ts) on hand-made output grids: the boxes are the arithmetic
 * of the cell, its offset and its log size, written out here in cells times the stride S
 * (input pixels per cell), so they hold at any grid.
 */
import { describe, expect, it } from 'vitest';
import { DETECTOR_STRIDE as S, GRID_WIDTH, HEAD_CHANNELS, letterboxOf } from '../../../src/tasks/read/format.js';
import { detectionsMatch, findDigits, numberRow, readingOrder, type Detection } from '../../../src/tasks/read/peaks.js';
import { numberDetections } from '../../../src/tasks/read/assemble.js';
import { OUTPUT_LENGTH } from '../../../src/tasks/read/targets.js';

/** An output grid with every centre logit at -10 and regression 0; `set` puts one cell's 5 channels. */
function grid(offset = 0) {
  const out = new Float32Array(offset + OUTPUT_LENGTH);
  for (let k = 0; k < OUTPUT_LENGTH; k += HEAD_CHANNELS) out[offset + k] = -10;
  const set = (x: number, y: number, ch: number[]) => ch.forEach((v, i) => (out[offset + (y * GRID_WIDTH + x) * HEAD_CHANNELS + i] = v));
  /** A centre at input pixel (cx, cy) with its logit and a box of w x h px: the cell it falls in, the offset within it. */
  const setPx = (cx: number, cy: number, logit: number, w: number, h: number) => {
    const [x, y] = [Math.floor(cx / S), Math.floor(cy / S)];
    set(x, y, [logit, cx / S - x, cy / S - y, Math.log(w / S), Math.log(h / S)]);
    return { x, y };
  };
  return { out, set, setPx };
}
const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

describe('findDigits', () => {
  it('two peaks: two detections, best first, with the boxes their offset and size give', () => {
    const { out, set } = grid(OUTPUT_LENGTH); // the second photo of a batch
    set(3, 5, [2, 0.5, 0.25, Math.log(2), Math.log(4)]); // centre (3.5, 5.25) cells; 2 x 4 cells
    set(15, 6, [1, 0, 0, 0, 0]); // centre (15, 6) cells, 1 x 1 cell
    set(16, 6, [0.5, 0, 0, 0, 0]); // a lower neighbour: not a peak
    const found = findDigits(out, OUTPUT_LENGTH);
    expect(found).toHaveLength(2);
    expect(found[0]!.score).toBeCloseTo(sigmoid(2), 6);
    expect(found[0]!.cell).toEqual({ x: 3, y: 5 });
    found[0]!.box.forEach((v, i) => expect(v).toBeCloseTo([2.5 * S, 3.25 * S, 4.5 * S, 7.25 * S][i]!, 5));
    expect(found[1]!.cell).toEqual({ x: 15, y: 6 });
    found[1]!.box.forEach((v, i) => expect(v).toBeCloseTo([14.5 * S, 5.5 * S, 15.5 * S, 6.5 * S][i]!, 5));
    expect(readingOrder([found[1]!, found[0]!]).map((d) => d.cell.x)).toEqual([3, 15]);
  });

  it('a plateau (equal neighbours) is one peak, its first cell in reading order', () => {
    const { out, set } = grid();
    set(8, 4, [1, 0, 0, 0, 0]);
    set(9, 4, [1, 0, 0, 0, 0]);
    set(8, 5, [1, 0, 0, 0, 0]);
    set(9, 5, [1, 0, 0, 0, 0]);
    const found = findDigits(out);
    expect(found.map((d) => d.cell)).toEqual([{ x: 8, y: 4 }]);
  });

  it('below the threshold: nothing (the threshold is a parameter)', () => {
    const { out, set } = grid();
    set(8, 4, [-1, 0, 0, 0, 0]); // sigmoid 0.27 < 0.3
    expect(findDigits(out)).toEqual([]);
    expect(findDigits(out, 0, 0.2)).toHaveLength(1);
  });

  it('a peak whose box lies mostly inside a better one is dropped as a duplicate', () => {
    const { out, set } = grid();
    set(5, 5, [3, 0, 0, Math.log(6), Math.log(6)]); // 6 x 6 cells about cell (5, 5): cells 2..8 across
    set(7, 5, [2, 0, 0, 0, 0]); // 1 x 1 cell about (7, 5): inside the first box
    set(15, 5, [2, 0, 0, 0, 0]); // far away: kept
    expect(findDigits(out).map((d) => d.cell.x)).toEqual([5, 15]);
  });
});

describe('detectionsMatch', () => {
  const det = (x: number, y: number, left: number): Detection => ({ score: 0.9, box: [left, 0, left + 4, 4], cell: { x, y } });
  it('as many detections as digits, each within one cell, in reading order', () => {
    const centres = [{ x: 3, y: 5 }, { x: 9, y: 5 }];
    expect(detectionsMatch([det(10, 6, 40), det(4, 4, 12)], centres)).toBe(true); // order of the list does not matter
    expect(detectionsMatch([det(3, 5, 12)], centres)).toBe(false); // one missing
    expect(detectionsMatch([det(3, 5, 12), det(11, 5, 44)], centres)).toBe(false); // two cells away
    expect(detectionsMatch([], [])).toBe(true); // no number, nothing found
    expect(detectionsMatch([det(3, 5, 12)], [])).toBe(false);
  });
});

describe('numberRow and numberDetections', () => {
  const det = (score: number, box: [number, number, number, number]): Detection => ({ score, box, cell: { x: Math.floor((box[0] + box[2]) / 2 / S), y: Math.floor((box[1] + box[3]) / 2 / S) } });

  it('keeps the digits in the surest one\'s row and size, drops a bolt above, a tiny mark and a huge blob, in reading order', () => {
    const surest = det(0.9, [40, 10, 50, 30]); // 20 px tall, centre y 20
    const right = det(0.6, [52, 12, 61, 31]); // same row
    const left = det(0.5, [28, 9, 38, 29]);
    const above = det(0.7, [60, 0, 66, 8]); // centre y 4: 16 px above, more than half of 20
    const tiny = det(0.4, [70, 18, 72, 22]); // 4 px: under half the height
    const huge = det(0.45, [0, 0, 30, 48]); // 48 px: over twice
    expect(numberRow([right, above, surest, tiny, left, huge])).toEqual([left, surest, right]);
    expect(numberRow([above])).toEqual([above]); // one detection: nothing to measure against, kept
    expect(numberRow([])).toEqual([]);
  });

  it('splits the row at spaces wider than half the surest digit\'s height and keeps the group whose scores sum highest', () => {
    const surest = det(0.9, [40, 10, 50, 30]); // 20 px tall: neighbours up to 10 px apart belong to it
    const next = det(0.6, [53, 10, 62, 30]); // 3 px after it
    const farRight = det(0.7, [73, 10, 80, 30]); // 11 px after `next`: a pole beyond the number
    const beyond = det(0.8, [81, 10, 90, 30]); // close to the pole, so gone with it
    const left = det(0.5, [30, 10, 39, 30]); // 1 px before
    const farLeft = det(0.5, [10, 10, 19, 30]); // 11 px before `left`
    expect(numberRow([farRight, surest, beyond, farLeft, next, left])).toEqual([left, surest, next]);
    const atLimit = det(0.5, [72, 10, 80, 30]); // exactly 10 px after `next`: still the number's
    expect(numberRow([surest, next, atLimit])).toEqual([surest, next, atLimit]);
    // the surest alone on the left (a second sign's digit), three surer together on the right: the three
    const lone = det(0.95, [0, 10, 9, 30]);
    const three = [det(0.7, [30, 10, 39, 30]), det(0.6, [41, 10, 50, 30]), det(0.5, [52, 10, 61, 30])];
    expect(numberRow([lone, ...three])).toEqual(three);
    expect(numberRow([lone, three[0]!])).toEqual([lone]); // 0.95 against 0.7
  });

  it('numberDetections drops centres on the letterbox\'s grey bars, then forms the row', () => {
    // a 200x50 photo: scale 0.48, 96x24 in the input at padY 12; bars above y 12 and from y 36
    const lb = letterboxOf(200, 50);
    expect(lb).toMatchObject({ width: 96, height: 24, padX: 0, padY: 12 });
    const { out, setPx } = grid();
    const a = setPx(22, 22, 3, 8, 16); // on the photo
    const b = setPx(34, 22, 2, 8, 16); // on the photo
    setPx(50, 6, 4, 8, 16); // on the top bar, and the surest
    const found = numberDetections(out, lb, 0.3);
    expect(found.map((d) => d.cell)).toEqual([a, b]);
  });
});
