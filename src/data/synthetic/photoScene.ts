/**
 * One synthetic whole photo in the shape of SVHN's "format 1": a house number of 1-5 digits
 * somewhere on a wall, plate or door, with each digit's box. The scene is digitScene.ts's
 * (the same faces, layout, camera pose, palette, layers, lighting, texture and noise); the
 * frame and the camera are the photo's own:
 *
 *   1. the number: its length as SVHN's (mostly 2-3 digits, never a leading 0), or none at
 *      all in about 10% of photos (a wall, an empty plate, clutter, a few letter-like
 *      strokes); the frame: a photo 30-500 px wide, 1.2-4 times as wide as tall, wider for
 *      longer numbers (SVHN's median photo is about 104x47);
 *   2. the pose: the crop's (stretch, a little narrower; shear, rotation, perspective), scaled
 *      so the number's ink is 15-95% of the photo's height (mostly ~68%, as SVHN's) and no
 *      wider than the photo, and placed anywhere it fits (mostly near the middle, as SVHN's
 *      photos were cut around their numbers);
 *   3. the scene at the photo's own size, with more clutter than a crop has (a photo shows
 *      more of the wall), things beside the number in half the photos (poles, railings, a
 *      door's edge, screws, letters) and a higher contrast floor, then the camera: colours washed out,
 *      noise; the low resolution of a street view (shrunk so the number is 14-50 px tall,
 *      defocused there, enlarged back); tone curve and noise again (heavy in a few photos,
 *      more of them without a number: a camera's gain turned up);
 *   4. each digit's box: the bounding box of its outline through the camera map, rounded
 *      outwards to whole pixels (SVHN's annotators drew tight boxes around the ink).
 */
import { Rng } from '../../util/rng.js';
import {
  SCENE,
  addNoise,
  clampByte,
  composite,
  drawClass,
  drawGap,
  drawLayers,
  drawLighting,
  drawPalette,
  drawPose,
  emExtent,
  fillClutter,
  layoutDigits,
  lowFrequencyTexture,
  poseAffine,
  sceneMaps,
  toneCurve,
  translate,
  translateSource,
  withPerspective,
  type PlacedDigit,
  type SceneMaps,
} from './digitScene.js';
import { loadFontSet, type FontSet } from './fonts.js';
import type { Box } from '../images/photoLabels.js';
import { PolygonRaster, gaussianBlurRect, resizeBicubicRect, type Projective } from './raster.js';

/** The photo's ranges. Fractions of the photo's height unless they say otherwise. */
export const PHOTO_SCENE = {
  // Share of 1..5-digit numbers: SVHN train's format 1 (5,137 / 18,130 / 8,691 / 1,434 / 9 of
  // 33,402), with 5 digits raised from 0.03% to 0.5% so a small sample has some.
  lengths: [0.154, 0.543, 0.26, 0.038, 0.005],
  blank: 0.1, // photos without a number
  width: { median: 104, logSd: 0.55, range: [30, 500] }, // px, log-normal (SVHN's: 5% 49, median 103, 95% 287)
  minHeight: 12, // px: below this no number is legible
  // width / height: median 1.8 + 0.22 per digit (SVHN's 256 photos here: 2.02, 2.19, 2.41, 2.82
  // for 1-4 digits, 10-90% about +-0.27), `wide` of photos uniform over the range.
  aspect: { base: 1.8, perDigit: 0.22, sd: 0.22, wide: 0.1, range: [1.2, 4] },
  numberHeight: { mean: 0.68, sd: 0.13, any: 0.1, range: [0.15, 0.95] }, // the number's ink height (SVHN's: 5% 0.44, median 0.70, 95% 0.86); `any` uniform over the range
  maxNumberWidth: 0.95, // of the photo's width
  // Times the crop's horizontal stretch: SVHN's digit boxes are 0.49 as wide as tall (median;
  // 0.27-0.73), the crop's stretch alone drew 0.62 (0.35-0.94).
  narrow: 0.8,
  placement: { sd: 0.06, anywhere: 0.1 }, // offset of the number's centre, as a fraction of the room it has; `anywhere`: uniform
  plateMargin: [0.05, 1.2], // digit heights: from a tight plate to a door around the number
  perspective: 0.3, // at most, w's change across the number's height
  blur: { p: 0.85, sigma: [0.4, 1.3] }, // defocus, sigma in px of the (shrunk) photo
  // px, log-uniform: the number's height in the low-resolution capture the photo is enlarged
  // from (8 px, the first try, blurred numbers away on the contact sheet: SVHN's photos are
  // mostly at the camera's own resolution, their numbers ~33 px tall).
  resample: { p: 0.85, numberHeight: [14, 50] },
  finalNoise: 5, // sd at most, 0..255 units, after the tone curve
  // A camera's gain turned up (dusk, a dark porch): heavy noise after the tone curve, sd in 0..255
  // units, in `blank` of the photos without a number and `number` of those with one (so noise
  // alone never says "no number"). Without it the v2 reader read 6 of 8 random-noise frames
  // (bench:read) as a digit or two.
  grain: { blank: 0.3, number: 0.05, sd: [15, 60] },
  // |luminance difference| of digit and background: a crop's floor (0.05) left whole numbers
  // invisible on the contact sheet, where every real photo's number reads.
  contrast: [0.25, 0.85],
  clutter: { p: 0.35, lines: 5 }, // more bands across the wall, where the crop's layers drew none
  saturation: [0.2, 0.8], // the camera's colour: times the scene's saturation (SVHN's photos are mostly washed out)
  strokes: { p: 0.6, count: [2, 4], width: [0.08, 0.2] }, // letter-like strokes in a photo without a number; width in heights
  // Things beside the number, where real photos have them and a detector trained without them
  // took them for 1s (bench:read, version 1): a pole or a door's frame (a bar reaching well
  // past the digits), a railing, a door's edge (the wall beyond it another colour), screws,
  // letters. `gap` from the number's ink and `reach` past its top and bottom in digit heights;
  // `ink`: the chance they have the digits' colour, else the clutter's. `kinds`: the share of
  // bar, railing, edge, screws, letters.
  side: { p: 0.5, groups: 2, gap: [0.2, 1.2], reach: 2, ink: 0.6, kinds: [0.35, 0.15, 0.15, 0.15, 0.2] },
} as const;

/** The cumulative share of numbers 1..5 digits long. */
const LENGTH_CDF = (() => {
  let acc = 0;
  return PHOTO_SCENE.lengths.map((p) => (acc += p));
})();

export interface SyntheticPhoto {
  width: number;
  height: number;
  /** RGB, row-major, 3 bytes a pixel. */
  rgb: Uint8Array;
  /** Digits left to right, '' for a photo without a number. */
  number: string;
  /** Each digit's box in reading order, in the photo's pixels, right and bottom exclusive. */
  boxes: Box[];
  /**
   * Ink coverage (0..1, width x height) of the number, or of the letter-like strokes of a photo
   * without one: the renderer's own buffer, valid until the next render. For tests.
   */
  ink: Float32Array;
  /** Coverage (0..1) of the things beside the number (PHOTO_SCENE.side), null where there are none: the renderer's own buffer, as `ink`. For tests. */
  beside: Float32Array | null;
}

export class PhotoSceneRenderer {
  private readonly fonts: FontSet;
  private readonly raster = new PolygonRaster();
  private pixels = 0;
  private maps: SceneMaps = sceneMaps(0);
  private scratch = new Float32Array(0);
  private small = new Float32Array(0);
  private side = new Float32Array(0);

  constructor(fonts: FontSet = loadFontSet()) {
    this.fonts = fonts;
  }

  render(rng: Rng): SyntheticPhoto {
    const blank = rng.next() < PHOTO_SCENE.blank;
    const digits = drawDigits(rng); // a blank photo's plate is still cut to a number's size
    const { width, height } = drawFrame(rng, digits.length);
    this.reserve(width * height);
    const family = this.fonts.families[rng.int(this.fonts.families.length)]!;
    const face = family[rng.int(family.length)]!;
    const number = layoutDigits(face, digits, drawGap(rng, face.digits[digits[0]!]!));
    const { m, unit } = placeNumber(rng, number, width, height);
    const layers = drawLayers(rng, this.raster, this.maps, number, m, { width, height, unit, plateMargin: PHOTO_SCENE.plateMargin }, !blank);
    if (!layers.clutter && rng.next() < PHOTO_SCENE.clutter.p) {
      fillClutter(rng, this.raster, this.maps.covClutter, width, height, PHOTO_SCENE.clutter.lines);
      layers.clutter = true;
    }
    if (blank && rng.next() < PHOTO_SCENE.strokes.p) this.fillStrokes(rng, number, m, width, height);
    const side = rng.next() < PHOTO_SCENE.side.p;
    if (side) this.fillSide(rng, number, m, width, height);
    const palette = drawPalette(rng, layers.plate, PHOTO_SCENE.contrast);
    const sideColour = rng.next() < PHOTO_SCENE.side.ink ? palette.fg : palette.junk;
    const light = drawLighting(rng, Math.max(width, height));
    lowFrequencyTexture(rng, this.maps.tex, width, height, rng.uniform(0, SCENE.texture));
    composite(this.maps, width, height, layers, palette, light, side ? { cov: this.side, colour: sideColour } : undefined);
    const grainy = rng.next() < (blank ? PHOTO_SCENE.grain.blank : PHOTO_SCENE.grain.number);
    const rgb = this.photograph(rng, width, height, unit, palette.contrast, grainy);
    return {
      width,
      height,
      rgb,
      number: blank ? '' : digits.join(''),
      boxes: blank ? [] : number.map((d) => digitBox(d, m, width, height)),
      ink: this.maps.cov.subarray(0, width * height),
      beside: side ? this.side.subarray(0, width * height) : null,
    };
  }

  /** Buffers for a photo of `pixels` pixels (grown, never shrunk). */
  private reserve(pixels: number): void {
    if (pixels <= this.pixels) return;
    this.pixels = pixels;
    this.maps = sceneMaps(pixels);
    this.scratch = new Float32Array(pixels * 3);
    this.small = new Float32Array(pixels * 3);
    this.side = new Float32Array(pixels);
  }

  /** The camera over the whole photo: noise, defocus, a low-resolution resample, tone curve, noise (`grainy`: PHOTO_SCENE.grain's), bytes. */
  private photograph(rng: Rng, width: number, height: number, unit: number, contrast: number, grainy: boolean): Uint8Array {
    const { scratch, small } = this;
    const { img } = this.maps;
    const n = width * height * 3;
    desaturate(img, width * height, rng.uniform(PHOTO_SCENE.saturation[0], PHOTO_SCENE.saturation[1]));
    addNoise(rng, img, n, rng.uniform(0, Math.min(SCENE.sourceNoise, 0.25 * 255 * contrast)));
    // A street view caught most numbers at a few tens of pixels: shrink the scene to that
    // (bicubic, averaging), defocus it there and enlarge it back (bicubic, soft with ringing).
    // Blurring at the small size also keeps the blur's kernel short in big photos.
    const { blur, resample } = PHOTO_SCENE;
    const [lo, hi] = resample.numberHeight;
    const s = rng.next() < resample.p ? Math.min(1, Math.exp(rng.uniform(Math.log(lo), Math.log(hi))) / unit) : 1;
    const w = Math.max(4, Math.round(width * s));
    const h = Math.max(4, Math.round(height * s));
    const shrunk = w < width && h < height;
    if (shrunk) resizeBicubicRect(img, width, height, small, w, h, scratch);
    const sharp = shrunk ? small : img;
    if (rng.next() < blur.p) gaussianBlurRect(sharp, shrunk ? w : width, shrunk ? h : height, rng.uniform(blur.sigma[0], blur.sigma[1]), scratch);
    if (shrunk) resizeBicubicRect(small, w, h, img, width, height, scratch);
    toneCurve(img, n, rng.uniform(SCENE.gamma[0], SCENE.gamma[1]));
    addNoise(rng, img, n, grainy ? rng.uniform(PHOTO_SCENE.grain.sd[0], PHOTO_SCENE.grain.sd[1]) : rng.uniform(0, PHOTO_SCENE.finalNoise));
    const rgb = new Uint8Array(n);
    for (let i = 0; i < n; i++) rgb[i] = clampByte(img[i]!);
    return rgb;
  }

  /**
   * One or two groups of things beside the number (PHOTO_SCENE.side), in the number's own pose,
   * never over its ink: each starts at least `gap[0]` digit heights left of its left edge or
   * right of its right edge. Into this.side, which composite lays over the wall and plate.
   */
  private fillSide(rng: Rng, number: PlacedDigit[], m: Projective, width: number, height: number): void {
    const { gap, reach, groups } = PHOTO_SCENE.side;
    const { x0, x1, y0, y1 } = emExtent(number);
    const h = y1 - y0;
    this.side.fill(0, 0, width * height);
    this.raster.clear();
    // A shape reaching far from the number can pass where the perspective's w nears 0 and
    // the map folds it back over the digits: each is drawn only where w stays above 1/2, its
    // corners pulled towards `near` (its own edge nearest the number) and the number's middle
    // height until they are, so it never comes nearer the digits than it started.
    const cy = (y0 + y1) / 2;
    const add = (pts: Float32Array, near: number) => {
      for (let tries = 0; tries < 10; tries++) {
        let ok = true;
        for (let i = 0; i < pts.length && ok; i += 2) ok = m[6] * pts[i]! + m[7] * pts[i + 1]! + 1 > 0.5;
        if (ok) return this.raster.addContour(pts, m);
        for (let i = 0; i < pts.length; i += 2) {
          pts[i] = near + (pts[i]! - near) * 0.8;
          pts[i + 1] = cy + (pts[i + 1]! - cy) * 0.8;
        }
      }
    };
    for (let g = 1 + rng.int(groups); g > 0; g--) {
      const right = rng.next() < 0.5;
      const start = rng.uniform(gap[0], gap[1]) * h;
      // x from the number's edge outwards: away(a, b) is the span [a, b) digit heights beyond the gap
      const span = (a: number, b: number): [number, number] => (right ? [x1 + start + a, x1 + start + b] : [x0 - start - b, x0 - start - a]);
      const near = right ? x1 + start : x0 - start;
      const kind = drawKind(rng);
      if (kind === 0) {
        // a pole or a frame: upright, reaching past the digits above, below or both
        const w = rng.uniform(0.06, 0.3) * h;
        let up = rng.uniform(0, reach) * h;
        let down = rng.uniform(0, reach) * h;
        if (up + down < 0.6 * h) (rng.next() < 0.5 ? (up += 0.6 * h) : (down += 0.6 * h));
        const [l, r] = span(0, w);
        add(rect(l, y0 - up, r, y1 + down), near);
      } else if (kind === 1) {
        // a railing: 2-4 bars across the whole frame
        const w = rng.uniform(0.05, 0.15) * h;
        const pitch = w + rng.uniform(0.25, 0.8) * h;
        for (let i = 2 + rng.int(3), a = 0; i > 0; i--, a += pitch) {
          const [l, r] = span(a, a + w);
          add(rect(l, y0 - reach * h, r, y1 + reach * h), near);
        }
      } else if (kind === 2) {
        // a door's edge: everything beyond a line is another surface
        const [l, r] = span(0, 2 * reach * h);
        add(rect(l, y0 - reach * h, r, y1 + reach * h), near);
      } else if (kind === 3) {
        // screws: one, or one above the other
        const radius = rng.uniform(0.04, 0.1) * h;
        const [l, r] = span(0, 2 * radius);
        const two = rng.next() < 0.4;
        for (const f of two ? [0.15, 0.85] : [rng.uniform(0.2, 0.8)]) add(disc((l + r) / 2, y0 + f * h, radius), near);
      } else {
        // a letter: 2-3 strokes in a box about a digit's size, each at least 0.5 rad off the
        // one before (two in line would make a lone bar, which would be a 1)
        const boxW = rng.uniform(0.4, 0.8) * h;
        const [l, r] = span(0, boxW);
        let before = NaN;
        for (let i = 2 + rng.int(2); i > 0; i--) {
          const half = (rng.uniform(0.08, 0.18) * h) / 2;
          let ax = 0;
          let ay = 0;
          let bx = 0;
          let by = 0;
          for (let tries = 0; tries < 8; tries++) {
            ax = rng.uniform(l, r);
            ay = rng.uniform(y0, y1);
            bx = rng.uniform(l, r);
            by = rng.uniform(y0, y1);
            const turn = Math.abs(Math.atan2(by - ay, bx - ax) - before) % Math.PI;
            if (!(Math.min(turn, Math.PI - turn) < 0.5)) break;
          }
          before = Math.atan2(by - ay, bx - ax);
          const norm = Math.hypot(by - ay, ax - bx) || 1;
          const px = ((by - ay) / norm) * half;
          const py = ((ax - bx) / norm) * half;
          add(Float32Array.of(ax - px, ay - py, bx - px, by - py, bx + px, by + py, ax + px, ay + py), near);
        }
      }
    }
    this.raster.fill(this.side, width, height);
  }

  /**
   * Letter-like strokes where a number would stand, in the ink map: two to four bars of a
   * digit's height at any angle (crosses, Ts, Vs; rarely a lone upright bar, which would be a
   * 1), so a photo without a number is not simply an empty wall.
   */
  private fillStrokes(rng: Rng, number: PlacedDigit[], m: Projective, width: number, height: number): void {
    const { x0, x1, y0, y1 } = emExtent(number);
    const h = y1 - y0;
    this.raster.clear();
    const [lo, hi] = PHOTO_SCENE.strokes.count;
    for (let i = lo + rng.int(hi - lo + 1); i > 0; i--) {
      const half = (rng.uniform(PHOTO_SCENE.strokes.width[0], PHOTO_SCENE.strokes.width[1]) * h) / 2;
      const ax = rng.uniform(x0, x1);
      const ay = rng.uniform(y0, y1);
      const angle = rng.uniform(0, Math.PI);
      const len = rng.uniform(0.3, 1) * h;
      const bx = ax + len * Math.cos(angle);
      const by = Math.min(y1, Math.max(y0, ay + len * Math.sin(angle)));
      const dx = by - ay;
      const dy = ax - bx;
      const norm = Math.hypot(dx, dy) || 1;
      const px = (dx / norm) * half;
      const py = (dy / norm) * half;
      this.raster.addContour(Float32Array.of(ax - px, ay - py, bx - px, by - py, bx + px, by + py, ax + px, ay + py), m);
    }
    this.raster.fill(this.maps.cov, width, height);
  }
}

/** Draws one of PHOTO_SCENE.side's kinds (an index into its `kinds`). */
function drawKind(rng: Rng): number {
  const u = rng.next();
  let acc = 0;
  const { kinds } = PHOTO_SCENE.side;
  for (let k = 0; k < kinds.length - 1; k++) if (u < (acc += kinds[k]!)) return k;
  return kinds.length - 1;
}

/** A convex polygon of `n` corners around (cx, cy), em units: a screw's head. */
function disc(cx: number, cy: number, r: number, n = 10): Float32Array {
  const pts = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    pts[2 * i] = cx + r * Math.cos((2 * Math.PI * i) / n);
    pts[2 * i + 1] = cy + r * Math.sin((2 * Math.PI * i) / n);
  }
  return pts;
}

/** The rectangle [l, r) x [t, b) as a contour, em units. */
function rect(l: number, t: number, r: number, b: number): Float32Array {
  return Float32Array.of(l, t, r, t, r, b, l, b);
}

/** Moves each pixel's colour towards its grey by 1 - saturation (img RGB, `pixels` pixels). */
function desaturate(img: Float32Array, pixels: number, saturation: number): void {
  for (let p = 0; p < pixels * 3; p += 3) {
    const g = (img[p]! + img[p + 1]! + img[p + 2]!) / 3;
    img[p] = g + saturation * (img[p]! - g);
    img[p + 1] = g + saturation * (img[p + 1]! - g);
    img[p + 2] = g + saturation * (img[p + 2]! - g);
  }
}

/** The photo's size for a number of `length` digits: log-normal width, aspect mostly near SVHN's for that length. */
function drawFrame(rng: Rng, length: number): { width: number; height: number } {
  const { width: w, aspect: a, minHeight } = PHOTO_SCENE;
  const width = Math.round(clamp(w.median * Math.exp(w.logSd * rng.normal()), w.range[0], w.range[1]));
  const median = a.base + a.perDigit * length;
  const aspect = rng.next() < a.wide ? rng.uniform(a.range[0], a.range[1]) : clamp(median + a.sd * rng.normal(), a.range[0], a.range[1]);
  return { width, height: Math.max(minHeight, Math.round(width / aspect)) };
}

/** A number's digits: its length as SVHN's, digits by SVHN's class frequencies, never a leading 0. */
function drawDigits(rng: Rng): number[] {
  const u = rng.next();
  let length = 1;
  while (length < LENGTH_CDF.length && u >= LENGTH_CDF[length - 1]!) length++;
  const digits: number[] = [];
  while (digits.length < length) {
    const d = drawClass(rng);
    if (d !== 0 || digits.length > 0) digits.push(d);
  }
  return digits;
}

/** The extent [left, top, right, bottom] of the digits' outlines through m: exact, as a projective map keeps lines straight. */
function mappedExtent(digits: PlacedDigit[], m: Projective): [number, number, number, number] {
  let l = Infinity;
  let t = Infinity;
  let r = -Infinity;
  let b = -Infinity;
  for (const d of digits) {
    const mm = translateSource(m, d.x);
    for (const c of d.outline.contours) {
      for (let i = 0; i < c.length; i += 2) {
        const x = c[i]!;
        const y = c[i + 1]!;
        const w = mm[6] * x + mm[7] * y + 1;
        const X = (mm[0] * x + mm[1] * y + mm[2]) / w;
        const Y = (mm[3] * x + mm[4] * y + mm[5]) / w;
        if (X < l) l = X;
        if (X > r) r = X;
        if (Y < t) t = Y;
        if (Y > b) b = Y;
      }
    }
  }
  return [l, t, r, b];
}

/** One digit's box: its ink extent rounded outwards to whole pixels, inside the photo. */
function digitBox(d: PlacedDigit, m: Projective, width: number, height: number): Box {
  const [l, t, r, b] = mappedExtent([d], m);
  return [Math.max(0, Math.floor(l)), Math.max(0, Math.floor(t)), Math.min(width, Math.ceil(r)), Math.min(height, Math.ceil(b))];
}

/**
 * Em units -> photo pixels: the number posed as a crop's digit is (stretch, shear, rotation,
 * perspective), scaled so its ink is a drawn fraction of the photo's height (less when it
 * would not fit across), and placed where it fits. `unit` is its ink height in pixels.
 */
function placeNumber(rng: Rng, number: PlacedDigit[], width: number, height: number): { m: Projective; unit: number } {
  const pose = drawPose(rng);
  pose.stretch *= PHOTO_SCENE.narrow;
  const { x0, x1, y0, y1 } = emExtent(number);
  const affine = poseAffine(pose, 1 / (y1 - y0), (x0 + x1) / 2, (y0 + y1) / 2); // the number's ink 1 unit tall, centred
  const across = ((x1 - x0) * pose.stretch) / (y1 - y0); // its width in units
  let gx = 0;
  let gy = 0;
  if (rng.next() < SCENE.perspective.p) {
    gx = rng.uniform(-PHOTO_SCENE.perspective, PHOTO_SCENE.perspective) / Math.max(1, across);
    gy = rng.uniform(-PHOTO_SCENE.perspective, PHOTO_SCENE.perspective);
  }
  const unitMap = withPerspective(affine, gx, gy, 0, 0);
  const [l, t, r, b] = mappedExtent(number, unitMap);
  const h = PHOTO_SCENE.numberHeight;
  const fraction = rng.next() < h.any ? rng.uniform(h.range[0], h.range[1]) : clamp(h.mean + h.sd * rng.normal(), h.range[0], h.range[1]);
  const k = Math.min((fraction * height) / (b - t), (PHOTO_SCENE.maxNumberWidth * width) / (r - l));
  const left = (width - k * (r - l)) * drawPlacement(rng) - k * l;
  const top = (height - k * (b - t)) * drawPlacement(rng) - k * t;
  return { m: translate(scaleMap(unitMap, k), left, top), unit: k * (b - t) };
}

/** Where in its room (0..1) the number's box starts along one axis: mostly near the middle, now and then anywhere. */
function drawPlacement(rng: Rng): number {
  const p = PHOTO_SCENE.placement;
  return rng.next() < p.anywhere ? rng.next() : clamp(0.5 + p.sd * rng.normal(), 0, 1);
}

/** m followed by scaling the pixels by k about the origin. */
function scaleMap(m: Projective, k: number): Projective {
  return [m[0] * k, m[1] * k, m[2] * k, m[3] * k, m[4] * k, m[5] * k, m[6], m[7]];
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}
