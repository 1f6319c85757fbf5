/**
 * tune/samplers.ts: deterministic proposals, every one inside its space, grid enumeration
 * without repeats, TPE's split of the trials, and TPE finding better points than random search.
 */
import { describe, expect, it } from 'vitest';
import { SvhnError } from '../../src/errors.js';
import { checkGridSpace, gridSize, makeSampler } from '../../src/tune/samplers.js';
import { gamma, splitTrials } from '../../src/tune/samplers/tpe.js';
import { defaultSpace } from '../../src/tune/space.js';
import type { ParamSpec, ParamValue, Params, Sampler, Space, TrialRecord, TrialState } from '../../src/tune/types.js';

const SAMPLERS = ['tpe', 'random', 'grid'] as const;

/** One of every kind, griddable. */
const MIXED: Space = [
  { name: 'lr', kind: 'choice', choices: [1e-4, 1e-3, 1e-2] },
  { name: 'batch-size', kind: 'int', low: 16, high: 64, step: 16 },
  { name: 'schedule', kind: 'choice', choices: ['constant', 'cosine', 'onecycle'] },
  { name: 'weight-decay', kind: 'float', low: 0, high: 0.1, step: 0.025 },
  { name: 'warmup-epochs', kind: 'int', low: 0, high: 2 },
];

/** A space of every kind, continuous ones included (not griddable). */
const CONTINUOUS: Space = [
  { name: 'lr', kind: 'log-float', low: 1e-4, high: 1e-2 },
  { name: 'weight-decay', kind: 'float', low: 0, high: 0.1 },
  { name: 'augment-strength', kind: 'float', low: 0, high: 2, step: 0.25 },
  { name: 'batch-size', kind: 'int', low: 8, high: 200 },
  { name: 'schedule', kind: 'choice', choices: ['constant', 'cosine', 'onecycle'] },
];

/** A made-up objective over any of these spaces: each parameter's distance to a target, numbers on their (log-)scale. */
function objective(space: Space): (p: Params) => number {
  return (p) =>
    -space.reduce((sum, s) => {
      const v = p[s.name]!;
      if (s.kind === 'choice') return sum + (v === s.choices[s.choices.length - 1] ? 0 : 1);
      const scale = s.kind === 'log-float' ? (x: number) => Math.log(x) : (x: number) => x;
      const t = (scale(v as number) - scale(s.low)) / (scale(s.high) - scale(s.low));
      return sum + (t - 0.3) ** 2;
    }, 0);
}

/** A sequential study: each trial proposed from the ones before, finished with `f`'s value; `stateOf` may make some pruned or failed. */
function runStudy(sampler: Sampler, space: Space, f: (p: Params) => number, n: number, seed: number, stateOf: (i: number) => TrialState = () => 'complete'): TrialRecord[] {
  const trials: TrialRecord[] = [];
  for (let i = 0; i < n; i++) {
    const params = sampler.propose(space, trials, i, seed);
    const state = stateOf(i);
    const value = f(params);
    trials.push({
      number: i,
      state,
      params,
      value: state === 'complete' || state === 'pruned' ? value : null,
      intermediates: state === 'failed' ? [] : [[1, value]],
    });
  }
  return trials;
}

/** Whether v is one of the values `spec` allows. */
function allowed(spec: ParamSpec, v: ParamValue | undefined): boolean {
  if (spec.kind === 'choice') return spec.choices.includes(v!);
  if (typeof v !== 'number' || !(v >= spec.low && v <= spec.high)) return false;
  const step = spec.kind === 'int' ? (spec.step ?? 1) : spec.kind === 'float' ? spec.step : undefined;
  if (step === undefined) return true;
  const k = (v - spec.low) / step;
  return Math.abs(k - Math.round(k)) < 1e-9 && Number(v.toPrecision(12)) === v;
}

const paramsOf = (trials: TrialRecord[]) => trials.map((t) => t.params);

describe('makeSampler', () => {
  it('refuses an unknown name as a bad flag', () => {
    expect(() => makeSampler('bayes' as never)).toThrow(new SvhnError('BAD_FLAG', "--sampler: expected one of tpe, random, grid, got 'bayes'"));
  });
});

describe.each(SAMPLERS)('%s sampler', (name) => {
  const space = name === 'grid' ? MIXED : CONTINUOUS;
  const f = objective(space);

  it('proposes the same trials for the same seed, other trials for another seed', () => {
    const a = runStudy(makeSampler(name), space, f, 30, 7);
    const b = runStudy(makeSampler(name), space, f, 30, 7);
    const c = runStudy(makeSampler(name), space, f, 30, 8);
    expect(paramsOf(a)).toEqual(paramsOf(b));
    expect(paramsOf(c)).not.toEqual(paramsOf(a));
  });

  it("trial N's proposal depends on the seed, N and the trials only, not on what was proposed before", () => {
    const trials = runStudy(makeSampler(name), space, f, 25, 3);
    const fresh = makeSampler(name).propose(space, trials, 25, 3);
    const used = makeSampler(name);
    for (let i = 0; i < 10; i++) used.propose(space, trials.slice(0, i), 100 + i, 99);
    expect(used.propose(space, trials, 25, 3)).toEqual(fresh);
  });

  it('every proposal lies in its range, on its step, among its choices', () => {
    for (const seed of [1, 2, 3]) {
      for (const t of runStudy(makeSampler(name), space, f, 40, seed)) {
        expect(Object.keys(t.params)).toEqual(space.map((s) => s.name));
        for (const s of space) expect(allowed(s, t.params[s.name]), `${s.name} = ${t.params[s.name]}`).toBe(true);
      }
    }
  });
});

describe('random sampler', () => {
  it('draws uniformly: log-uniform for log-float, every step value and choice about equally often', () => {
    const sampler = makeSampler('random');
    const n = 6000;
    const draws = Array.from({ length: n }, (_, i) => sampler.propose(CONTINUOUS, [], i, 1));
    const lrs = draws.map((p) => p.lr as number);
    expect(lrs.filter((v) => v < 1e-3).length / n).toBeCloseTo(0.5, 1); // 1e-3 is the log-midpoint
    const strengths = new Map<ParamValue, number>();
    for (const p of draws) strengths.set(p['augment-strength']!, (strengths.get(p['augment-strength']!) ?? 0) + 1);
    expect(strengths.size).toBe(9); // 0, 0.25, ..., 2
    for (const count of strengths.values()) expect(count / n).toBeGreaterThan(0.08);
    const sizes = new Set(draws.map((p) => p['batch-size']));
    expect(Math.min(...(sizes as Set<number>))).toBe(8);
    expect(Math.max(...(sizes as Set<number>))).toBe(200);
  });
});

describe('grid sampler', () => {
  it('checkGridSpace refuses what has no grid, naming the parameter', () => {
    const refused: Array<[Space, string]> = [
      [[{ name: 'lr', kind: 'log-float', low: 1e-4, high: 1e-2 }], "--sampler grid: 'lr': a log-float has no step; use a choice of values, or use --sampler tpe or random"],
      [[{ name: 'weight-decay', kind: 'float', low: 0, high: 0.1 }], "--sampler grid: 'weight-decay': a float needs a step to be gridded"],
      [[{ name: 'batch-size', kind: 'int', low: 1, high: 512 }], "--sampler grid: 'batch-size': an int of 512 values needs a step (at most 100 without one)"],
      [
        Array.from({ length: 6 }, (_, i): ParamSpec => ({ name: `p${i}`, kind: 'int', low: 1, high: 10 })),
        '--sampler grid: the space has 1,000,000 points, at most 100,000; use fewer values, or --sampler tpe',
      ],
    ];
    for (const [space, message] of refused) {
      expect(() => checkGridSpace(space)).toThrow(SvhnError);
      expect(() => checkGridSpace(space)).toThrow(message);
    }
    expect(() => checkGridSpace(MIXED)).not.toThrow();
    expect(() => checkGridSpace(defaultSpace('resnet'))).toThrow("'lr': a log-float has no step");
  });

  it('gridSize is the product of the value counts', () => {
    expect(gridSize(MIXED)).toBe(3 * 4 * 3 * 5 * 3);
    expect(gridSize([{ name: 'batch-size', kind: 'int', low: 1, high: 5, step: 2 }])).toBe(3);
  });

  it('enumerates every point once, running and failed trials counting as taken, then repeats a seeded pick', () => {
    const size = gridSize(MIXED);
    const states: TrialState[] = ['running', 'complete', 'failed', 'pruned'];
    const trials = runStudy(makeSampler('grid'), MIXED, objective(MIXED), size, 5, (i) => states[i % 4]!);
    const keys = new Set(trials.map((t) => JSON.stringify(t.params)));
    expect(keys.size).toBe(size);
    const extra = makeSampler('grid').propose(MIXED, trials, size, 5);
    expect(keys.has(JSON.stringify(extra))).toBe(true);
    // The order is shuffled by the seed: another seed starts elsewhere but covers the same grid.
    const other = runStudy(makeSampler('grid'), MIXED, objective(MIXED), size, 6);
    expect(other[0]!.params).not.toEqual(trials[0]!.params);
    expect(new Set(other.map((t) => JSON.stringify(t.params)))).toEqual(keys);
  });

  it('skips a point another worker holds', () => {
    const sampler = makeSampler('grid');
    const first = sampler.propose(MIXED, [], 0, 9);
    const held: TrialRecord = { number: 0, state: 'running', params: first, value: null, intermediates: [] };
    expect(sampler.propose(MIXED, [held], 1, 9)).not.toEqual(first);
  });
});

describe('TPE sampler', () => {
  const branin = (p: Params): number => {
    const x1 = p.x1 as number;
    const x2 = p.x2 as number;
    const b = 5.1 / (4 * Math.PI ** 2);
    const c = 5 / Math.PI;
    const t = 1 / (8 * Math.PI);
    return (x2 - b * x1 * x1 + c * x1 - 6) ** 2 + 10 * (1 - t) * Math.cos(x1) + 10;
  };
  const BRANIN: Space = [
    { name: 'x1', kind: 'float', low: -5, high: 10 },
    { name: 'x2', kind: 'float', low: 0, high: 15 },
  ];
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

  it('finds lower Branin values than random search: median best after 40 trials over 10 seeds', () => {
    const best = (name: 'tpe' | 'random', seed: number) => Math.min(...runStudy(makeSampler(name), BRANIN, (p) => -branin(p), 40, seed).map((t) => -t.value!));
    const seeds = Array.from({ length: 10 }, (_, i) => i + 1);
    const tpe = seeds.map((s) => best('tpe', s));
    const random = seeds.map((s) => best('random', s));
    expect(median(tpe)).toBeLessThan(median(random));
    expect(median(tpe)).toBeLessThan(1.5); // the minimum is 0.398
  });

  it('proposes at random for the first 10 finished trials, as the random sampler would', () => {
    const trials = runStudy(makeSampler('tpe'), BRANIN, (p) => -branin(p), 9, 4);
    expect(paramsOf(trials)).toEqual(paramsOf(runStudy(makeSampler('random'), BRANIN, (p) => -branin(p), 9, 4)));
    // Running and failed trials do not count towards the 10.
    const pending: TrialRecord[] = [10, 11, 12].map((number) => ({ number, state: number === 10 ? 'running' : 'failed', params: { x1: 0, x2: 0 }, value: null, intermediates: [] }));
    expect(makeSampler('tpe').propose(BRANIN, [...trials, ...pending], 13, 4)).toEqual(makeSampler('random').propose(BRANIN, [], 13, 4));
  });

  it('ignores running and failed trials once past start-up', () => {
    const trials = runStudy(makeSampler('tpe'), BRANIN, (p) => -branin(p), 20, 4);
    const others: TrialRecord[] = [
      { number: 20, state: 'running', params: { x1: 9, x2: 1 }, value: null, intermediates: [[1, 5]] },
      { number: 21, state: 'failed', params: { x1: -4, x2: 14 }, value: null, intermediates: [] },
    ];
    const sampler = makeSampler('tpe');
    expect(sampler.propose(BRANIN, [...trials, ...others], 22, 4)).toEqual(sampler.propose(BRANIN, trials, 22, 4));
  });

  it('concentrates on the good region: after 30 trials of a 1-D bowl, most proposals land near its top', () => {
    const space: Space = [{ name: 'x', kind: 'float', low: 0, high: 100 }];
    const trials = runStudy(makeSampler('tpe'), space, (p) => -(((p.x as number) - 70) ** 2), 60, 2);
    const late = trials.slice(30).map((t) => t.params.x as number);
    expect(late.filter((x) => Math.abs(x - 70) < 15).length).toBeGreaterThan(20);
  });

  it("splits the good from the bad as Optuna does: complete by value, then pruned by how far they got and their last value", () => {
    const t = (number: number, state: TrialState, value: number | null, intermediates: Array<[number, number]>): TrialRecord => ({ number, state, params: {}, value, intermediates });
    const trials = [
      t(0, 'complete', 0.8, [[3, 0.8]]),
      t(1, 'pruned', 0.5, [[1, 0.4], [3, 0.5]]),
      t(2, 'complete', 0.9, [[3, 0.9]]),
      t(3, 'pruned', 0.95, [[1, 0.95]]),
      t(4, 'pruned', 0.45, [[1, 0.3], [3, 0.45]]),
      t(5, 'pruned', null, []),
    ];
    const numbers = (ts: TrialRecord[]) => ts.map((x) => x.number);
    expect(numbers(splitTrials(trials, 1).good)).toEqual([2]);
    expect(numbers(splitTrials(trials, 3).good)).toEqual([0, 1, 2]); // pruned at epoch 3 beats pruned at epoch 1, whatever its value
    expect(numbers(splitTrials(trials, 4).good)).toEqual([0, 1, 2, 4]);
    expect(numbers(splitTrials(trials, 5).good)).toEqual([0, 1, 2, 3, 4]);
    expect(numbers(splitTrials(trials, 3).bad)).toEqual([3, 4, 5]);
    expect([1, 10, 11, 100, 250, 251, 1000].map(gamma)).toEqual([1, 1, 2, 10, 25, 25, 25]);
  });
});
