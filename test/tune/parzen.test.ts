/**
 * TPE's numerical parts against independent references: the truncated normal against Python's
 * math.erfc and SciPy's truncnorm (skipped where /usr/bin/python3 has no SciPy), the Parzen
 * estimators' scores against Optuna 3.1's own log_pdf (fixtures/optuna-parzen.json, written by
 * Debian's python3-optuna 3.1.0: fixtures/optuna-parzen.py), and sampling against the density.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/util/rng.js';
import { buildParzen, defaultWeights } from '../../src/tune/samplers/parzen.js';
import { erfc, logGaussMass, logNdtr, truncnormLogPdf, truncnormPpf } from '../../src/tune/samplers/truncnorm.js';
import type { ParamSpec, ParamValue } from '../../src/tune/types.js';

const hasScipy = spawnSync('/usr/bin/python3', ['-c', 'import scipy.stats'], { stdio: 'ignore' }).status === 0;

describe('truncated normal', () => {
  it("erfc equals Python's math.erfc in the middle and both tails", () => {
    // python3 -c 'import math; print(repr(math.erfc(x)))'
    const python: Array<[number, number]> = [
      [-3, 1.9999779095030015],
      [-1, 1.842700792949715],
      [0, 1],
      [0.5, 0.4795001221869535],
      [1, 0.15729920705028513],
      [2.4, 0.0006885138966450789],
      [2.6, 0.00023603441652934908],
      [3, 2.2090496998585438e-5],
      [5, 1.5374597944280351e-12],
      [10, 2.088487583762545e-45],
      [26, 5.663192408856143e-296],
    ];
    for (const [x, want] of python) expect(Math.abs(erfc(x) - want) / want, `erfc(${x})`).toBeLessThan(1e-12);
  });

  it('logNdtr stays finite and smooth far into the left tail', () => {
    // log Phi(x) ~ -x^2/2 - log(-x) - log sqrt(2 pi) for x -> -inf
    for (const x of [-25, -40, -100]) expect(logNdtr(x)).toBeCloseTo(-0.5 * x * x - Math.log(-x) - 0.5 * Math.log(2 * Math.PI), 2);
    expect(logNdtr(-19.999)).toBeCloseTo(logNdtr(-20.001), 1); // across the series' switch
    expect(logNdtr(40)).toBe(-0);
  });

  it.skipIf(!hasScipy)("ppf, log-density and log-mass equal SciPy's truncnorm, tails included", () => {
    const cases: Array<[number, number]> = [
      [-1, 1],
      [-3, 0.5],
      [0.2, 4],
      [-40, -38],
      [30, 35],
      [-2, 60],
      [-0.001, 0.001],
    ];
    const qs = [1e-6, 0.01, 0.3, 0.5, 0.9, 0.999999];
    const py = `
import json, numpy as np
from scipy.stats import truncnorm, norm
cases, qs = ${JSON.stringify(cases)}, ${JSON.stringify(qs)}
out = []
for a, b in cases:
    x = (a + b) / 2
    out.append(dict(ppf=truncnorm.ppf(qs, a, b).tolist(), logpdf=float(truncnorm.logpdf(x, a, b)), logmass=float(norm.logpdf(x) - truncnorm.logpdf(x, a, b))))
print(json.dumps(out))
`;
    const r = spawnSync('/usr/bin/python3', ['-c', py], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const ref = JSON.parse(r.stdout) as Array<{ ppf: number[]; logpdf: number; logmass: number }>;
    cases.forEach(([a, b], i) => {
      const want = ref[i]!;
      const logMass = logGaussMass(a, b);
      expect(Math.abs(logMass - want.logmass), `log mass on [${a}, ${b}]`).toBeLessThan(1e-9 * Math.max(1, Math.abs(want.logmass)));
      expect(truncnormLogPdf((a + b) / 2, 0, 1, a, b, logMass)).toBeCloseTo(want.logpdf, 8);
      qs.forEach((q, j) => expect(Math.abs(truncnormPpf(q, a, b) - want.ppf[j]!), `ppf(${q}) on [${a}, ${b}]`).toBeLessThan(1e-6 * Math.max(1, Math.abs(want.ppf[j]!))));
    });
  });

  it('ppf inverts the CDF and never leaves [a, b]', () => {
    const rng = new Rng(3);
    for (let i = 0; i < 2000; i++) {
      const a = rng.uniform(-10, 5);
      const b = a + rng.uniform(1e-3, 10);
      const x = truncnormPpf(rng.next(), a, b);
      expect(x >= a && x <= b).toBe(true);
    }
    // The median of N(0,1) on [-1, 1] is 0; on [0, inf) its median is Phi^-1(0.75).
    expect(truncnormPpf(0.5, -1, 1)).toBeCloseTo(0, 9);
    expect(truncnormPpf(0.5, 0, Infinity)).toBeCloseTo(0.6744897501960817, 8);
  });
});

describe('Parzen estimators', () => {
  interface Case {
    spec: ParamSpec;
    obs: ParamValue[];
    xs: ParamValue[];
    logPdf: number[];
  }
  const fixture = JSON.parse(readFileSync(new URL('./fixtures/optuna-parzen.json', import.meta.url), 'utf8')) as { optuna: string; cases: Record<string, Case> };

  it.each(Object.keys(fixture.cases))("%s: the score equals Optuna 3.1's own estimator's log_pdf", (name) => {
    expect(fixture.optuna).toMatch(/^3\.1\./);
    const c = fixture.cases[name]!;
    const pe = buildParzen(c.spec, c.obs);
    c.xs.forEach((x, i) => expect(Math.abs(pe.logScore(x) - c.logPdf[i]!), `log score(${x})`).toBeLessThan(1e-12));
  });

  it('the score weights each continuous kernel by its width; a stepped one and a choice score by their mass', () => {
    // One observation in the middle of [0, 10], on the prior's mu: two kernels looking inwards at
    // a gap of 0, so both widths are the magic clip's floor 10 / 3; then the prior's is set back to 10.
    const pe = buildParzen({ name: 'x', kind: 'float', low: 0, high: 10 }, [5]);
    const kernel = (sigma: number) => Math.exp(truncnormLogPdf(7, 5, sigma, 0, 10, logGaussMass(-5 / sigma, 5 / sigma)));
    expect(Math.exp(pe.logPdf(7))).toBeCloseTo(0.5 * kernel(10 / 3) + 0.5 * kernel(10), 14);
    expect(Math.exp(pe.logScore(7))).toBeCloseTo(0.5 * (10 / 3) * kernel(10 / 3) + 0.5 * 10 * kernel(10), 14);
    const stepped = buildParzen({ name: 'x', kind: 'int', low: 0, high: 10 }, [5, 6]);
    const choice = buildParzen({ name: 'b', kind: 'choice', choices: [1, 2] }, [2]);
    for (const v of [0, 5, 7]) expect(stepped.logScore(v)).toBe(stepped.logPdf(v));
    for (const v of [1, 2]) expect(choice.logScore(v)).toBe(choice.logPdf(v));
  });

  it("default_weights: flat up to 25 observations, then the oldest ramp up from 1/n (Optuna's)", () => {
    expect(defaultWeights(0)).toEqual([]);
    expect(defaultWeights(24)).toEqual(new Array(24).fill(1));
    expect(defaultWeights(26)).toEqual([1 / 26, ...new Array(25).fill(1)]);
    const w = defaultWeights(35);
    expect(w[0]).toBeCloseTo(1 / 35, 15);
    expect(w[9]).toBe(1);
    expect(w.length).toBe(35);
  });

  it('draws follow its density, logPdf (a histogram against its integral)', () => {
    const spec: ParamSpec = { name: 'x', kind: 'float', low: 0, high: 10 };
    const pe = buildParzen(spec, [1, 1.5, 7, 9.8]);
    const rng = new Rng(11);
    const bins = new Array<number>(10).fill(0);
    const n = 40_000;
    for (let i = 0; i < n; i++) bins[Math.min(9, Math.floor(pe.sample(rng) as number))]! += 1;
    for (let b = 0; b < 10; b++) {
      let mass = 0; // midpoint rule, 200 slices per bin
      for (let k = 0; k < 200; k++) mass += Math.exp(pe.logPdf(b + (k + 0.5) / 200)) / 200;
      const sd = Math.sqrt(n * mass * (1 - mass));
      expect(Math.abs(bins[b]! - n * mass), `bin ${b}`).toBeLessThan(5 * sd);
    }
  });

  it('a stepped parameter draws only its values; a choice only its choices, by their probabilities', () => {
    const rng = new Rng(5);
    const stepped = buildParzen({ name: 'x', kind: 'float', low: 0, high: 2, step: 0.5 }, [0.5, 0.5, 2]);
    const seen = new Set<ParamValue>();
    for (let i = 0; i < 500; i++) seen.add(stepped.sample(rng));
    expect([...seen].sort()).toEqual([0, 0.5, 1, 1.5, 2]);
    const choices = [32, 64, 128];
    const pe = buildParzen({ name: 'b', kind: 'choice', choices }, [64, 64, 128]);
    expect(choices.reduce((s, c) => s + Math.exp(pe.logPdf(c)), 0)).toBeCloseTo(1, 12);
    const counts = new Map<ParamValue, number>();
    for (let i = 0; i < 20_000; i++) {
      const v = pe.sample(rng);
      counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    for (const c of choices) expect((counts.get(c) ?? 0) / 20_000).toBeCloseTo(Math.exp(pe.logPdf(c)), 1);
  });
});
