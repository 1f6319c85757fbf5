/**
 * The reader's geometry: letterboxOf / boxToInput / boxToPhoto (tasks/read/format.ts) and
 * cropDigit (tasks/read/letterbox.ts) on a synthetic photo whose pixels say where they are.
 */
import { describe, expect, it } from 'vitest';
import type { Box } from '../../../src/data/images/photoLabels.js';
import { boxToInput, boxToPhoto, letterboxOf, READER_INPUT } from '../../../src/tasks/read/format.js';
import { cropDigit, cropDigitViews, letterboxPhoto } from '../../../src/tasks/read/letterbox.js';
import { DIGIT_VIEWS, digitViews } from '../../../src/tasks/read/assemble.js';

/** A width x height photo with R = 3x, G = 5y, B = 77. */
function coordinatePhoto(width: number, height: number) {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set([3 * x, 5 * y, 77], (y * width + x) * 3);
  }
  return { data, width, height };
}
const px = (crop: Uint8Array, x: number, y: number) => Array.from(crop.subarray((y * 32 + x) * 3, (y * 32 + x) * 3 + 3));

describe('letterboxOf, boxToInput, boxToPhoto', () => {
  it('fits the photo by one scale, centred, and the boxes go there and back', () => {
    expect(letterboxOf(200, 50)).toEqual({ scale: 0.48, width: 96, height: 24, padX: 0, padY: 12 });
    const tall = letterboxOf(30, 90);
    expect(tall).toMatchObject({ width: 16, height: 48, padX: 40, padY: 0 });
    expect(letterboxOf(96, 48)).toEqual({ scale: 1, width: 96, height: 48, padX: 0, padY: 0 });
    for (const [w, h] of [[200, 50], [30, 90], [104, 47], [7, 3], [1000, 999]] as const) {
      const lb = letterboxOf(w, h);
      const box: Box = [w * 0.1, h * 0.2, w * 0.6, h * 0.9];
      const inInput = boxToInput(box, lb, w, h);
      // inside the scaled photo's place in the input
      expect(inInput[0]).toBeGreaterThanOrEqual(lb.padX);
      expect(inInput[2]).toBeLessThanOrEqual(lb.padX + lb.width + 1e-9);
      expect(inInput[3]).toBeLessThanOrEqual(lb.padY + lb.height + 1e-9);
      boxToPhoto(inInput, lb, w, h).forEach((v, i) => expect(v).toBeCloseTo(box[i]!, 9));
    }
    // the whole photo maps onto its letterbox exactly
    const lb = letterboxOf(200, 50);
    expect(boxToInput([0, 0, 200, 50], lb, 200, 50)).toEqual([0, 12, 96, 36]);
    expect(() => letterboxOf(0, 10)).toThrow(/expected a photo size/);
  });

  it('letterboxPhoto places the resized photo on grey at its offset', async () => {
    const photo = coordinatePhoto(200, 50);
    const { pixels, letterbox } = await letterboxPhoto(photo);
    expect(pixels.length).toBe(READER_INPUT.height * READER_INPUT.width * 3);
    expect(Array.from(pixels.subarray(0, 3))).toEqual([114, 114, 114]); // top band
    const inside = ((letterbox.padY + 1) * READER_INPUT.width + 1) * 3;
    expect(pixels[inside + 2]).toBe(77);
  });
});

describe('cropDigit', () => {
  it('widens the box along its shorter side to a square about its centre', async () => {
    // 16 x 32 box: the square is 32 x 32 from (12, 4), so the 32x32 crop is those pixels as they are
    const photo = coordinatePhoto(64, 40);
    const crop = await cropDigit(photo, [20, 4, 36, 36]);
    expect(crop.length).toBe(32 * 32 * 3);
    for (const [x, y] of [[0, 0], [31, 0], [5, 17], [31, 31]] as const) {
      const [r, g, b] = px(crop, x, y);
      expect(Math.abs(r! - 3 * (12 + x))).toBeLessThanOrEqual(1);
      expect(Math.abs(g! - 5 * (4 + y))).toBeLessThanOrEqual(1);
      expect(b).toBe(77);
    }
  });

  it('repeats the edge pixels where the square leaves the photo', async () => {
    const photo = coordinatePhoto(64, 30);
    // 8 x 32 box at the left edge: square from x = -12; and it runs 12 rows past the bottom (y 10..41)
    const crop = await cropDigit(photo, [0, 10, 8, 42]);
    for (let x = 0; x <= 12; x++) expect(px(crop, x, 5)[0]).toBeLessThanOrEqual(1); // columns -12..0 all show x = 0
    expect(Math.abs(px(crop, 20, 5)[0]! - 3 * 8)).toBeLessThanOrEqual(1);
    for (let y = 19; y < 32; y++) expect(Math.abs(px(crop, 20, y)[1]! - 5 * 29)).toBeLessThanOrEqual(1); // rows 29.. show the last row
    expect(Math.abs(px(crop, 20, 10)[1]! - 5 * 20)).toBeLessThanOrEqual(1);
  });
});

describe('cropDigitViews', () => {
  it('cuts each view as the box moved by 2 of the crop\'s pixels: the same pixels as cropDigit of the moved box, from one resize', async () => {
    // 32 x 32 box: the square is the box, the crop its pixels as they are, so a view moved 2 crop pixels is 2 photo pixels over
    const photo = coordinatePhoto(80, 60);
    const box: Box = [20, 10, 52, 42];
    const views = await cropDigitViews(photo, box, DIGIT_VIEWS);
    expect(views.length).toBe(DIGIT_VIEWS.length * 32 * 32 * 3);
    const moved = digitViews([box]);
    for (let v = 0; v < DIGIT_VIEWS.length; v++) {
      const view = views.subarray(v * 3072, (v + 1) * 3072);
      const [l, t] = moved[v]!;
      for (const [x, y] of [[0, 0], [31, 0], [9, 23], [31, 31]] as const) {
        const [r, g, b] = px(view, x, y);
        expect(Math.abs(r! - 3 * (l + x))).toBeLessThanOrEqual(1);
        expect(Math.abs(g! - 5 * (t + y))).toBeLessThanOrEqual(1);
        expect(b).toBe(77);
      }
      // and close to cutting the moved box on its own, at any size (a photo of a real digit's size here)
      const alone = await cropDigit(photo, moved[v]!);
      let diff = 0;
      for (let i = 0; i < alone.length; i++) diff += Math.abs(alone[i]! - view[i]!);
      expect(diff / alone.length).toBeLessThan(1);
    }
    const small = coordinatePhoto(40, 24);
    const smallBox: Box = [10, 3, 20, 21]; // an 18 px square, enlarged
    const smallViews = await cropDigitViews(small, smallBox, DIGIT_VIEWS);
    const smallMoved = digitViews([smallBox]);
    for (let v = 0; v < DIGIT_VIEWS.length; v++) {
      const alone = await cropDigit(small, smallMoved[v]!);
      let diff = 0;
      for (let i = 0; i < alone.length; i++) diff += Math.abs(alone[i]! - smallViews[v * 3072 + i]!);
      expect(diff / alone.length).toBeLessThan(4); // within a few grey levels on a ramp of 3-5 a pixel
    }
  });

  it('cuts views that scale the box one by one, exactly as cropDigit', async () => {
    const photo = coordinatePhoto(64, 40);
    const views: Array<[number, number, number]> = [[1, 0, 0], [1.2, 0, 0]];
    const got = await cropDigitViews(photo, [20, 4, 36, 36], views);
    const boxes = digitViews([[20, 4, 36, 36]], views);
    expect(got.subarray(0, 3072)).toEqual(await cropDigit(photo, boxes[0]!));
    expect(got.subarray(3072)).toEqual(await cropDigit(photo, boxes[1]!));
  });
});
