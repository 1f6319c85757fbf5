/**
 * Learning-rate schedules, as a pure function of the global step: a resumed run recomputes
 * the rate from the step count its checkpoint holds (Adam's `iterations`), so nothing else
 * needs saving and the rates repeat bit for bit.
 *
 *   constant   the peak rate every step (the notebook models' default, Keras' Adam)
 *   cosine     linear warm-up from peak/steps to the peak over `warmupEpochs`, then a
 *              half cosine down to 0 at the last step (Loshchilov & Hutter 2017, SGDR
 *              without restarts; Goyal et al. 2017 for the warm-up)
 *   onecycle   PyTorch's OneCycleLR with its defaults and cosine annealing (Smith & Topin
 *              2018): from peak/25 up to the peak over the first 30% of steps, then down to
 *              peak/25/1e4 at the last step. Momentum is not cycled (cycle_momentum=False).
 */
import type { LrSchedule } from '../config.js';

export interface ScheduleSpec {
  schedule: LrSchedule;
  /** The peak rate (--lr). */
  lr: number;
  /** cosine: epochs of linear warm-up (0: none). */
  warmupEpochs: number;
}

/** OneCycleLR's defaults (torch.optim.lr_scheduler.OneCycleLR). */
const ONECYCLE = { pctStart: 0.3, divFactor: 25, finalDivFactor: 1e4 } as const;

/**
 * The rate for 0-based `step` of a run of `totalSteps` steps, `stepsPerEpoch` a epoch.
 * Steps past the end (a run extended with more --epochs is a new schedule) keep the last rate.
 */
export function learningRateAt(spec: ScheduleSpec, step: number, totalSteps: number, stepsPerEpoch: number): number {
  const { lr } = spec;
  const last = Math.max(1, totalSteps) - 1;
  const t = Math.min(step, last);
  switch (spec.schedule) {
    case 'constant':
      return lr;
    case 'cosine': {
      const warmup = Math.min(Math.round(spec.warmupEpochs * stepsPerEpoch), last);
      if (t < warmup) return (lr * (t + 1)) / warmup;
      const span = last - warmup;
      return span > 0 ? lr * 0.5 * (1 + Math.cos((Math.PI * (t - warmup)) / span)) : lr;
    }
    case 'onecycle': {
      const initial = lr / ONECYCLE.divFactor;
      const final = initial / ONECYCLE.finalDivFactor;
      const peakStep = ONECYCLE.pctStart * totalSteps - 1; // PyTorch's phase boundary, a float
      if (t <= peakStep) return annealCos(initial, lr, peakStep > 0 ? t / peakStep : 1);
      return annealCos(lr, final, (t - peakStep) / (last - peakStep));
    }
  }
}

/** PyTorch's _annealing_cos: from `start` at pct 0 to `end` at pct 1 along a half cosine. */
function annealCos(start: number, end: number, pct: number): number {
  return end + ((start - end) / 2) * (Math.cos(Math.PI * pct) + 1);
}
