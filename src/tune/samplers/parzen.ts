/**
 * One parameter's Parzen estimator for TPE: a mixture with one kernel per observed value plus a
 * prior kernel, as Optuna 3.1's _ParzenEstimator builds it (univariate, TPESampler's defaults;
 * Debian's python3-optuna, the reference test/tune/fixtures/optuna-parzen.py checks against):
 *
 * - numbers: truncated Gaussians in the parameter's (log-)space. The prior is a kernel at the
 *   middle of the range as wide as the range. A kernel's bandwidth is the larger gap to its
 *   sorted neighbours, the prior sorted among the observations and the range's ends counting as
 *   neighbours, except that the lowest and highest kernels look inwards only
 *   (consider_endpoints=False); then clipped to [(high - low) / min(100, n + 2), high - low]
 *   (the "magic clip"); the prior's is then set back to high - low. A stepped parameter (int,
 *   float with a step) is widened by half a step each side; a value stands for its step's cell.
 * - choices: each kernel puts 1 on its observed choice, plus prior_weight / (n + 1) on every
 *   choice (normalised); the prior kernel is uniform.
 * - kernel weights: default_weights(n) (1 each up to 25 observations; beyond, the oldest ramp
 *   down linearly from 1 to 1/n), then prior_weight = 1, normalised.
 *
 * TPE ranks candidates by logScore, Optuna 3.1's log_pdf. For a continuous parameter it weights
 * each kernel by its width as well as its weight: every kernel peaks at the same height, however
 * wide, instead of holding the same mass (3.1's truncnorm.logpdf leaves out the 1/sigma of the
 * scaling; Optuna fixed that in optuna/optuna#5110, late 2023). Against the normalised mixture,
 * wide kernels (the prior's above all) count for more and narrow ones in crowded stretches for
 * less; measured on Branin and Hartmann-6 (scripts/bench-tune-samplers.mjs), TPE finds better
 * points this way. A stepped parameter's score is its cell's mass, as in 3.1.
 */
import type { Rng } from '../../util/rng.js';
import type { ParamSpec, ParamValue } from '../types.js';
import { stepCount, stepOf, stepValue } from '../space.js';
import { logAddExp, logGaussMass, truncnormLogPdf, truncnormPpf } from './truncnorm.js';

const PRIOR_WEIGHT = 1;

/** A 1-D mixture to draw candidates from (l) and to score them with (l and g). */
export interface ParzenEstimator {
  /** A draw from the mixture. */
  sample(rng: Rng): ParamValue;
  /** log of the mixture's density at `value` (its mass, for a stepped value or a choice): what sample draws from. */
  logPdf(value: ParamValue): number;
  /** What TPE ranks candidates by: logPdf with each continuous kernel weighted by its width as well (Optuna 3.1's log_pdf). */
  logScore(value: ParamValue): number;
}

/** Optuna's default_weights: flat for the 25 newest observations, a linear ramp from 1/n below them. `n` observations, oldest first. */
export function defaultWeights(n: number): number[] {
  if (n < 25) return new Array<number>(n).fill(1);
  // numpy's linspace(1/n, 1, n - 25): start + i * step, the last exactly 1 (one point: just 1/n).
  const m = n - 25;
  const step = m > 1 ? (1 - 1 / n) / (m - 1) : 0;
  const ramp = Array.from({ length: m }, (_, i) => (m > 1 && i === m - 1 ? 1 : 1 / n + i * step));
  return [...ramp, ...new Array<number>(25).fill(1)];
}

/** Mixture weights: the observations' (oldest first), then the prior's, normalised; the prior alone when nothing was observed. */
function mixtureWeights(n: number): number[] {
  const w = n === 0 ? [1] : [...defaultWeights(n), PRIOR_WEIGHT];
  const sum = w.reduce((a, b) => a + b, 0);
  return w.map((v) => v / sum);
}

/** Index drawn with probability weights[i] (weights sum to 1). */
function pick(weights: readonly number[], rng: Rng): number {
  const u = rng.next();
  let acc = 0;
  for (let i = 0; i < weights.length; i++) {
    acc += weights[i]!;
    if (u < acc) return i;
  }
  return weights.length - 1;
}

/** log sum_k exp(terms[k]). */
function logSumExp(terms: readonly number[]): number {
  return terms.reduce((a, b) => logAddExp(a, b), -Infinity);
}

/** The estimator of `spec` from `observed` values (oldest first), each one of the spec's values. */
export function buildParzen(spec: ParamSpec, observed: readonly ParamValue[]): ParzenEstimator {
  return spec.kind === 'choice' ? choiceParzen(spec.choices, observed) : numericParzen(spec, observed as readonly number[]);
}

function choiceParzen(choices: readonly ParamValue[], observed: readonly ParamValue[]): ParzenEstimator {
  const n = observed.length;
  const weights = mixtureWeights(n);
  const k = choices.length;
  // rows[i][c]: kernel i's probability of choice c; the last row (the prior, or the only one) is uniform.
  const rows = observed.map((v) => {
    const row = new Array<number>(k).fill(PRIOR_WEIGHT / (n + 1));
    row[choices.indexOf(v)]! += 1;
    const sum = row.reduce((a, b) => a + b, 0);
    return row.map((p) => p / sum);
  });
  rows.push(new Array<number>(k).fill(1 / k));
  // The mixture's probability of each choice, in logs.
  const logProb = choices.map((_, c) => Math.log(rows.reduce((acc, row, i) => acc + weights[i]! * row[c]!, 0)));
  const logPdf = (value: ParamValue) => logProb[choices.indexOf(value)] ?? -Infinity;
  return {
    sample: (rng) => choices[pick(rows[pick(weights, rng)]!, rng)]!,
    logPdf,
    logScore: logPdf,
  };
}

function numericParzen(spec: Exclude<ParamSpec, { kind: 'choice' }>, observed: readonly number[]): ParzenEstimator {
  const log = spec.kind === 'log-float';
  const step = stepOf(spec);
  const toSpace = (v: number) => (log ? Math.log(v) : v);
  // The kernels live on [low, high] in (log-)space, widened by half a step for a stepped one.
  const low = toSpace(spec.low) - (step ?? 0) / 2;
  const high = toSpace(spec.high) + (step ?? 0) / 2;
  // The observations' kernels, then the prior's: at the middle, as wide as the range.
  const mus = [...observed.map(toSpace), (low + high) / 2];
  const sigmas = bandwidths(mus, low, high);
  sigmas[mus.length - 1] = high - low;
  const weights = mixtureWeights(observed.length);
  const logW = weights.map(Math.log);
  // The score's kernel weights: times the kernel's width for a continuous parameter (Optuna 3.1's).
  const logScoreW = step === undefined ? logW.map((lw, i) => lw + Math.log(sigmas[i]!)) : logW;
  const logMass = mus.map((mu, i) => logGaussMass((low - mu) / sigmas[i]!, (high - mu) / sigmas[i]!));

  /** log sum_i exp(logWeights[i]) * (kernel i's density at value, or its mass on value's step cell). */
  const logMixture = (value: ParamValue, logWeights: readonly number[]): number => {
    const x = toSpace(value as number);
    const terms = mus.map((mu, i) => {
      const sigma = sigmas[i]!;
      if (step === undefined) return logWeights[i]! + truncnormLogPdf(x, mu, sigma, low, high, logMass[i]!);
      return logWeights[i]! + logGaussMass((x - step / 2 - mu) / sigma, (x + step / 2 - mu) / sigma) - logMass[i]!;
    });
    return logSumExp(terms);
  };

  const fromSpace = (x: number): number => {
    if (log) return Math.min(spec.high, Math.max(spec.low, Math.exp(x)));
    if (step === undefined) return x;
    // Onto the step grid: the nearest value, kept inside [low, high].
    const n = stepCount(spec, step);
    const k = Math.min(n - 1, Math.max(0, Math.round((x - spec.low) / step)));
    return stepValue(spec, step, k);
  };

  return {
    sample(rng) {
      const i = pick(weights, rng);
      const mu = mus[i]!;
      const sigma = sigmas[i]!;
      const z = truncnormPpf(rng.next(), (low - mu) / sigma, (high - mu) / sigma);
      return fromSpace(mu + sigma * z);
    },
    logPdf: (value) => logMixture(value, logW),
    logScore: (value) => logMixture(value, logScoreW),
  };
}

/**
 * Each kernel's width, the prior's (last in `mus`) among them: the larger gap to its neighbours
 * in sorted order (the ends of [low, high] count as neighbours), the outermost two looking
 * inwards only when there are two or more kernels (Optuna's consider_endpoints=False), clipped
 * to [(high - low) / min(100, k + 1), high - low] for k kernels (consider_magic_clip).
 */
function bandwidths(mus: readonly number[], low: number, high: number): number[] {
  const k = mus.length;
  // Ties keep their order (an observation before the prior), as numpy's argsort does on up to 16.
  const order = mus.map((_, i) => i).sort((i, j) => mus[i]! - mus[j]! || i - j);
  const sorted = [low, ...order.map((i) => mus[i]!), high];
  const sortedSigmas = order.map((_, r) => Math.max(sorted[r + 1]! - sorted[r]!, sorted[r + 2]! - sorted[r + 1]!));
  if (k >= 2) {
    sortedSigmas[0] = sorted[2]! - sorted[1]!;
    sortedSigmas[k - 1] = sorted[k]! - sorted[k - 1]!;
  }
  const maxSigma = high - low;
  const minSigma = (high - low) / Math.min(100, k + 1);
  const sigmas = new Array<number>(k);
  order.forEach((i, r) => {
    sigmas[i] = Math.min(maxSigma, Math.max(minSigma, sortedSigmas[r]!));
  });
  return sigmas;
}
