/**
 * The whole-photo renderer (src/data/synthetic/photoScene.ts): frames and numbers in SVHN's
 * ranges, every box inside its photo and tight around its digit's ink, the same photos for a
 * seed and others for another.
 */
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { PhotoSceneRenderer, type SyntheticPhoto } from '../../../src/data/synthetic/photoScene.js';
import { Rng } from '../../../src/util/rng.js';

const COUNT = 800;
let renderer: PhotoSceneRenderer;
let photos: SyntheticPhoto[];

beforeAll(() => {
  renderer = new PhotoSceneRenderer();
  const rng = new Rng(21);
  photos = [];
  for (let i = 0; i < COUNT; i++) {
    const p = renderer.render(rng);
    photos.push({ ...p, ink: p.ink.slice(), beside: p.beside?.slice() ?? null }); // the renderer's own buffers: copied before the next render
  }
});

/** Ink coverage summed over rows t..b-1 and columns l..r-1 of a photo. */
function inkIn(p: { width: number; ink: Float32Array }, l: number, t: number, r: number, b: number): number {
  let sum = 0;
  for (let y = t; y < b; y++) for (let x = l; x < r; x++) sum += p.ink[y * p.width + x]!;
  return sum;
}

describe('PhotoSceneRenderer', () => {
  it('draws photos 30-500 px wide at aspect 1.2-4, their median near SVHN\'s 104x47', () => {
    for (const p of photos) {
      expect(p.width).toBeGreaterThanOrEqual(30);
      expect(p.width).toBeLessThanOrEqual(500);
      expect(p.height).toBeGreaterThanOrEqual(12);
      expect(p.width / p.height).toBeGreaterThan(1.15);
      expect(p.width / p.height).toBeLessThan(4.1);
      expect(p.rgb.length).toBe(p.width * p.height * 3);
    }
    const median = (a: number[]) => a.sort((x, y) => x - y)[a.length >> 1]!;
    expect(median(photos.map((p) => p.width))).toBeGreaterThan(85);
    expect(median(photos.map((p) => p.width))).toBeLessThan(125);
    expect(median(photos.map((p) => p.height))).toBeGreaterThan(38);
    expect(median(photos.map((p) => p.height))).toBeLessThan(58);
  });

  it('numbers of 1-5 digits without a leading 0, mostly 2-3, and ~10% photos without one', () => {
    const byLength = new Array<number>(7).fill(0);
    for (const p of photos) {
      expect(p.number).toMatch(/^(|[1-9]\d{0,4})$/);
      expect(p.boxes.length).toBe(p.number.length);
      byLength[p.number.length]!++;
    }
    expect(byLength[0]! / COUNT).toBeGreaterThan(0.07);
    expect(byLength[0]! / COUNT).toBeLessThan(0.13);
    for (let n = 1; n <= 5; n++) expect(byLength[n]).toBeGreaterThan(0);
    expect(byLength[2]! + byLength[3]!).toBeGreaterThan(0.6 * COUNT);
    expect(byLength[6]).toBe(0);
  });

  it('puts every box inside its photo, in reading order, and every bit of a number\'s ink inside its boxes', () => {
    for (const p of photos) {
      for (const [l, t, r, b] of p.boxes) {
        expect(l).toBeGreaterThanOrEqual(0);
        expect(t).toBeGreaterThanOrEqual(0);
        expect(r).toBeLessThanOrEqual(p.width);
        expect(b).toBeLessThanOrEqual(p.height);
        expect(r).toBeGreaterThan(l);
        expect(b).toBeGreaterThan(t);
      }
      for (let i = 1; i < p.boxes.length; i++) expect(p.boxes[i]![0] + p.boxes[i]![2]).toBeGreaterThan(p.boxes[i - 1]![0] + p.boxes[i - 1]![2]);
      if (p.number === '') continue;
      const inside = new Uint8Array(p.width * p.height);
      for (const [l, t, r, b] of p.boxes) for (let y = t; y < b; y++) inside.fill(1, y * p.width + l, y * p.width + r);
      let outside = 0;
      for (let i = 0; i < inside.length; i++) if (!inside[i]) outside += p.ink[i]!;
      expect(outside).toBeLessThan(1e-3);
    }
  });

  it('draws each box tight around ink: ink on each of its four sides (within a pixel, for the rasteriser\'s sub-scanlines)', () => {
    let boxes = 0;
    for (const p of photos) {
      for (const [l, t, r, b] of p.boxes) {
        boxes++;
        expect(inkIn(p, l, t, r, b)).toBeGreaterThan(0.5);
        expect(inkIn(p, l, t, r, Math.min(b, t + 2))).toBeGreaterThan(0); // top
        expect(inkIn(p, l, Math.max(t, b - 2), r, b)).toBeGreaterThan(0); // bottom
        expect(inkIn(p, l, t, Math.min(r, l + 2), b)).toBeGreaterThan(0); // left
        expect(inkIn(p, Math.max(l, r - 2), t, r, b)).toBeGreaterThan(0); // right
      }
    }
    expect(boxes).toBeGreaterThan(1.7 * COUNT);
  });

  it('draws boxes whose pixels stand out from the photo: on average they differ more from the photo\'s edge colour inside than outside', () => {
    let brighter = 0;
    let numbered = 0;
    for (const p of photos) {
      if (p.number === '') continue;
      numbered++;
      // The background: the median grey of the photo's outermost rows and columns.
      const grey = (i: number) => (p.rgb[i * 3]! + p.rgb[i * 3 + 1]! + p.rgb[i * 3 + 2]!) / 3;
      const edge: number[] = [];
      for (let x = 0; x < p.width; x++) edge.push(grey(x), grey((p.height - 1) * p.width + x));
      const bg = edge.sort((a, b) => a - b)[edge.length >> 1]!;
      let inSum = 0;
      let inN = 0;
      let outSum = 0;
      let outN = 0;
      for (let i = 0; i < p.width * p.height; i++) {
        const d = Math.abs(grey(i) - bg);
        if (p.ink[i]! > 0.9) (inSum += d), inN++;
        else if (p.ink[i]! === 0) (outSum += d), outN++;
      }
      if (inN > 0 && inSum / inN > outSum / Math.max(1, outN)) brighter++;
    }
    // Not every photo: a low-contrast number on a plate darker than the wall can be nearer the edge's colour.
    expect(brighter / numbered).toBeGreaterThan(0.7);
  });

  it('puts things beside the number in about half the photos, visible, and never over a digit\'s box', () => {
    let withSide = 0;
    let visible = 0;
    let inBoxes = 0;
    let total = 0;
    for (const p of photos) {
      if (!p.beside) continue;
      withSide++;
      let sum = 0;
      for (const v of p.beside) sum += Math.min(1, v);
      if (sum >= 2) visible++; // at least two pixels' worth inside the frame
      total += sum;
      for (const [l, t, r, b] of p.boxes) inBoxes += inkIn({ width: p.width, ink: p.beside }, l, t, r, b);
    }
    expect(withSide / COUNT).toBeGreaterThan(0.4);
    expect(withSide / COUNT).toBeLessThan(0.6);
    expect(visible / withSide).toBeGreaterThan(0.8);
    // A pose's rotation can tilt a bar's end into a box's corner: at most a trace of it.
    expect(inBoxes / total).toBeLessThan(0.002);
  });

  it('shoots a few photos grainy, more of those without a number: the median step between neighbouring pixels shows it', () => {
    // Two neighbours with independent noise of sd s differ by a median 0.95 s (about 14 and up for
    // the grain's 15-60). Without the grain (PHOTO_SCENE.grain at 0), 1 of these 83 blank photos
    // and 5 of the 717 with a number reach 14; with it, 28 and 48.
    const grain = (p: SyntheticPhoto) => {
      const steps: number[] = [];
      for (let y = 0; y < p.height; y++) for (let x = 0; x + 1 < p.width; x++) steps.push(Math.abs(p.rgb[(y * p.width + x) * 3 + 1]! - p.rgb[(y * p.width + x + 1) * 3 + 1]!));
      return steps.sort((a, b) => a - b)[steps.length >> 1]!;
    };
    const share = (ps: SyntheticPhoto[]) => ps.filter((p) => grain(p) >= 14).length / ps.length;
    const blank = photos.filter((p) => p.number === '');
    const numbered = photos.filter((p) => p.number !== '');
    expect(share(blank)).toBeGreaterThan(0.15); // 0.3 drawn
    expect(share(blank)).toBeLessThan(0.5);
    expect(share(numbered)).toBeGreaterThan(0.025); // 0.05 drawn
    expect(share(numbered)).toBeLessThan(0.1);
  });

  it('gives the same photos for a seed and others for another', () => {
    const digest = (seed: number) => {
      const rng = new Rng(seed);
      const h = createHash('sha256');
      for (let i = 0; i < 20; i++) {
        const p = renderer.render(rng);
        h.update(`${p.width}x${p.height} ${p.number} ${JSON.stringify(p.boxes)}`).update(p.rgb);
      }
      return h.digest('hex');
    };
    expect(digest(21)).toBe(digest(21));
    expect(digest(22)).not.toBe(digest(21));
    const first = renderer.render(new Rng(21));
    expect(first.rgb).toEqual(photos[0]!.rgb);
  });
});
