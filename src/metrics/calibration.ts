/**
 * Calibration of a classifier's confidences (Guo et al. 2017, "On Calibration of Modern
 * Neural Networks"): how far the top-1 probability is from the accuracy it promises, and
 * temperature scaling, the one-parameter fix fitted on held-out data.
 *
 *   reliability bins   M = 15 equal-width bins of the top-1 confidence, B_m = ((m-1)/M, m/M]
 *                      (the first also takes 0): count, mean confidence, accuracy per bin
 *   ECE                sum over bins of |B_m| / n * |acc(B_m) - conf(B_m)|
 *   NLL                mean -log q(true class)
 *   temperature        the T > 0 minimising the NLL of softmax(z / T) on the validation set
 *
 * svhn's models end in a softmax, so what they give is p = softmax(logits). Temperature is
 * applied to log p: softmax(log p / T) = softmax(logits / T - logsumexp(logits) / T) =
 * softmax(logits / T), because softmax is shift-invariant (the subtracted constant is the
 * same for every class). So log-probabilities stand in for the logits exactly, and the models
 * need no second head. Dividing by T > 0 keeps the order of the classes: the predicted digit
 * never changes, only its confidence.
 *
 * Plain arrays in float64, no tensors: these run over a split's [n, 10] probabilities once.
 */

/** Bins of the reliability diagram and the ECE (Guo et al.'s M = 15). */
export const CALIBRATION_BINS = 15;

/**
 * Probabilities are floored here before the log, so a float32 softmax that underflowed to 0
 * gives a large finite negative score instead of -Infinity (the NLL of such an image stays
 * finite). models/calibration.ts applies the same floor.
 */
export const PROB_FLOOR = 1e-12;

/** Bracket of the temperature search, log-spaced: T from 0.05 (sharpen 20x) to 20 (flatten 20x). */
export const TEMPERATURE_RANGE = [0.05, 20] as const;

export interface ReliabilityBin {
  lower: number; // confidence range (lower, upper]; the first bin also takes 0
  upper: number;
  count: number;
  /** Mean top-1 confidence of the bin's images (0 when empty). */
  confidence: number;
  /** Fraction of the bin's images predicted right (0 when empty). */
  accuracy: number;
}

export interface CalibrationSummary {
  ece: number;
  bins: ReliabilityBin[];
}

/**
 * The bin of a confidence in [0, 1]: the number of inner edges m/M below it, so a confidence
 * exactly on an edge falls in the lower bin, as numpy.searchsorted(edges[1:-1], c) (side
 * 'left') and scikit-learn's calibration_curve put it. Edges are m * (1/M), numpy.linspace's.
 */
function binOf(c: number, edges: number[]): number {
  let b = 0;
  while (b < edges.length - 2 && edges[b + 1]! < c) b++;
  return b;
}

function binEdges(nBins: number): number[] {
  const step = 1 / nBins;
  return Array.from({ length: nBins + 1 }, (_, m) => (m === nBins ? 1 : m * step));
}

/**
 * Reliability bins of top-1 confidences and whether each top-1 prediction was right, and the
 * ECE they give (weighted by bin counts: an empty bin counts for nothing).
 */
export function calibrationSummary(confidence: ArrayLike<number>, correct: ArrayLike<number | boolean>, nBins = CALIBRATION_BINS): CalibrationSummary {
  const n = confidence.length;
  if (correct.length !== n) throw new Error(`calibrationSummary: ${n} confidences but ${correct.length} outcomes`);
  const edges = binEdges(nBins);
  const count = new Array<number>(nBins).fill(0);
  const confSum = new Array<number>(nBins).fill(0);
  const rightSum = new Array<number>(nBins).fill(0);
  for (let i = 0; i < n; i++) {
    const c = confidence[i]!;
    const b = binOf(c, edges);
    count[b]!++;
    confSum[b]! += c;
    if (correct[i]) rightSum[b]!++;
  }
  const bins = count.map((k, b) => ({
    lower: edges[b]!,
    upper: edges[b + 1]!,
    count: k,
    confidence: k ? confSum[b]! / k : 0,
    accuracy: k ? rightSum[b]! / k : 0,
  }));
  let ece = 0;
  for (const bin of bins) if (bin.count) ece += (bin.count / n) * Math.abs(bin.accuracy - bin.confidence);
  return { ece: n ? ece : 0, bins };
}

/** Top-1 confidence and rightness of each row of [n, classes] probabilities (ties: the lower class, like argmax). */
export function topOne(probs: ArrayLike<number>, labels: ArrayLike<number>, classes: number): { confidence: Float64Array; correct: Uint8Array } {
  const n = labels.length;
  const confidence = new Float64Array(n);
  const correct = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (probs[i * classes + c]! > probs[i * classes + best]!) best = c;
    confidence[i] = probs[i * classes + best]!;
    correct[i] = best === labels[i] ? 1 : 0;
  }
  return { confidence, correct };
}

export interface ScoreOptions {
  classes: number;
  /** What the scores are: a model's softmax output (default) or its logits. */
  from?: 'probabilities' | 'logits';
}

/** Log-probabilities (floored) or the logits themselves, in float64: the z of softmax(z / T). */
function scoresOf(values: ArrayLike<number>, from: 'probabilities' | 'logits'): Float64Array {
  return from === 'logits' ? Float64Array.from(values) : Float64Array.from(values, (p) => Math.log(Math.max(p, PROB_FLOOR)));
}

/** Mean NLL of softmax(z / T) over the rows, by a stable log-sum-exp. */
function temperedNll(z: Float64Array, labels: ArrayLike<number>, temperature: number, classes: number): number {
  const n = labels.length;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const row = i * classes;
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, z[row + c]! / temperature);
    let s = 0;
    for (let c = 0; c < classes; c++) s += Math.exp(z[row + c]! / temperature - max);
    sum += max + Math.log(s) - z[row + labels[i]!]! / temperature;
  }
  return n ? sum / n : 0;
}

/** Mean negative log-likelihood of the true class under softmax(z / T) (T = 1: the scores' own NLL). */
export function negativeLogLikelihood(values: ArrayLike<number>, labels: ArrayLike<number>, opts: ScoreOptions & { temperature?: number }): number {
  return temperedNll(scoresOf(values, opts.from ?? 'probabilities'), labels, opts.temperature ?? 1, opts.classes);
}

/** softmax(z / T) of each row, float64: the reference for what models/calibration.ts computes in float32. */
export function softmaxWithTemperature(values: ArrayLike<number>, temperature: number, opts: ScoreOptions): Float64Array {
  const z = scoresOf(values, opts.from ?? 'probabilities');
  const k = opts.classes;
  const out = new Float64Array(z.length);
  for (let row = 0; row < z.length; row += k) {
    let max = -Infinity;
    for (let c = 0; c < k; c++) max = Math.max(max, z[row + c]! / temperature);
    let s = 0;
    for (let c = 0; c < k; c++) s += (out[row + c] = Math.exp(z[row + c]! / temperature - max));
    for (let c = 0; c < k; c++) out[row + c]! /= s;
  }
  return out;
}

export interface TemperatureFit {
  temperature: number;
  nllBefore: number; // at T = 1
  nllAfter: number; // at the fitted T; never above nllBefore
}

/** Golden-section steps: the bracket, 6 units of log T wide, shrinks by 0.618 a step to ~1e-9. */
const GOLDEN_STEPS = 50;

/**
 * The temperature T > 0 minimising the mean NLL of softmax(z / T) over the rows (z: the
 * log-probabilities, or the logits), by golden-section search on log T over TEMPERATURE_RANGE.
 * The NLL is convex in 1 / T, so unimodal in log T: the search finds its minimum in the range
 * (or the range's end nearest to it). Deterministic: a fixed number of steps, no randomness.
 * When the minimum found is no better than T = 1 (already calibrated, or no data), T = 1.
 */
export function fitTemperature(values: ArrayLike<number>, labels: ArrayLike<number>, opts: ScoreOptions): TemperatureFit {
  const { classes } = opts;
  if (values.length !== labels.length * classes) throw new Error(`fitTemperature: expected ${labels.length} x ${classes} scores, got ${values.length}`);
  const z = scoresOf(values, opts.from ?? 'probabilities');
  const nllAt = (logT: number) => temperedNll(z, labels, Math.exp(logT), classes);
  const nllBefore = nllAt(0);
  if (labels.length === 0) return { temperature: 1, nllBefore, nllAfter: nllBefore };
  const ratio = (Math.sqrt(5) - 1) / 2;
  let a = Math.log(TEMPERATURE_RANGE[0]);
  let b = Math.log(TEMPERATURE_RANGE[1]);
  let x1 = b - ratio * (b - a);
  let x2 = a + ratio * (b - a);
  let f1 = nllAt(x1);
  let f2 = nllAt(x2);
  for (let step = 0; step < GOLDEN_STEPS; step++) {
    if (f1 <= f2) {
      b = x2;
      x2 = x1;
      f2 = f1;
      x1 = b - ratio * (b - a);
      f1 = nllAt(x1);
    } else {
      a = x1;
      x1 = x2;
      f1 = f2;
      x2 = a + ratio * (b - a);
      f2 = nllAt(x2);
    }
  }
  const logT = f1 <= f2 ? x1 : x2;
  const nllAfter = Math.min(f1, f2);
  if (!(nllAfter < nllBefore)) return { temperature: 1, nllBefore, nllAfter: nllBefore };
  return { temperature: Math.exp(logT), nllBefore, nllAfter };
}
