/**
 * From the detector's output to digit boxes: the cells whose centre chance is at least a
 * threshold and the highest of their 3 x 3 neighbourhood (CenterNet's max-pool NMS), each with
 * the box its offset and size give, in input pixels; then boxes that overlap a better one by
 * more than half are dropped. Pure arithmetic on one photo's output, so the CLI, serve and the
 * training loop's metric share it, and serve's page imports its compiled form (no imports but
 * format.ts and types: keep it so).
 */
import type { Box } from '../../data/images/photoLabels.js';
import { DETECTOR_STRIDE, GRID_HEIGHT, GRID_WIDTH, HEAD_CHANNELS } from './format.js';

export interface Detection {
  /** sigmoid of the centre logit: the chance this is a digit's centre. */
  score: number;
  /** In input pixels, [left, top, right, bottom), fractional. */
  box: Box;
  cell: { x: number; y: number };
}

/**
 * A centre needs this chance to count as a digit when a reader reads. Chosen on synthetic test
 * photos with the default offline reader, never on the real photos it is measured on. With the
 * 2x2-pixel grid (detector.ts), the five views, on the first 1,000 v2 test photos: whole numbers
 * exact 82.5% at 0.3, 83.3% at 0.35, 83.4% at 0.4, 83.0% at 0.45, 80.4% at 0.5, 78.2% at 0.55;
 * on 3,000, 83.1% at 0.4 and 82.5% at 0.45. With the v3 photos' reader, on 1,000 v3 test
 * photos: 80.4, 80.5, 81.0% at 0.35, 0.4, 0.45, within a few photos of each other: kept at 0.4.
 * (With the 4x4-pixel grid 0.45 was best: 79.8% of 500 v1 photos, 79.3% of 1,000 v2 photos.)
 */
export const DEFAULT_CENTRE_THRESHOLD = 0.4;
/** The threshold of training's val_acc (task.ts), fixed so that a run's history means the same whatever reading uses. */
export const TRAINING_CENTRE_THRESHOLD = 0.3;
const OVERLAP_DROP = 0.5;

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** Detections in one photo's output (GRID_HEIGHT x GRID_WIDTH x HEAD_CHANNELS floats at `offset`), best first. */
export function findDigits(out: Float32Array, offset = 0, threshold = DEFAULT_CENTRE_THRESHOLD): Detection[] {
  const logitAt = (x: number, y: number) => out[offset + (y * GRID_WIDTH + x) * HEAD_CHANNELS]!;
  const found: Detection[] = [];
  for (let y = 0; y < GRID_HEIGHT; y++) {
    for (let x = 0; x < GRID_WIDTH; x++) {
      const z = logitAt(x, y);
      const score = sigmoid(z);
      if (score < threshold) continue;
      let isPeak = true;
      for (let dy = -1; dy <= 1 && isPeak; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          const ny = y + dy;
          if ((dx || dy) && nx >= 0 && ny >= 0 && nx < GRID_WIDTH && ny < GRID_HEIGHT) {
            const nz = logitAt(nx, ny);
            // ties go to the first cell in reading order, so a flat top gives one peak
            if (nz > z || (nz === z && (dy < 0 || (dy === 0 && dx < 0)))) {
              isPeak = false;
              break;
            }
          }
        }
      }
      if (!isPeak) continue;
      const c = offset + (y * GRID_WIDTH + x) * HEAD_CHANNELS;
      const cx = (x + out[c + 1]!) * DETECTOR_STRIDE;
      const cy = (y + out[c + 2]!) * DETECTOR_STRIDE;
      const w = Math.exp(Math.min(out[c + 3]!, 6)) * DETECTOR_STRIDE;
      const h = Math.exp(Math.min(out[c + 4]!, 6)) * DETECTOR_STRIDE;
      found.push({ score, box: [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], cell: { x, y } });
    }
  }
  found.sort((a, b) => b.score - a.score);
  const kept: Detection[] = [];
  for (const d of found) if (kept.every((k) => overlap(k.box, d.box) <= OVERLAP_DROP)) kept.push(d);
  return kept;
}

/** Intersection over the smaller box's area (a digit inside another's box is a duplicate). */
function overlap(a: Box, b: Box): number {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (w <= 0 || h <= 0) return 0;
  const area = (r: Box) => Math.max(1e-9, (r[2] - r[0]) * (r[3] - r[1]));
  return (w * h) / Math.min(area(a), area(b));
}

/** Detections in reading order: left to right by box centre. */
export function readingOrder(ds: Detection[]): Detection[] {
  return [...ds].sort((a, b) => a.box[0] + a.box[2] - (b.box[0] + b.box[2]));
}

/**
 * Whether a photo's detections find exactly its digits: as many as it has, and each true
 * centre cell (in reading order: targets.ts trueCentres) matched one-to-one, in reading order,
 * by a detection at most one cell away. The training loop's accuracy for the reader (val_acc),
 * before any digit is classified.
 */
export function detectionsMatch(ds: Detection[], centres: Array<{ x: number; y: number }>): boolean {
  if (ds.length !== centres.length) return false;
  const found = readingOrder(ds);
  return centres.every((t, i) => Math.abs(found[i]!.cell.x - t.x) <= 1 && Math.abs(found[i]!.cell.y - t.y) <= 1);
}

/**
 * How far a digit of the number may sit from the surest digit's row, in that digit's heights;
 * `gap`: the widest space between two neighbouring digits' boxes of one number, in the surest
 * digit's heights: twice the widest in the synthetic train photos (0.24 of the tallest digit's
 * height, over 35,822 gaps), so a detector
 * that learnt only those finds what stands beyond it apart (not tuned on the real photos).
 */
const ROW_TOLERANCE = { centreY: 0.5, heightRatio: 2, gap: 0.5 };

/**
 * The detections that form one number: a house number is a row of digits of about one size,
 * standing together. Measured against the surest detection, one more than twice or less than
 * half its height, or whose centre sits more than half its height above or below its centre,
 * is clutter (a bolt, a letter) and is dropped; the rest split into groups wherever the space
 * between neighbours is wider than `gap` of its height (a door's edge, a pole, a second sign),
 * and the number is the group whose scores sum highest: its digits together, not the one surest
 * digit, say where the number is. Returns them in reading order.
 */
export function numberRow(ds: Detection[]): Detection[] {
  if (ds.length < 2) return readingOrder(ds);
  const anchor = ds.reduce((a, d) => (d.score > a.score ? d : a));
  const h = Math.max(1e-6, anchor.box[3] - anchor.box[1]);
  const cy = (anchor.box[1] + anchor.box[3]) / 2;
  const kept = readingOrder(
    ds.filter((d) => {
      const ratio = (d.box[3] - d.box[1]) / h;
      return Math.abs((d.box[1] + d.box[3]) / 2 - cy) <= ROW_TOLERANCE.centreY * h && ratio <= ROW_TOLERANCE.heightRatio && ratio >= 1 / ROW_TOLERANCE.heightRatio;
    }),
  );
  let best: Detection[] = [];
  let bestSum = -1;
  for (let first = 0; first < kept.length; ) {
    let last = first;
    while (last < kept.length - 1 && kept[last + 1]!.box[0] - kept[last]!.box[2] <= ROW_TOLERANCE.gap * h) last++;
    const group = kept.slice(first, last + 1);
    const sum = group.reduce((a, d) => a + d.score, 0);
    if (sum > bestSum) (best = group), (bestSum = sum);
    first = last + 1;
  }
  return best;
}
