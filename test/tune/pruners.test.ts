/**
 * tune/pruners.ts: the median rule (Optuna's MedianPruner) and ASHA (successive halving with
 * rungs at 1, 3, 9 epochs), on hand-made studies whose right answer can be read off.
 */
import { describe, expect, it } from 'vitest';
import { SvhnError } from '../../src/errors.js';
import { makePruner, percentile } from '../../src/tune/pruners.js';
import type { TrialRecord, TrialState } from '../../src/tune/types.js';

/** A trial with validation accuracies `curve` at epochs 1, 2, ... */
function trial(number: number, curve: number[], state: TrialState = 'complete'): TrialRecord {
  return {
    number,
    state,
    params: {},
    value: state === 'complete' ? Math.max(...curve) : state === 'pruned' ? curve[curve.length - 1]! : null,
    intermediates: curve.map((v, i): [number, number] => [i + 1, v]),
  };
}

/** The running trial as the pruner sees it after `step` epochs, and the study with it. */
function at(t: TrialRecord, step: number): TrialRecord {
  return { ...t, state: 'running', value: null, intermediates: t.intermediates.filter(([s]) => s <= step) };
}

describe('makePruner', () => {
  it('refuses an unknown name and a reduction factor below 2', () => {
    expect(() => makePruner('hyperband' as never)).toThrow(new SvhnError('BAD_FLAG', "--pruner: expected one of asha, median, none, got 'hyperband'"));
    expect(() => makePruner('asha', { reductionFactor: 1 })).toThrow(SvhnError);
  });

  it('none never prunes', () => {
    const done = [1, 2, 3, 4, 5, 6].map((n) => trial(n, [0.9, 0.95, 0.97]));
    expect(makePruner('none').shouldPrune(at(trial(7, [0, 0, 0]), 3), 3, done)).toBe(false);
  });
});

describe('median pruner', () => {
  const median = makePruner('median');
  // Five complete trials: accuracies at epochs 1..4.
  const done = [
    trial(0, [0.5, 0.7, 0.8, 0.85]),
    trial(1, [0.6, 0.75, 0.82, 0.86]),
    trial(2, [0.55, 0.72, 0.81, 0.84]),
    trial(3, [0.4, 0.65, 0.78, 0.8]),
    trial(4, [0.58, 0.74, 0.83, 0.87]),
  ];

  it('prunes a clearly bad trial and keeps a good one', () => {
    const bad = trial(5, [0.2, 0.3, 0.35]);
    const good = trial(6, [0.6, 0.76, 0.84]);
    for (const step of [2, 3]) {
      expect(median.shouldPrune(at(bad, step), step, [...done, at(bad, step)])).toBe(true);
      expect(median.shouldPrune(at(good, step), step, [...done, at(good, step)])).toBe(false);
    }
  });

  it('compares the best value so far with the median at this epoch', () => {
    // Epoch 3's median of the complete trials is 0.81. A trial that reached 0.82 at epoch 2 and
    // dipped to 0.7 at 3 stays; one whose best is 0.8 goes.
    expect(percentile([0.8, 0.82, 0.81, 0.78, 0.83], 50)).toBeCloseTo(0.81, 12);
    const dipped = trial(5, [0.5, 0.82, 0.7]);
    expect(median.shouldPrune(at(dipped, 3), 3, done)).toBe(false);
    const below = trial(6, [0.5, 0.8, 0.8]);
    expect(median.shouldPrune(at(below, 3), 3, done)).toBe(true);
    // Even numbers of trials: the mean of the middle two, as numpy's percentile.
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
  });

  it('does not prune during its first epoch (warm-up) or before 5 trials are complete', () => {
    const bad = trial(5, [0.1, 0.1]);
    expect(median.shouldPrune(at(bad, 1), 1, done)).toBe(false); // epoch 1 is warm-up
    expect(median.shouldPrune(at(bad, 2), 2, done)).toBe(true);
    const four = done.slice(0, 4);
    expect(median.shouldPrune(at(bad, 2), 2, four)).toBe(false);
    // Pruned, running and failed trials are not complete: they do not end the start-up.
    const notComplete = [trial(10, [0.9, 0.9], 'pruned'), trial(11, [0.9, 0.9], 'running'), trial(12, [0.9], 'failed')];
    expect(median.shouldPrune(at(bad, 2), 2, [...four, ...notComplete])).toBe(false);
    expect(makePruner('median', { nStartupTrials: 2, nWarmupSteps: 0 }).shouldPrune(at(bad, 1), 1, done.slice(0, 2))).toBe(true);
  });

  it('does not prune at an epoch no complete trial reached', () => {
    const long = trial(5, [0.1, 0.1, 0.1, 0.1, 0.1]);
    expect(median.shouldPrune(at(long, 5), 5, done)).toBe(false);
  });

  it('prunes a diverged run (NaN accuracy)', () => {
    expect(median.shouldPrune(at(trial(5, [0.5, Number.NaN]), 2), 2, done)).toBe(true);
  });
});

describe('ASHA pruner', () => {
  const asha = makePruner('asha');

  /** A study of `n` earlier trials whose value at every epoch is v_i = (i + 1) / 100 (trial i better than i - 1), each `epochs` long. */
  const ladder = (n: number, epochs: number) => Array.from({ length: n }, (_, i) => trial(i, new Array<number>(epochs).fill((i + 1) / 100)));

  it('at rungs 1, 3 and 9 keeps the top third of the values recorded there, itself included', () => {
    for (const rung of [1, 3, 9]) {
      const earlier = ladder(8, rung); // values 0.01 .. 0.08; with the new one, 9 recorded: the top 3 pass
      const pass = trial(8, new Array<number>(rung).fill(0.06)); // top 3: 0.08, 0.07 and 0.06, tied with itself: passes
      const fail = trial(8, new Array<number>(rung).fill(0.055)); // 4th
      expect(asha.shouldPrune(at(pass, rung), rung, [...earlier, at(pass, rung)]), `rung ${rung}`).toBe(false);
      expect(asha.shouldPrune(at(fail, rung), rung, [...earlier, at(fail, rung)]), `rung ${rung}`).toBe(true);
    }
  });

  it('judges only at rungs: never at epochs 2, 4..8, 10', () => {
    const earlier = ladder(8, 10);
    const worst = trial(8, new Array<number>(10).fill(0));
    for (const step of [2, 4, 5, 6, 7, 8, 10]) expect(asha.shouldPrune(at(worst, step), step, earlier)).toBe(false);
    for (const step of [1, 3, 9]) expect(asha.shouldPrune(at(worst, step), step, earlier)).toBe(true);
  });

  it('judges a trial by its value at the rung, not its best', () => {
    const earlier = ladder(8, 3);
    const fading = trial(8, [0.5, 0.5, 0.01]);
    expect(asha.shouldPrune(at(fading, 3), 3, earlier)).toBe(true);
  });

  it('continues every trial while fewer than 3 values are recorded at the rung', () => {
    const first = trial(0, [0.9]);
    const second = trial(1, [0.1]);
    expect(asha.shouldPrune(at(first, 1), 1, [at(first, 1)])).toBe(false);
    expect(asha.shouldPrune(at(second, 1), 1, [first, at(second, 1)])).toBe(false);
    // The third is judged: with 3 recorded, only the best (floor(3/3) = 1) goes on.
    const third = trial(2, [0.5]);
    expect(asha.shouldPrune(at(third, 1), 1, [first, second, at(third, 1)])).toBe(true);
    expect(asha.shouldPrune(at(trial(2, [0.95]), 1), 1, [first, second])).toBe(false);
  });

  it('counts every trial that recorded a value at the rung, pruned and running ones too', () => {
    const others = [trial(0, [0.9], 'pruned'), trial(1, [0.8], 'running'), trial(2, [0.7, 0.7, 0.7], 'complete'), trial(3, [0.6], 'failed'), trial(4, [0.5], 'pruned')];
    // 6 values at rung 1: the top 2 (0.9, 0.8) pass.
    expect(asha.shouldPrune(at(trial(5, [0.85]), 1), 1, others)).toBe(false);
    expect(asha.shouldPrune(at(trial(5, [0.75]), 1), 1, others)).toBe(true);
  });
});
