/**
 * The Tree-structured Parzen Estimator (Bergstra et al. 2011) as Optuna 3.1's TPESampler runs it
 * with its defaults: univariate (each parameter on its own, as hyperopt's):
 *
 * 1. The first n_startup_trials (10) finished trials are random search.
 * 2. Then the finished trials split into "good" and "bad": the best gamma(n) = min(ceil(n/10), 25)
 *    complete trials by value; if fewer are complete, pruned ones fill up the good set, those
 *    that got furthest first and among them the better last value (Optuna's ranking).
 * 3. Per parameter, Parzen estimators l(x) of the good trials' values and g(x) of the bad ones'
 *    (parzen.ts); n_ei_candidates (24) values drawn from l; the one maximising l(x)/g(x), which
 *    Bergstra et al. show maximises expected improvement, is proposed (l and g scored as 3.1
 *    does: parzen.ts' logScore).
 *
 * Failed and running trials are ignored (Optuna's constant_liar=False, the default until 5.0):
 * a running trial has no value yet, a failed one never will.
 */
import type { Params, Sampler, Space, TrialRecord, ParamSpec, ParamValue } from '../types.js';
import { buildParzen } from './parzen.js';
import { drawParams, trialRng } from './random.js';

export interface TpeOptions {
  nStartupTrials: number; // finished trials drawn at random before TPE takes over
  nEiCandidates: number; // draws from l(x) scored by l(x)/g(x) per parameter
}

/** Optuna's defaults. */
export const TPE_DEFAULTS: TpeOptions = { nStartupTrials: 10, nEiCandidates: 24 };

/** Optuna's default_gamma: how many of n finished trials are "good". */
export function gamma(n: number): number {
  return Math.min(Math.ceil(0.1 * n), 25);
}

/** A pruned trial's rank key, ascending is better: the furthest step first, then the higher last value; none reported: last. */
function prunedRank(t: TrialRecord): [number, number] {
  const last = t.intermediates[t.intermediates.length - 1];
  if (!last) return [1, 0];
  const [step, value] = last;
  return [-step, Number.isNaN(value) ? Infinity : -value];
}

/** Finished trials, good (the best `nGood`) and bad, each in trial-number order (the order default_weights ages by). */
export function splitTrials(trials: readonly TrialRecord[], nGood: number): { good: TrialRecord[]; bad: TrialRecord[] } {
  const complete = trials.filter((t) => t.state === 'complete' && typeof t.value === 'number' && !Number.isNaN(t.value));
  const pruned = trials.filter((t) => t.state === 'pruned');
  const byValue = [...complete].sort((a, b) => b.value! - a.value! || a.number - b.number);
  const byProgress = [...pruned].sort((a, b) => {
    const [sa, va] = prunedRank(a);
    const [sb, vb] = prunedRank(b);
    return sa - sb || (va === vb ? 0 : va < vb ? -1 : 1) || a.number - b.number;
  });
  const goodComplete = byValue.slice(0, nGood);
  const goodPruned = byProgress.slice(0, Math.max(0, nGood - goodComplete.length));
  const good = new Set([...goodComplete, ...goodPruned]);
  const byNumber = (a: TrialRecord, b: TrialRecord) => a.number - b.number;
  return {
    good: [...good].sort(byNumber),
    bad: [...complete, ...pruned].filter((t) => !good.has(t)).sort(byNumber),
  };
}

/** A recorded value the estimator can use: one of the choices, or a number inside the range. */
function inSpace(spec: ParamSpec, v: ParamValue | undefined): v is ParamValue {
  if (v === undefined) return false;
  if (spec.kind === 'choice') return spec.choices.includes(v);
  return typeof v === 'number' && Number.isFinite(v) && v >= spec.low && v <= spec.high;
}

export function tpeSampler(opts: Partial<TpeOptions> = {}): Sampler {
  const o = { ...TPE_DEFAULTS, ...opts };
  return {
    name: 'tpe',
    propose(space: Space, trials: readonly TrialRecord[], number: number, seed: number): Params {
      const rng = trialRng(seed, number);
      const finished = trials.filter((t) => (t.state === 'complete' && t.value !== null) || t.state === 'pruned');
      if (finished.length < o.nStartupTrials) return drawParams(space, rng);
      const { good, bad } = splitTrials(finished, gamma(finished.length));
      const params: Params = {};
      for (const spec of space) {
        const below = good.map((t) => t.params[spec.name]).filter((v) => inSpace(spec, v));
        const above = bad.map((t) => t.params[spec.name]).filter((v) => inSpace(spec, v));
        const l = buildParzen(spec, below);
        const g = buildParzen(spec, above);
        let best: ParamValue | undefined;
        let bestScore = -Infinity;
        for (let i = 0; i < o.nEiCandidates; i++) {
          const x = l.sample(rng);
          const score = l.logScore(x) - g.logScore(x);
          if (best === undefined || score > bestScore) {
            best = x;
            bestScore = score;
          }
        }
        params[spec.name] = best!;
      }
      return params;
    },
  };
}
