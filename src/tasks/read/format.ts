/**
 * The reader's input and label formats, shared by the photo cache (preprocess --format full),
 * training, `svhn read`, serve and the page (which imports this file's compiled form: keep its
 * imports to types).
 *
 * Input: every photo is letterboxed into READER_INPUT (48 x 96 RGB, HxW): scaled by one factor
 * so the whole photo fits, centred, the rest filled with grey LETTERBOX_FILL (YOLO's 114).
 * Real SVHN photos are 104 x 47 px at the median (their digits ~65% of the height), so the
 * median photo keeps its resolution; a long photo shrinks, a small one grows.
 *
 * Labels: a fixed record of LABEL_BYTES uint8 per photo: [n, l0, t0, r0, b0, l1, ...], n digits
 * (0: no number) then each digit's box in input pixels, [left, top, right, bottom) rounded to
 * whole pixels and clipped to the input, in reading order; unused slots are 0. A photo of more
 * than MAX_DIGITS digits has no record (preprocess skips and counts it).
 */
import type { Box } from '../../data/images/photoLabels.js';

export const READER_INPUT = { height: 48, width: 96, channels: 3 } as const;
/** uint8 bytes of one letterboxed photo, NHWC. */
export const READER_IMAGE_BYTES = READER_INPUT.height * READER_INPUT.width * READER_INPUT.channels;
/** The detector's output grid (detector.ts): input pixels per cell, cells, channels per cell. */
export const DETECTOR_STRIDE = 2;
export const GRID_HEIGHT = READER_INPUT.height / DETECTOR_STRIDE; // 24
export const GRID_WIDTH = READER_INPUT.width / DETECTOR_STRIDE; // 48
/** Centre logit, x and y offset, log width and height. */
export const HEAD_CHANNELS = 5;
/** The letterbox's fill, each of R, G, B (YOLO's 114: a neutral grey, not an edge). */
export const LETTERBOX_FILL = 114;
/** The most digits a photo's record holds (SVHN's longest numbers have 6). */
export const MAX_DIGITS = 6;
/** uint8 bytes of one label record: the count, then 4 per digit. */
export const LABEL_BYTES = 1 + 4 * MAX_DIGITS;

/** Where a photo of width x height lands in the input: scale, then offset (input pixels). */
export interface Letterbox {
  scale: number;
  /** The scaled photo's size in the input, whole pixels. */
  width: number;
  height: number;
  /** Its top-left corner in the input. */
  padX: number;
  padY: number;
}

/** The letterbox of a photo: one scale that fits both sides, the photo centred (padding floored). */
export function letterboxOf(photoWidth: number, photoHeight: number): Letterbox {
  if (!(photoWidth > 0 && photoHeight > 0)) throw new Error(`letterboxOf: expected a photo size, got ${photoWidth}x${photoHeight}`);
  const scale = Math.min(READER_INPUT.width / photoWidth, READER_INPUT.height / photoHeight);
  const width = Math.max(1, Math.min(READER_INPUT.width, Math.round(photoWidth * scale)));
  const height = Math.max(1, Math.min(READER_INPUT.height, Math.round(photoHeight * scale)));
  return { scale, width, height, padX: Math.floor((READER_INPUT.width - width) / 2), padY: Math.floor((READER_INPUT.height - height) / 2) };
}

/** A box in photo pixels -> input pixels (fractional; the record rounds), for a photo of photoWidth x photoHeight. */
export function boxToInput(box: Box, lb: Letterbox, photoWidth: number, photoHeight: number): Box {
  // The scaled size is rounded, so the exact factor per axis is the size ratio, not `scale`.
  const sx = lb.width / photoWidth;
  const sy = lb.height / photoHeight;
  return [box[0] * sx + lb.padX, box[1] * sy + lb.padY, box[2] * sx + lb.padX, box[3] * sy + lb.padY];
}

/** A box in input pixels -> photo pixels (fractional), for a photo of photoWidth x photoHeight. */
export function boxToPhoto(box: Box, lb: Letterbox, photoWidth: number, photoHeight: number): Box {
  const sx = photoWidth / lb.width;
  const sy = photoHeight / lb.height;
  return [(box[0] - lb.padX) * sx, (box[1] - lb.padY) * sy, (box[2] - lb.padX) * sx, (box[3] - lb.padY) * sy];
}

/** Writes a photo's label record at `out[offset..offset+LABEL_BYTES)`: boxes in input pixels, rounded and clipped. */
export function writeLabelRecord(boxesInInput: Box[], out: Uint8Array, offset = 0): void {
  if (boxesInInput.length > MAX_DIGITS) throw new Error(`writeLabelRecord: ${boxesInInput.length} digits, at most ${MAX_DIGITS}`);
  out.fill(0, offset, offset + LABEL_BYTES);
  out[offset] = boxesInInput.length;
  const clip = (v: number, hi: number) => Math.max(0, Math.min(hi, Math.round(v)));
  boxesInInput.forEach((b, i) => {
    const o = offset + 1 + 4 * i;
    out[o] = clip(b[0], READER_INPUT.width);
    out[o + 1] = clip(b[1], READER_INPUT.height);
    out[o + 2] = clip(b[2], READER_INPUT.width);
    out[o + 3] = clip(b[3], READER_INPUT.height);
  });
}

/** A record's boxes in input pixels. */
export function readLabelRecord(labels: Uint8Array, offset = 0): Box[] {
  const n = labels[offset]!;
  const boxes: Box[] = [];
  for (let i = 0; i < n; i++) {
    const o = offset + 1 + 4 * i;
    boxes.push([labels[o]!, labels[o + 1]!, labels[o + 2]!, labels[o + 3]!]);
  }
  return boxes;
}
