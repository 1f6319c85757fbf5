/**
 * Training targets and loss of the detector (detector.ts), after CenterNet (Zhou et al. 2019):
 * a Gaussian bump around each digit's centre cell (here; the loss is in loss.ts). No tfjs here:
 * batches are assembled without it.
 *
 * Target per cell, TARGET_CHANNELS floats (the batch's ys: GRID_HEIGHT x GRID_WIDTH x 6 per photo):
 *   0  negative weight (1 - bump)^4: how much a centre predicted here is penalised (0 at a centre)
 *   1  1 at a digit's centre cell, else 0
 *   2, 3  the centre's offset within that cell (x, y), in cells
 *   4, 5  log of the box's width and height, in cells
 */
import { DETECTOR_STRIDE, GRID_HEIGHT, GRID_WIDTH, HEAD_CHANNELS, LABEL_BYTES, readLabelRecord } from './format.js';

export const TARGET_CHANNELS = 6;
export const TARGET_LENGTH = GRID_HEIGHT * GRID_WIDTH * TARGET_CHANNELS;
/** Box sides below this many cells are taken as this (a log of ~0 would dominate the L1). */
const MIN_SIDE_CELLS = 0.25;
/** The bump's spread: sigma = side / 6 in each direction, as CenterNet's Gaussian radius roughly gives; at least half a cell. */
const SIGMA_PER_SIDE = 1 / 6;
const MIN_SIGMA = 0.5;

/** Writes one photo's target (its label record at labels[index * LABEL_BYTES]) to out[offset..offset+TARGET_LENGTH). */
export function encodeTarget(labels: Uint8Array, index: number, out: Float32Array, offset: number): void {
  const boxes = readLabelRecord(labels, index * LABEL_BYTES);
  const bump = new Float32Array(GRID_HEIGHT * GRID_WIDTH);
  for (let k = 0; k < TARGET_LENGTH; k++) out[offset + k] = 0;
  for (const [l, t, r, b] of boxes) {
    const gx = (l + r) / 2 / DETECTOR_STRIDE;
    const gy = (t + b) / 2 / DETECTOR_STRIDE;
    const w = Math.max(MIN_SIDE_CELLS, (r - l) / DETECTOR_STRIDE);
    const h = Math.max(MIN_SIDE_CELLS, (b - t) / DETECTOR_STRIDE);
    const ix = Math.min(GRID_WIDTH - 1, Math.max(0, Math.floor(gx)));
    const iy = Math.min(GRID_HEIGHT - 1, Math.max(0, Math.floor(gy)));
    const sx = Math.max(MIN_SIGMA, w * SIGMA_PER_SIDE);
    const sy = Math.max(MIN_SIGMA, h * SIGMA_PER_SIDE);
    // the bump's cells: within 4 sigma, beyond which it is below 4e-4 of its peak (exp(-8))
    const x0 = Math.max(0, Math.floor(ix - 4 * sx));
    const x1 = Math.min(GRID_WIDTH - 1, Math.ceil(ix + 4 * sx));
    const y0 = Math.max(0, Math.floor(iy - 4 * sy));
    const y1 = Math.min(GRID_HEIGHT - 1, Math.ceil(iy + 4 * sy));
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const v = Math.exp(-((x - ix) ** 2) / (2 * sx * sx) - (y - iy) ** 2 / (2 * sy * sy));
        if (v > bump[y * GRID_WIDTH + x]!) bump[y * GRID_WIDTH + x] = v;
      }
    }
    const c = offset + (iy * GRID_WIDTH + ix) * TARGET_CHANNELS;
    out[c + 1] = 1;
    out[c + 2] = gx - ix;
    out[c + 3] = gy - iy;
    out[c + 4] = Math.log(w);
    out[c + 5] = Math.log(h);
  }
  for (let k = 0; k < bump.length; k++) out[offset + k * TARGET_CHANNELS] = (1 - bump[k]!) ** 4;
}

/** The detector's output size per photo. */
export const OUTPUT_LENGTH = GRID_HEIGHT * GRID_WIDTH * HEAD_CHANNELS;

/** The centre cells of one photo's target (at `offset`), in reading order (by centre x). */
export function trueCentres(target: Float32Array, offset = 0): Array<{ x: number; y: number }> {
  const found: Array<{ x: number; y: number; cx: number }> = [];
  for (let y = 0; y < GRID_HEIGHT; y++) {
    for (let x = 0; x < GRID_WIDTH; x++) {
      const c = offset + (y * GRID_WIDTH + x) * TARGET_CHANNELS;
      if (target[c + 1] === 1) found.push({ x, y, cx: x + target[c + 2]! });
    }
  }
  return found.sort((a, b) => a.cx - b.cx).map(({ x, y }) => ({ x, y }));
}
