/**
 * `svhn tune --pruner asha|median|none`: after each epoch of a trial, whether to stop it there.
 * Values are validation accuracies (higher is better); steps are epochs, 1-based.
 */
import { SvhnError } from '../errors.js';
import type { Pruner, TrialRecord } from './types.js';

export const PRUNER_NAMES = ['asha', 'median', 'none'] as const satisfies ReadonlyArray<Pruner['name']>;

export interface PrunerOptions {
  /** median: no pruning until this many trials are complete (Optuna's n_startup_trials). */
  nStartupTrials: number;
  /** median: no pruning at or before this epoch (the first epoch's accuracy, under warm-up, says little). */
  nWarmupSteps: number;
  /** asha: the first rung's epoch (Optuna's min_resource). */
  minResource: number;
  /** asha: rungs at minResource * rf^k; a trial passes a rung in the top 1/rf there (Optuna's reduction_factor). */
  reductionFactor: number;
}

export const PRUNER_DEFAULTS: PrunerOptions = { nStartupTrials: 5, nWarmupSteps: 1, minResource: 1, reductionFactor: 3 };

export function makePruner(name: Pruner['name'], opts: Partial<PrunerOptions> = {}): Pruner {
  const o = { ...PRUNER_DEFAULTS, ...opts };
  if (!(Number.isSafeInteger(o.reductionFactor) && o.reductionFactor >= 2 && Number.isSafeInteger(o.minResource) && o.minResource >= 1)) {
    throw new SvhnError('BAD_FLAG', `--pruner ${name}: expected a whole reduction factor of at least 2 and a minimum resource of at least 1 epoch, got ${o.reductionFactor} and ${o.minResource}`);
  }
  switch (name) {
    case 'median':
      return { name, shouldPrune: (trial, step, trials) => medianPrunes(trial, step, trials, o) };
    case 'asha':
      return { name, shouldPrune: (trial, step, trials) => ashaPrunes(trial, step, trials, o) };
    case 'none':
      return { name, shouldPrune: () => false };
    default:
      throw new SvhnError('BAD_FLAG', `--pruner: expected one of ${PRUNER_NAMES.join(', ')}, got '${String(name)}'`);
  }
}

/** The trial's value at exactly `step`, if it reported one. */
function valueAt(t: TrialRecord, step: number): number | undefined {
  return t.intermediates.find(([s]) => s === step)?.[1];
}

/** The q-th percentile (0..100) of values, interpolated linearly between order statistics (numpy's default). */
export function percentile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const pos = ((sorted.length - 1) * q) / 100;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/**
 * Optuna's MedianPruner: once nStartupTrials trials are complete and the trial is past its
 * warm-up epochs, prune when its best value so far is below the median of the complete trials'
 * values at this same epoch. Only complete trials set the bar, as in Optuna: pruned ones were
 * stopped for being worse, and counting them would lower it.
 */
function medianPrunes(trial: TrialRecord, step: number, trials: readonly TrialRecord[], o: PrunerOptions): boolean {
  const complete = trials.filter((t) => t.state === 'complete' && t.number !== trial.number);
  if (complete.length === 0 || complete.length < o.nStartupTrials) return false;
  // Optuna's steps start at 0 and prune from step n_warmup_steps on; ours are epochs from 1,
  // so the same count of warm-up steps is epochs 1..nWarmupSteps.
  if (step <= o.nWarmupSteps) return false;
  const sofar = trial.intermediates.filter(([s]) => s <= step).map(([, v]) => v);
  if (sofar.length === 0) return false;
  if (sofar.some(Number.isNaN)) return true; // a NaN accuracy: the run has diverged
  const best = Math.max(...sofar);
  const others = complete.map((t) => valueAt(t, step)).filter((v): v is number => v !== undefined && !Number.isNaN(v));
  if (others.length === 0) return false;
  return best < percentile(others, 50);
}

/**
 * Asynchronous successive halving (Li et al. 2020, ASHA) as an early-stopping rule, the way
 * Optuna's SuccessiveHalvingPruner applies it: rungs at minResource * rf^k epochs (1, 3, 9, 27
 * by default). At a rung the trial continues when its value there is among the top
 * floor(n / rf) of the n values recorded at that rung by any trial, itself included; ties pass.
 * Judged only at the epoch that reaches a rung: a rung passed is not judged again as later
 * trials arrive.
 *
 * With fewer than rf values at the rung, floor(n / rf) is 0 and ASHA would promote nobody yet;
 * a trial cannot wait here, so it continues (as Ray Tune's ASHAScheduler does). Optuna instead
 * continues only the best of them, which stops the second trial of a study whenever the first
 * was better at epoch 1, before anything is known about the space.
 */
function ashaPrunes(trial: TrialRecord, step: number, trials: readonly TrialRecord[], o: PrunerOptions): boolean {
  if (!isRung(step, o)) return false;
  const value = valueAt(trial, step);
  if (value === undefined) return false;
  if (Number.isNaN(value)) return true;
  const others = trials.filter((t) => t.number !== trial.number).map((t) => valueAt(t, step)).filter((v): v is number => v !== undefined && !Number.isNaN(v));
  const recorded = [...others, value].sort((a, b) => b - a);
  const promoted = Math.floor(recorded.length / o.reductionFactor);
  if (promoted === 0) return false;
  return value < recorded[promoted - 1]!;
}

/** Whether `step` is minResource * rf^k for some k >= 0. */
function isRung(step: number, o: PrunerOptions): boolean {
  for (let rung = o.minResource; rung <= step; rung *= o.reductionFactor) {
    if (rung === step) return true;
  }
  return false;
}
