/**
 * Grid search: every combination of the parameters' values, visited in a seeded shuffled order
 * (as Optuna's GridSampler shuffles its grid), so that a study stopped after a few trials has
 * spread them over the grid rather than walked along its first axis. A trial takes the first
 * point in that order that no trial of the study has (running and failed ones count, as in
 * Optuna: a failed point is not tried again); the store makes claims one at a time, so two
 * workers never take the same point. Once every point is taken, it repeats a seeded pick.
 */
import { SvhnError } from '../../errors.js';
import { Rng } from '../../util/rng.js';
import { mixSeeds, stepCount, stepOf, stepValue } from '../space.js';
import type { ParamSpec, ParamValue, Params, Sampler, Space, TrialRecord } from '../types.js';
import { trialRng } from './random.js';

/** Beyond this many points a grid is refused: a study never runs that many trials, and the order is a shuffled array of them. */
export const MAX_GRID_POINTS = 100_000;
/** An int without a step is gridded at step 1 when it has at most this many values. */
export const MAX_INT_VALUES = 100;

const GRID_SALT = 0x6e1d;

/** A parameter's values on the grid, or why it has none. */
function gridValues(spec: ParamSpec): ParamValue[] | string {
  if (spec.kind === 'choice') return spec.choices;
  if (spec.kind === 'log-float') return 'a log-float has no step; use a choice of values';
  const step = stepOf(spec);
  if (step === undefined) return 'a float needs a step to be gridded';
  const n = stepCount(spec, step);
  if (spec.kind === 'int' && spec.step === undefined && n > MAX_INT_VALUES) return `an int of ${n} values needs a step (at most ${MAX_INT_VALUES} without one)`;
  return Array.from({ length: n }, (_, k) => stepValue(spec, step, k));
}

/** Refuses a space the grid sampler cannot enumerate: a float or log-float without a step, a large int without one, too many points. */
export function checkGridSpace(space: Space): void {
  for (const spec of space) {
    const values = gridValues(spec);
    if (typeof values === 'string') {
      throw new SvhnError('BAD_FLAG', `--sampler grid: '${spec.name}': ${values}, or use --sampler tpe or random`);
    }
  }
  const size = gridSize(space);
  if (size > MAX_GRID_POINTS) {
    throw new SvhnError('BAD_FLAG', `--sampler grid: the space has ${size.toLocaleString('en-US')} points, at most ${MAX_GRID_POINTS.toLocaleString('en-US')}; use fewer values, or --sampler tpe`);
  }
}

/** The number of points of a griddable space (product of each parameter's value count); checkGridSpace first. */
export function gridSize(space: Space): number {
  return space.reduce((n, spec) => {
    const values = gridValues(spec);
    return n * (typeof values === 'string' ? Infinity : values.length);
  }, 1);
}

/** Point i of the grid in mixed radix, the last parameter fastest. */
function gridPoint(axes: ReadonlyArray<{ name: string; values: ParamValue[] }>, i: number): Params {
  const index = new Array<number>(axes.length);
  for (let a = axes.length - 1; a >= 0; a--) {
    const n = axes[a]!.values.length;
    index[a] = i % n;
    i = Math.floor(i / n);
  }
  const params: Params = {};
  axes.forEach(({ name, values }, a) => (params[name] = values[index[a]!]!));
  return params;
}

/** A point's identity: its values in the space's order. */
const pointKey = (space: Space, params: Params): string => JSON.stringify(space.map((s) => params[s.name] ?? null));

export function gridSampler(): Sampler {
  return {
    name: 'grid',
    propose(space: Space, trials: readonly TrialRecord[], number: number, seed: number): Params {
      checkGridSpace(space);
      const axes = space.map((spec) => ({ name: spec.name, values: gridValues(spec) as ParamValue[] }));
      const size = gridSize(space);
      // The visiting order depends on the seed only: every trial of the study sees the same one.
      const order = new Rng(mixSeeds(seed, 0, GRID_SALT)).shuffle(Array.from({ length: size }, (_, i) => i));
      const taken = new Set(trials.map((t) => pointKey(space, t.params)));
      for (const i of order) {
        const point = gridPoint(axes, i);
        if (!taken.has(pointKey(space, point))) return point;
      }
      return gridPoint(axes, trialRng(seed, number).int(size));
    },
  };
}
