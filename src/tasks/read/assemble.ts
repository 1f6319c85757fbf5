/**
 * From the detector's output to a Reading, the arithmetic around the two models: where each
 * detection lies in the photo, the square a digit is cut from, and the reading put together
 * from the classifier's probabilities. No tfjs and no sharp here (type imports only, like
 * format.ts and peaks.ts), so Node's reader (reader.ts) and the page's script (serve's
 * page/reader.js loads this file's compiled form) run the same code.
 */
import type { Box } from '../../data/images/photoLabels.js';
import { boxToPhoto, type Letterbox } from './format.js';
import { findDigits, numberRow, type Detection } from './peaks.js';
import type { DigitReading, Reading } from './reading.js';

/** Digit classes (config.ts NUM_CLASSES; repeated so this file imports nothing at run time). */
const DIGITS = 10;

/**
 * The detections that make the number, in reading order: the centres at or above `threshold`
 * (peaks.ts findDigits) that lie on the photo itself, not on the letterbox's grey bars, then
 * the row they form (peaks.ts numberRow).
 */
export function numberDetections(out: Float32Array, letterbox: Letterbox, threshold: number, offset = 0): Detection[] {
  const onPhoto = findDigits(out, offset, threshold).filter((d) => {
    const cx = (d.box[0] + d.box[2]) / 2;
    const cy = (d.box[1] + d.box[3]) / 2;
    return cx >= letterbox.padX && cx < letterbox.padX + letterbox.width && cy >= letterbox.padY && cy < letterbox.padY + letterbox.height;
  });
  return numberRow(onPhoto);
}

/** Each detection's box in the photo's pixels (fractional, not clipped), for a photo of width x height. */
export function boxesInPhoto(found: Detection[], letterbox: Letterbox, width: number, height: number): Box[] {
  return found.map((d) => boxToPhoto(d.box, letterbox, width, height));
}

/**
 * The square a digit is cut from, as SVHN cut its crops: the box widened along its shorter
 * side about its centre, whole pixels; it may leave the photo (the cut repeats edge pixels).
 */
export function digitSquare(box: Box): { left: number; top: number; side: number } {
  const cx = (box[0] + box[2]) / 2;
  const cy = (box[1] + box[3]) / 2;
  const side = Math.max(1, Math.round(Math.max(box[2] - box[0], box[3] - box[1])));
  return { left: Math.round(cx - side / 2), top: Math.round(cy - side / 2), side };
}

/**
 * How the classifier looks at each digit: the box itself and four views of it moved by 1/16 of
 * its square's side (2 of the crop's 32 pixels) right, left, down and up, [scale, dx, dy];
 * their log-probabilities are averaged (pooledProbs). A detector's box is seldom centred as
 * SVHN's crops were, and the views even that out. On synthetic test photos they change nothing
 * measurable (the classifier reads those near its ceiling: 2,000 read by the default offline
 * reader, 78.5% exact with and without); on the real photos of bench:read they add about 2
 * points (README, "The reader").
 */
export const DIGIT_VIEWS: ReadonlyArray<readonly [number, number, number]> = [
  [1, 0, 0],
  [1, 0.0625, 0],
  [1, -0.0625, 0],
  [1, 0, 0.0625],
  [1, 0, -0.0625],
];

/** Each box's views (DIGIT_VIEWS), box after box: boxes.length * views.length boxes, each the box scaled about its centre and moved by a fraction of its square's side. */
export function digitViews(boxes: Box[], views: ReadonlyArray<readonly [number, number, number]> = DIGIT_VIEWS): Box[] {
  const out: Box[] = [];
  for (const b of boxes) {
    const cx = (b[0] + b[2]) / 2;
    const cy = (b[1] + b[3]) / 2;
    const side = Math.max(b[2] - b[0], b[3] - b[1]);
    for (const [s, dx, dy] of views) {
      const w = ((b[2] - b[0]) * s) / 2;
      const h = ((b[3] - b[1]) * s) / 2;
      const x = cx + dx * side;
      const y = cy + dy * side;
      out.push([x - w, y - h, x + w, y + h]);
    }
  }
  return out;
}

/**
 * The classifier's probabilities for `count` digits read in `views` views each (rows box-major,
 * as digitViews), pooled per digit: the mean of the views' log-probabilities, renormalised (a
 * geometric mean). One view: the probabilities themselves.
 */
export function pooledProbs(probs: Float32Array, count: number, views: number): Float32Array {
  if (views === 1) return probs.subarray(0, count * DIGITS);
  const out = new Float32Array(count * DIGITS);
  const logs = new Float64Array(DIGITS);
  for (let d = 0; d < count; d++) {
    logs.fill(0);
    for (let v = 0; v < views; v++) for (let k = 0; k < DIGITS; k++) logs[k] += Math.log(Math.max(probs[(d * views + v) * DIGITS + k]!, 1e-30)) / views;
    let max = -Infinity;
    for (let k = 0; k < DIGITS; k++) max = Math.max(max, logs[k]!);
    let sum = 0;
    for (let k = 0; k < DIGITS; k++) sum += Math.exp(logs[k]! - max);
    for (let k = 0; k < DIGITS; k++) out[d * DIGITS + k] = Math.exp(logs[k]! - max) / sum;
  }
  return out;
}

/**
 * The reading of a photo with digits: `found` in reading order, `boxes` their boxes in the
 * photo, `probs` the classifier's DIGITS probabilities per box (row i for box i; pooledProbs for several views). Each digit's
 * confidence is its probability times its box's score; the number's, their product.
 */
export function readingOf(found: Detection[], boxes: Box[], probs: Float32Array, width: number, height: number): Reading {
  const digits: DigitReading[] = found.map((d, i) => {
    const p = probs.subarray(i * DIGITS, (i + 1) * DIGITS);
    let digit = 0;
    for (let k = 1; k < DIGITS; k++) if (p[k]! > p[digit]!) digit = k;
    const b = boxes[i]!;
    // each side within the photo, so a box partly off it stays well formed (left <= right, top <= bottom)
    const inX = (v: number) => Math.min(width, Math.max(0, v));
    const inY = (v: number) => Math.min(height, Math.max(0, v));
    return { digit, confidence: p[digit]! * d.score, box: [inX(b[0]), inY(b[1]), inX(b[2]), inY(b[3])] };
  });
  return { number: digits.map((d) => d.digit).join(''), confidence: digits.reduce((c, d) => c * d.confidence, 1), digits };
}

/** The reading of a photo where no centre passed the threshold: how sure the reader is there is none (1 - the best peak's score). */
export function noNumberReading(out: Float32Array, offset = 0): Reading {
  let best = 0;
  for (const d of findDigits(out, offset, 0)) best = Math.max(best, d.score);
  return { number: '', confidence: 1 - best, digits: [] };
}
