/**
 * Stratified index selection: the train/validation split and the --limit/--val-limit
 * downsampling. Every class keeps its share of the whole (the notebook used sklearn's
 * train_test_split(stratify=y, random_state=42)); which images go where is drawn from a
 * seeded Rng, so a seed reproduces the split exactly.
 *
 * Returned indices are sorted ascending: the cache keeps the source file's order (SVHN's
 * files are not sorted by class) and training shuffles per epoch anyway.
 */
import { NUM_CLASSES } from '../../config.js';
import { SvhnError } from '../../errors.js';
import { Rng } from '../../util/rng.js';

/** Indices of each class, in ascending order. Labels must be digits 0..9. */
function indicesByClass(labels: Uint8Array): Uint32Array[] {
  const counts = new Array<number>(NUM_CLASSES).fill(0);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    if (y >= NUM_CLASSES) throw new SvhnError('BAD_INPUT', `label at index ${i}: expected a digit 0..${NUM_CLASSES - 1}, got ${y}`);
    counts[y]!++;
  }
  const byClass = counts.map((c) => new Uint32Array(c));
  const fill = new Array<number>(NUM_CLASSES).fill(0);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    byClass[y]![fill[y]!++] = i;
  }
  return byClass;
}

/**
 * Splits `total` items between classes in proportion to their sizes (largest remainder:
 * floors first, then the leftover units go to the largest fractional parts, ties to the
 * lower class), so the per-class numbers add up to exactly `total`.
 */
function allocate(classSizes: number[], total: number): number[] {
  const n = classSizes.reduce((a, b) => a + b, 0);
  if (n === 0) return classSizes.map(() => 0);
  const exact = classSizes.map((c) => (c * total) / n);
  const alloc = exact.map((x) => Math.floor(x));
  let left = total - alloc.reduce((a, b) => a + b, 0);
  const order = exact
    .map((x, k) => ({ k, frac: x - Math.floor(x) }))
    .sort((a, b) => b.frac - a.frac || a.k - b.k);
  for (const { k } of order) {
    if (left <= 0) break;
    if (alloc[k]! < classSizes[k]!) {
      alloc[k]!++;
      left--;
    }
  }
  return alloc;
}

/** Draws `take[k]` indices from each class at random; returns {chosen, rest}, both sorted. */
function drawPerClass(byClass: Uint32Array[], take: number[], rng: Rng): { chosen: Uint32Array; rest: Uint32Array } {
  const total = byClass.reduce((a, c) => a + c.length, 0);
  const nChosen = take.reduce((a, b) => a + b, 0);
  const chosen = new Uint32Array(nChosen);
  const rest = new Uint32Array(total - nChosen);
  let ci = 0;
  let ri = 0;
  byClass.forEach((idx, k) => {
    const shuffled = rng.shuffle(Uint32Array.from(idx));
    const t = take[k]!;
    chosen.set(shuffled.subarray(0, t), ci);
    rest.set(shuffled.subarray(t), ri);
    ci += t;
    ri += shuffled.length - t;
  });
  return { chosen: chosen.sort(), rest: rest.sort() };
}

/**
 * Stratified train/validation split of `labels` (digits 0..9). The validation set gets
 * round(N * valFraction) indices, shared between classes in proportion to their counts.
 */
export function splitStratified(labels: Uint8Array, opts: { valFraction: number; seed: number }): { train: Uint32Array; val: Uint32Array } {
  const { valFraction, seed } = opts;
  if (!(valFraction > 0 && valFraction < 1)) {
    throw new SvhnError('BAD_FLAG', `--val-fraction: expected a number between 0 and 1 (exclusive), got ${valFraction}`);
  }
  const byClass = indicesByClass(labels);
  const nVal = Math.round(labels.length * valFraction);
  const take = allocate(byClass.map((c) => c.length), nVal);
  const { chosen, rest } = drawPerClass(byClass, take, new Rng(seed));
  return { train: rest, val: chosen };
}

/**
 * A stratified random sample of `n` indices (all of them, in order, when n >= labels.length).
 * Used for --limit / --val-limit: the notebook kept 10,000 / 2,000 images for prototyping.
 */
export function sampleStratified(labels: Uint8Array, n: number, seed: number): Uint32Array {
  if (!Number.isSafeInteger(n) || n <= 0) throw new SvhnError('BAD_FLAG', `sample size: expected a positive integer, got ${n}`);
  if (n >= labels.length) {
    indicesByClass(labels); // still validates the labels
    return Uint32Array.from({ length: labels.length }, (_, i) => i);
  }
  const byClass = indicesByClass(labels);
  const take = allocate(byClass.map((c) => c.length), n);
  return drawPerClass(byClass, take, new Rng(seed)).chosen;
}

/** Histogram of digits 0..9, added into `into` when given (for chunked reads). */
export function classCounts(labels: Uint8Array, into: number[] = new Array<number>(NUM_CLASSES).fill(0)): number[] {
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    if (y >= NUM_CLASSES) throw new SvhnError('BAD_INPUT', `label at index ${i}: expected a digit 0..${NUM_CLASSES - 1}, got ${y}`);
    into[y]!++;
  }
  return into;
}
