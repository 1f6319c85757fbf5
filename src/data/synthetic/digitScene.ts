/**
 * One synthetic SVHN crop, drawn the way SVHN's own crops came about: a house number in a
 * real typeface (fonts.ts) on a wall or a plate, photographed at some distance, its digit's
 * box widened to a square and resized to 32x32.
 *
 *   1. the number: the labelled digit with 0-2 neighbours each side, set nearly touching as
 *      house numbers are, so neighbours are cut by the crop's edges as in SVHN;
 *   2. the camera: scale (the digit fills 70-105% of the crop's height), italic shear, a
 *      small rotation and perspective, all one projective map of the outlines;
 *   3. the scene, at the photo's resolution (a crop of 10-56 px): wall or plate colours of
 *      varied contrast, polarity and tint, a plate edge or frame, clutter lines, a drop
 *      shadow, lighting gradient, cast shadow, low-frequency texture, sensor noise, defocus;
 *   4. the crop resized to 32x32 with a bicubic kernel (soft edges and ringing when the
 *      photo was small), a little more blur and noise, rounded to bytes.
 *
 * Every range below is a guess checked by eye against real crops and by accuracy on real
 * digits; widening a range is cheaper for the model than missing a look.
 *
 * The scene's pieces (layout, pose, palette, layers, composite, lighting, texture, noise,
 * tone curve) are exported: photoScene.ts draws whole photos with them, over any width x height.
 */
import { IMAGE_WIDTH, NUM_CLASSES } from '../../config.js';
import { Rng } from '../../util/rng.js';
import { loadFontSet, type DigitOutline, type FontFace, type FontSet } from './fonts.js';
import { PolygonRaster, gaussianBlur, resizeBicubic, type Projective } from './raster.js';

/** SVHN train's digit counts (index = digit): 1 most common, as in real house numbers. */
const SVHN_CLASS_COUNTS = [4948, 13861, 10585, 8497, 7458, 6882, 5727, 5595, 5045, 4659];
const CLASS_CDF = (() => {
  const total = SVHN_CLASS_COUNTS.reduce((a, b) => a + b, 0);
  let acc = 0;
  return SVHN_CLASS_COUNTS.map((c) => (acc += c / total));
})();

/** The scene's ranges. Sizes are fractions of the crop's side unless they say px. */
export const SCENE = {
  sourceSize: [8, 64], // px: side of the crop in the photo, log-uniform (most SVHN digits were small)
  fill: [0.65, 1.05], // digit's longer side / crop side (boxes are tight on the digit, sometimes cut)
  centreJitter: [0.08, 0.05], // x, y: offset of the digit's centre
  neighbours: [0.25, 0.45, 0.3], // chance of 0, 1, 2 neighbours on each side
  gap: [-0.08, 0.2], // ink gap between neighbours / digit height
  stretch: [0.65, 1.2], // horizontal scale (condensed to extended)
  italic: { p: 0.3, shear: [-0.1, 0.35] },
  rotationSd: 0.07, // radians
  perspective: { p: 0.5, max: 0.35 },
  plate: { p: 0.45, margin: [0.02, 0.45], frame: 0.25 },
  shadow: { p: 0.15, offset: [0.02, 0.08] },
  clutter: { p: 0.25, lines: 3, alpha: [0.2, 1] },
  contrast: [0.05, 0.8], // |luminance difference| of digit and background, 0..1; skewed low (u^1.5)
  saturation: 0.25, // at most, most colours near grey
  saturatedPlate: 0.3, // chance a plate is clearly coloured (blue, green, red signs)
  texture: 25, // at most, 0..255 units
  castShadow: 0.15,
  sourceNoise: 12, // sd at most, 0..255 units, before the resize (so it comes out blotchy)
  sourceBlur: { p: 0.5, sigma: [0.3, 1.5] }, // px of the photo
  cropBlur: { p: 0.3, sigma: [0.3, 1.2] }, // px of the 32x32 crop
  cropNoise: 6,
  gamma: [0.7, 1.4], // tone curve of the camera, applied to the crop
} as const;

const MAX_SOURCE = SCENE.sourceSize[1];
const OUT = IMAGE_WIDTH;

/**
 * Standard normals for pixel noise, drawn once from their own seed and read at a random
 * offset per image: a Box-Muller draw per pixel value was the generator's largest cost.
 */
const NOISE_TABLE_SIZE = 1 << 16;
const NOISE = (() => {
  const r = new Rng(0x5eed);
  const t = new Float32Array(NOISE_TABLE_SIZE);
  for (let i = 0; i < t.length; i++) t[i] = r.normal();
  return t;
})();

/** Adds sd * N(0, 1) to values[0 .. count), reading the noise table from a random offset. */
export function addNoise(rng: Rng, values: Float32Array, count: number, sd: number): void {
  let j = rng.int(NOISE_TABLE_SIZE);
  for (let i = 0; i < count; i++) {
    values[i]! += sd * NOISE[j]!;
    j = (j + 1) & (NOISE_TABLE_SIZE - 1);
  }
}

/**
 * The coverage maps (0..1) and colour buffers a scene is drawn into, row-major at the
 * photo's size: the number's ink, its drop shadow, the plate, the plate's frame, clutter,
 * the background texture (0..255 units) and the composited RGB image.
 */
export interface SceneMaps {
  cov: Float32Array;
  covShadow: Float32Array;
  covPlate: Float32Array;
  covFrame: Float32Array;
  covClutter: Float32Array;
  tex: Float32Array;
  img: Float32Array; // RGB, 3 values a pixel
}

/** Maps for scenes of up to `pixels` pixels. */
export function sceneMaps(pixels: number): SceneMaps {
  const map = () => new Float32Array(pixels);
  return { cov: map(), covShadow: map(), covPlate: map(), covFrame: map(), covClutter: map(), tex: map(), img: new Float32Array(pixels * 3) };
}

/**
 * Where a scene is drawn: a width x height frame, and the unit its layer sizes are fractions
 * of (a crop's side; the number's height in a whole photo).
 */
export interface SceneFrame {
  width: number;
  height: number;
  unit: number; // px
  plateMargin: readonly [number, number]; // the plate's margin around the number's ink, in digit heights
}

export class DigitSceneRenderer {
  private readonly fonts: FontSet;
  private readonly raster = new PolygonRaster();
  private readonly maps = sceneMaps(MAX_SOURCE * MAX_SOURCE);
  private readonly scratch = new Float32Array(MAX_SOURCE * MAX_SOURCE * 3);
  private readonly crop = new Float32Array(OUT * OUT * 3);

  constructor(fonts: FontSet = loadFontSet()) {
    this.fonts = fonts;
  }

  /** Renders one image NHWC into out[off .. off + 3072) and returns its digit. */
  render(rng: Rng, out: Uint8Array, off: number): number {
    const digit = drawClass(rng);
    const family = this.fonts.families[rng.int(this.fonts.families.length)]!;
    const face = family[rng.int(family.length)]!;
    const size = Math.round(Math.exp(rng.uniform(Math.log(SCENE.sourceSize[0]), Math.log(SCENE.sourceSize[1]))));
    const frame: SceneFrame = { width: size, height: size, unit: size, plateMargin: SCENE.plate.margin };
    const number = layoutNumber(rng, face, digit);
    const m = cameraMap(rng, face.digits[digit]!, size);
    const layers = drawLayers(rng, this.raster, this.maps, number, m, frame);
    const palette = drawPalette(rng, layers.plate);
    const light = drawLighting(rng, size);
    lowFrequencyTexture(rng, this.maps.tex, size, size, rng.uniform(0, SCENE.texture));
    composite(this.maps, size, size, layers, palette, light);
    this.photograph(rng, size, palette.contrast, out, off);
    return digit;
  }

  /** The camera: noise and blur at the photo's size, the bicubic resize to 32x32, blur, tone curve, noise, bytes. */
  private photograph(rng: Rng, size: number, contrast: number, out: Uint8Array, off: number): void {
    const { crop, scratch } = this;
    const { img } = this.maps;
    addNoise(rng, img, size * size * 3, rng.uniform(0, Math.min(SCENE.sourceNoise, 0.25 * 255 * contrast)));
    if (rng.next() < SCENE.sourceBlur.p) gaussianBlur(img, size, rng.uniform(SCENE.sourceBlur.sigma[0], SCENE.sourceBlur.sigma[1]), scratch);
    resizeBicubic(img, size, crop, OUT, scratch);
    if (rng.next() < SCENE.cropBlur.p) gaussianBlur(crop, OUT, rng.uniform(SCENE.cropBlur.sigma[0], SCENE.cropBlur.sigma[1]), scratch);
    toneCurve(crop, crop.length, rng.uniform(SCENE.gamma[0], SCENE.gamma[1]));
    addNoise(rng, crop, crop.length, rng.uniform(0, SCENE.cropNoise));
    for (let i = 0; i < crop.length; i++) out[off + i] = clampByte(crop[i]!);
  }
}

/**
 * Coverage maps for a scene: the number through m (unless `ink` is false: a photo without
 * one), and the layers this scene has (drop shadow, plate and frame, clutter).
 */
export function drawLayers(rng: Rng, raster: PolygonRaster, maps: SceneMaps, number: PlacedDigit[], m: Projective, frame: SceneFrame, ink = true): Layers {
  const { width, height, unit } = frame;
  const n = width * height;
  maps.cov.fill(0, 0, n);
  if (ink) fillText(raster, number, m, maps.cov, width, height);

  const shadow = ink && rng.next() < SCENE.shadow.p;
  if (shadow) {
    const r = rng.uniform(SCENE.shadow.offset[0], SCENE.shadow.offset[1]) * unit;
    const a = rng.uniform(0, 2 * Math.PI);
    maps.covShadow.fill(0, 0, n);
    fillText(raster, number, translate(m, r * Math.cos(a), r * Math.sin(a)), maps.covShadow, width, height);
  }
  const plate = rng.next() < SCENE.plate.p;
  const withFrame = plate && rng.next() < SCENE.plate.frame;
  if (plate) fillPlate(rng, raster, maps, number, m, frame, withFrame);
  const clutter = rng.next() < SCENE.clutter.p;
  if (clutter) fillClutter(rng, raster, maps.covClutter, width, height);
  return { shadow, plate, frame: withFrame, clutter };
}

/** The scene in colour at the photo's size: layers painted back to front, then light and texture. */
export function composite(maps: SceneMaps, width: number, height: number, layers: Layers, c: Palette, l: Lighting, side?: SideLayer): void {
  const { img, tex, cov, covShadow, covPlate, covFrame, covClutter } = maps;
  const { shadow, plate, frame, clutter } = layers;
  const base = plate ? c.wall : c.bg;
  for (let p = 0; p < width * height; p++) {
    const x = (p % width) + 0.5 - width / 2;
    const y = Math.floor(p / width) + 0.5 - height / 2;
    const light = (1 + l.gx * x + l.gy * y) * (x * l.sx + y * l.sy > l.sd ? l.sf : 1);
    const t = tex[p]!;
    for (let ch = 0; ch < 3; ch++) {
      let v = base[ch]!;
      if (clutter) v += c.junkAlpha * Math.min(1, covClutter[p]!) * (c.junk[ch]! - v);
      if (plate) v += Math.min(1, covPlate[p]!) * (c.bg[ch]! - v);
      if (frame) v += Math.min(1, covFrame[p]!) * (c.fg[ch]! - v);
      if (side) v += Math.min(1, side.cov[p]!) * (side.colour[ch]! - v);
      if (shadow) v += Math.min(1, covShadow[p]!) * (c.shade[ch]! - v);
      v += Math.min(1, cov[p]!) * (c.fg[ch]! - v);
      img[p * 3 + ch] = (v + t) * light * c.cast[ch]!;
    }
  }
}

/** The camera's tone curve: 255 * (v / 255) ^ gamma over values[0 .. count), negatives to 0. */
export function toneCurve(values: Float32Array, count: number, gamma: number): void {
  for (let i = 0; i < count; i++) values[i] = values[i]! <= 0 ? 0 : 255 * (values[i]! / 255) ** gamma;
}

/** Adds the coverage of every digit of the number through m to cov (width x height). */
export function fillText(raster: PolygonRaster, number: PlacedDigit[], m: Projective, cov: Float32Array, width: number, height: number): void {
  raster.clear();
  for (const d of number) {
    const mm = translateSource(m, d.x);
    for (const c of d.outline.contours) raster.addContour(c, mm);
  }
  raster.fill(cov, width, height);
}

/** The ink extent of a laid-out number, em units. */
export function emExtent(number: PlacedDigit[]): { x0: number; x1: number; y0: number; y1: number } {
  let x0 = Infinity;
  let x1 = -Infinity;
  let y0 = Infinity;
  let y1 = -Infinity;
  for (const d of number) {
    x0 = Math.min(x0, d.x + d.outline.xMin);
    x1 = Math.max(x1, d.x + d.outline.xMax);
    y0 = Math.min(y0, d.outline.yMin);
    y1 = Math.max(y1, d.outline.yMax);
  }
  return { x0, x1, y0, y1 };
}

/** A plate behind the number (the same camera map, so it shares the perspective), and maybe a frame line inside its edge. */
function fillPlate(rng: Rng, raster: PolygonRaster, maps: SceneMaps, number: PlacedDigit[], m: Projective, frame: SceneFrame, withFrame: boolean): void {
  const { width, height } = frame;
  const { x0, x1, y0, y1 } = emExtent(number);
  const h = y1 - y0;
  const [lo, hi] = frame.plateMargin;
  const l = x0 - rng.uniform(lo, hi) * h;
  const r = x1 + rng.uniform(lo, hi) * h;
  const t = y0 - rng.uniform(lo, hi) * h;
  const b = y1 + rng.uniform(lo, hi) * h;
  maps.covPlate.fill(0, 0, width * height);
  raster.clear();
  raster.addContour(Float32Array.of(l, t, r, t, r, b, l, b), m);
  raster.fill(maps.covPlate, width, height);
  if (!withFrame) return;
  // A frame: the ring between two rectangles a little inside the plate's edge.
  const inset = rng.uniform(0.03, 0.1) * h;
  const ring = rng.uniform(0.03, 0.08) * h;
  maps.covFrame.fill(0, 0, width * height);
  raster.clear();
  const a = inset;
  const c = inset + ring;
  raster.addContour(Float32Array.of(l + a, t + a, r - a, t + a, r - a, b - a, l + a, b - a), m);
  raster.addContour(Float32Array.of(l + c, t + c, l + c, b - c, r - c, b - c, r - c, t + c), m); // reversed: a hole
  raster.fill(maps.covFrame, width, height);
}

/**
 * A few straight bands across the background: wall joints, wires, door frames, bricks.
 * Offsets and lengths are fractions of the frame's longer side, widths of its shorter one.
 */
export function fillClutter(rng: Rng, raster: PolygonRaster, cov: Float32Array, width: number, height: number, maxLines: number = SCENE.clutter.lines): void {
  cov.fill(0, 0, width * height);
  raster.clear();
  const long = Math.max(width, height);
  const short = Math.min(width, height);
  const lines = 1 + rng.int(maxLines);
  for (let i = 0; i < lines; i++) {
    const a = rng.uniform(0, Math.PI);
    const ux = Math.cos(a);
    const uy = Math.sin(a);
    const d = rng.uniform(-0.5, 0.5) * long; // offset of the band's centre line from the frame's centre
    const w = rng.uniform(0.02, 0.12) * short;
    const cx = width / 2 - uy * d;
    const cy = height / 2 + ux * d;
    const L = long; // long enough to cross the frame
    const px = -uy * (w / 2);
    const py = ux * (w / 2);
    raster.addContour(
      Float32Array.of(cx - ux * L - px, cy - uy * L - py, cx + ux * L - px, cy + uy * L - py, cx + ux * L + px, cy + uy * L + py, cx - ux * L + px, cy - uy * L + py),
      IDENTITY,
    );
  }
  raster.fill(cov, width, height);
}

export const IDENTITY: Projective = [1, 0, 0, 0, 1, 0, 0, 0];

/** Which layers an image has; their coverage maps are the renderer's. */
export interface Layers {
  shadow: boolean;
  plate: boolean;
  frame: boolean;
  clutter: boolean;
}

export type Rgb = [number, number, number];

/** One more layer over the plate and under the shadow and the number (a whole photo's things beside the number): its coverage and colour. */
export interface SideLayer {
  cov: Float32Array;
  colour: Rgb;
}

/** Colours 0..255: background (plate, or wall without one), digit, wall around a plate, drop shadow, clutter; white balance gains. */
export interface Palette {
  contrast: number; // luminance difference of digit and background, 0..1
  bg: Rgb;
  fg: Rgb;
  wall: Rgb;
  shade: Rgb;
  junk: Rgb;
  junkAlpha: number;
  cast: Rgb;
}

/** Contrast skewed low within `range`, either polarity; a plate now and then clearly coloured, everything else mostly grey. */
export function drawPalette(rng: Rng, plate: boolean, range: readonly [number, number] = SCENE.contrast): Palette {
  const contrast = range[0] + (range[1] - range[0]) * rng.next() ** 1.5;
  const hi = rng.uniform(contrast, 1); // luminance of the lighter of digit and background
  const lo = hi - contrast;
  const darkOnLight = rng.next() < 0.55;
  const saturated = plate && rng.next() < SCENE.saturatedPlate;
  const bg = colour(rng, darkOnLight ? hi : lo, saturated ? rng.uniform(0.1, 0.35) : mostlyGrey(rng));
  const fg = colour(rng, darkOnLight ? lo : hi, mostlyGrey(rng));
  const wall = colour(rng, rng.uniform(0.05, 0.95), mostlyGrey(rng));
  const shade = colour(rng, Math.max(0, (darkOnLight ? lo : hi) * rng.uniform(0.2, 0.8)), mostlyGrey(rng));
  const junk = colour(rng, rng.uniform(0.05, 0.95), mostlyGrey(rng));
  const junkAlpha = rng.uniform(SCENE.clutter.alpha[0], SCENE.clutter.alpha[1]);
  const cast: Rgb = [1 + 0.06 * rng.normal(), 1 + 0.06 * rng.normal(), 1 + 0.06 * rng.normal()];
  return { contrast, bg, fg, wall, shade, junk, junkAlpha, cast };
}

/** Light over the crop: a multiplicative linear gradient (gx, gy per px), sometimes a cast shadow's half-plane (factor sf beyond distance sd along (sx, sy)). */
export interface Lighting {
  gx: number;
  gy: number;
  sx: number;
  sy: number;
  sd: number;
  sf: number;
}

export function drawLighting(rng: Rng, size: number): Lighting {
  const l: Lighting = { gx: (rng.normal() * 0.3) / size, gy: (rng.normal() * 0.3) / size, sx: 0, sy: 0, sd: Infinity, sf: 1 };
  if (rng.next() < SCENE.castShadow) {
    const a = rng.uniform(0, 2 * Math.PI);
    l.sx = Math.cos(a);
    l.sy = Math.sin(a);
    l.sd = rng.uniform(-0.4, 0.4) * size;
    l.sf = rng.uniform(0.45, 0.85);
  }
  return l;
}

export interface PlacedDigit {
  outline: DigitOutline;
  x: number; // pen position, em units; the labelled digit is at 0
}

export function drawClass(rng: Rng): number {
  const u = rng.next();
  let digit = 0;
  while (digit < NUM_CLASSES - 1 && u >= CLASS_CDF[digit]!) digit++;
  return digit;
}

function neighbourCount(rng: Rng): number {
  const u = rng.next();
  const [p0, p1] = SCENE.neighbours;
  return u < p0 ? 0 : u < p0 + p1 ? 1 : 2;
}

/** The ink-to-ink gap between neighbouring digits, em: a fraction of the digit o's height. */
export function drawGap(rng: Rng, o: DigitOutline): number {
  return (o.yMax - o.yMin) * rng.uniform(SCENE.gap[0], SCENE.gap[1]);
}

/** The pen position that sets o `gap` em right of the ink edge `edge` (em). */
function penRightOf(edge: number, gap: number, o: DigitOutline): number {
  return edge + gap - o.xMin;
}

/**
 * The labelled digit at 0 and its neighbours, set ink to ink: house-number digits nearly
 * touch (in SVHN's boxes the gap between neighbours is 0 +- 0.1 of the digit's height), far
 * tighter than a face's advances set them.
 */
function layoutNumber(rng: Rng, face: FontFace, digit: number): PlacedDigit[] {
  const main = face.digits[digit]!;
  const gap = drawGap(rng, main); // em, ink to ink
  const placed: PlacedDigit[] = [{ outline: main, x: 0 }];
  let edge = main.xMin;
  for (let i = neighbourCount(rng); i > 0; i--) {
    const o = face.digits[rng.int(NUM_CLASSES)]!;
    const x = edge - gap - o.xMax;
    placed.push({ outline: o, x });
    edge = x + o.xMin;
  }
  edge = main.xMax;
  for (let i = neighbourCount(rng); i > 0; i--) {
    const o = face.digits[rng.int(NUM_CLASSES)]!;
    const x = penRightOf(edge, gap, o);
    placed.push({ outline: o, x });
    edge = x + o.xMax;
  }
  return placed;
}

/** A whole number's digits left to right, set ink to ink `gap` em apart as layoutNumber sets them; the first at pen 0. */
export function layoutDigits(face: FontFace, digits: readonly number[], gap: number): PlacedDigit[] {
  const placed: PlacedDigit[] = [];
  let edge = 0;
  for (const [i, digit] of digits.entries()) {
    const o = face.digits[digit]!;
    const x = i === 0 ? 0 : penRightOf(edge, gap, o);
    placed.push({ outline: o, x });
    edge = x + o.xMax;
  }
  return placed;
}

/** How the number is set and held to the camera: horizontal stretch, italic shear, rotation (radians). */
export interface Pose {
  stretch: number;
  shear: number;
  rot: number;
}

export function drawPose(rng: Rng): Pose {
  const stretch = rng.uniform(SCENE.stretch[0], SCENE.stretch[1]);
  const shear = rng.next() < SCENE.italic.p ? rng.uniform(SCENE.italic.shear[0], SCENE.italic.shear[1]) : 0;
  const rot = Math.max(-3 * SCENE.rotationSd, Math.min(3 * SCENE.rotationSd, rng.normal() * SCENE.rotationSd));
  return { stretch, shear, rot };
}

/** An affine map (a, b, c, d, e, f): x' = a x + b y + c, y' = d x + e y + f. */
export type Affine = [number, number, number, number, number, number];

/** Em units -> pixels centred on the origin: (cxEm, cyEm) to 0, scaled by k (x also by the stretch), sheared, rotated. */
export function poseAffine(pose: Pose, k: number, cxEm: number, cyEm: number): Affine {
  // Centred affine: p = R * [[1, -shear], [0, 1]] * diag(k * stretch, k) * (q - c).
  const cos = Math.cos(pose.rot);
  const sin = Math.sin(pose.rot);
  const sx = k * pose.stretch;
  const a0 = sx;
  const b0 = -pose.shear * k;
  const e0 = k;
  const a = cos * a0;
  const b = cos * b0 - sin * e0;
  const d = sin * a0;
  const e = sin * b0 + cos * e0;
  const c = -(a * cxEm + b * cyEm);
  const f = -(d * cxEm + e * cyEm);
  return [a, b, c, d, e, f];
}

/**
 * The affine map seen in perspective, its origin moved to (ox, oy): w = 1 + gx px + gy py
 * over the centred pixel coordinates (gx, gy per px), folded into one projective map.
 */
export function withPerspective([a, b, c, d, e, f]: Affine, gx: number, gy: number, ox: number, oy: number): Projective {
  // X = (px + ox * w) / w with w = w0 + wx x + wy y, all divided by w0 so the constant is 1.
  const w0 = 1 + gx * c + gy * f;
  const wx = gx * a + gy * d;
  const wy = gx * b + gy * e;
  return [(a + ox * wx) / w0, (b + ox * wy) / w0, (c + ox * w0) / w0, (d + oy * wx) / w0, (e + oy * wy) / w0, (f + oy * w0) / w0, wx / w0, wy / w0];
}

/**
 * Em units -> crop pixels: the labelled digit's ink box centred (with jitter) and scaled so
 * its longer side fills `fill` of the crop, then stretch, italic shear, rotation and a mild
 * perspective (the divisor w), folded into one projective map.
 */
function cameraMap(rng: Rng, o: DigitOutline, size: number): Projective {
  const pose = drawPose(rng);
  const fill = rng.uniform(SCENE.fill[0], SCENE.fill[1]);
  const inkW = (o.xMax - o.xMin) * pose.stretch;
  const inkH = o.yMax - o.yMin;
  const k = (fill * size) / Math.max(inkW, inkH);
  const affine = poseAffine(pose, k, (o.xMin + o.xMax) / 2, (o.yMin + o.yMax) / 2);
  // Perspective: w = 1 + (gx px + gy py) / size over the centred pixel coordinates.
  let gx = 0;
  let gy = 0;
  if (rng.next() < SCENE.perspective.p) {
    gx = rng.uniform(-SCENE.perspective.max, SCENE.perspective.max) / size;
    gy = rng.uniform(-SCENE.perspective.max, SCENE.perspective.max) / size;
  }
  const ox = size / 2 + rng.uniform(-1, 1) * SCENE.centreJitter[0] * size;
  const oy = size / 2 + rng.uniform(-1, 1) * SCENE.centreJitter[1] * size;
  return withPerspective(affine, gx, gy, ox, oy);
}

/** m applied after moving the source by dx em (a digit's pen position). */
export function translateSource(m: Projective, dx: number): Projective {
  // Substituting x + dx for x: constants gain dx times the x coefficients (w's constant too).
  const w = 1 + m[6] * dx;
  return [m[0] / w, m[1] / w, (m[2] + m[0] * dx) / w, m[3] / w, m[4] / w, (m[5] + m[3] * dx) / w, m[6] / w, m[7] / w];
}

/** m followed by a shift of (dx, dy) pixels. */
export function translate(m: Projective, dx: number, dy: number): Projective {
  return [m[0] + dx * m[6], m[1] + dx * m[7], m[2] + dx, m[3] + dy * m[6], m[4] + dy * m[7], m[5] + dy, m[6], m[7]];
}

/** Saturation for everyday surfaces: mostly near grey, now and then clearly coloured. */
function mostlyGrey(rng: Rng): number {
  const u = rng.next();
  return SCENE.saturation * u * u;
}

/**
 * An RGB colour (0..255) of luminance l (0..1) and saturation s, as a zero-mean tint of hue h
 * (0 red, 2pi/3 green, 4pi/3 blue). Most hues lie on daylight's axis, from warm (paint,
 * brick, brass, lamp light) to blue (shade, blue plates); the rest anywhere.
 */
function colour(rng: Rng, l: number, s: number): Rgb {
  const u = rng.next();
  const h = u < 0.35 ? 0.55 + 0.25 * rng.normal() : u < 0.65 ? (4 * Math.PI) / 3 + 0.25 * rng.normal() : rng.uniform(0, 2 * Math.PI);
  const third = (2 * Math.PI) / 3;
  return [255 * (l + s * Math.cos(h)), 255 * (l + s * Math.cos(h - third)), 255 * (l + s * Math.cos(h + third))];
}

/** Low-frequency texture: a 5x5 grid of N(0, amplitude) values, bilinear over width x height. */
export function lowFrequencyTexture(rng: Rng, tex: Float32Array, width: number, height: number, amplitude: number): void {
  const G = 5;
  const grid = new Float64Array(G * G);
  for (let i = 0; i < grid.length; i++) grid[i] = rng.normal() * amplitude;
  for (let y = 0; y < height; y++) {
    const gy = (y * (G - 1)) / Math.max(1, height - 1);
    const iy = Math.min(G - 2, Math.floor(gy));
    const fy = gy - iy;
    for (let x = 0; x < width; x++) {
      const gx = (x * (G - 1)) / Math.max(1, width - 1);
      const ix = Math.min(G - 2, Math.floor(gx));
      const fx = gx - ix;
      const top = grid[iy * G + ix]! + (grid[iy * G + ix + 1]! - grid[iy * G + ix]!) * fx;
      const bottom = grid[(iy + 1) * G + ix]! + (grid[(iy + 1) * G + ix + 1]! - grid[(iy + 1) * G + ix]!) * fx;
      tex[y * width + x] = top + (bottom - top) * fy;
    }
  }
}

export function clampByte(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : (v + 0.5) | 0;
}
