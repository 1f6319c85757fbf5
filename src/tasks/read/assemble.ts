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
 * The reading of a photo with digits: `found` in reading order, `boxes` their boxes in the
 * photo, `probs` the classifier's DIGITS probabilities per box (row i for box i). Each digit's
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
