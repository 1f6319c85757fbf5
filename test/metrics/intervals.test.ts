import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Z95, mcnemarExact, wilsonInterval } from '../../src/metrics/intervals.js';

describe('wilsonInterval', () => {
  it('matches hand-worked cases', () => {
    // 5 of 10: centre 0.5, half-width z/(1+z²/n)·sqrt(0.025 + z²/400)
    const h = wilsonInterval(5, 10);
    expect(h.low).toBeCloseTo(0.236593, 6);
    expect(h.high).toBeCloseTo(0.763407, 6);
    // 0 of 10: [0, z²/(n+z²)]; 10 of 10 its mirror
    expect(wilsonInterval(0, 10)).toEqual({ low: 0, high: expect.closeTo((Z95 * Z95) / (10 + Z95 * Z95), 15) });
    expect(wilsonInterval(10, 10).high).toBe(1);
    expect(wilsonInterval(10, 10).low).toBeCloseTo(1 - (Z95 * Z95) / (10 + Z95 * Z95), 15);
    expect(wilsonInterval(0, 0)).toEqual({ low: 0, high: 1 });
    const w = wilsonInterval(465, 554);
    expect(w.low).toBeLessThan(465 / 554);
    expect(w.high).toBeGreaterThan(465 / 554);
  });
});

describe('mcnemarExact', () => {
  it('matches hand-worked binomial tails', () => {
    expect(mcnemarExact(0, 0)).toBe(1);
    expect(mcnemarExact(3, 3)).toBe(1);
    expect(mcnemarExact(0, 1)).toBe(1);
    expect(mcnemarExact(0, 5)).toBeCloseTo(2 / 32, 15);
    expect(mcnemarExact(5, 1)).toBeCloseTo((2 * (1 + 6)) / 64, 15);
    expect(mcnemarExact(2, 10)).toBeCloseTo((2 * (1 + 12 + 66)) / 4096, 15);
    expect(mcnemarExact(4, 5)).toBe(1);
    // symmetric in b and c
    expect(mcnemarExact(17, 40)).toBe(mcnemarExact(40, 17));
  });

  it('stays finite and in [0, 1] for a million discordant images', () => {
    const p = mcnemarExact(499_000, 501_000);
    expect(p).toBeGreaterThan(0);
    expect(p).toBeLessThan(1);
    expect(mcnemarExact(0, 1_000_000)).toBe(0); // 2^-999999 underflows, as it must
    expect(mcnemarExact(500_000, 500_000)).toBe(1);
  });
});

// STYLE lesson 9: an independent reference, where /usr/bin/python3 has scipy.
const hasScipy = spawnSync('/usr/bin/python3', ['-c', 'import scipy.stats'], { stdio: 'ignore' }).status === 0;

describe.skipIf(!hasScipy)('intervals equal scipy', () => {
  it('wilsonInterval equals the closed form with scipy.stats.norm.ppf; mcnemarExact equals binomtest', () => {
    const wilson: [number, number][] = [[0, 1], [1, 1], [1, 2], [5, 10], [465, 554], [9000, 10000], [26032, 26032], [123, 26032], [25000, 26032]];
    const mcnemar: [number, number][] = [[0, 1], [1, 5], [2, 10], [7, 20], [20, 7], [30, 31], [100, 140], [1000, 1100], [12345, 12000], [49_900, 50_500], [499_000, 501_000], [498_000, 502_000], [2, 2000]];
    const py = `
import json, math, sys
from scipy.stats import norm, binomtest
c = json.load(sys.stdin)
z = norm.ppf(0.975)
def wilson(k, n):
    p = k / n
    centre = (p + z*z/(2*n)) / (1 + z*z/n)
    half = z / (1 + z*z/n) * math.sqrt(p*(1-p)/n + z*z/(4*n*n))
    return [max(0.0, centre - half), min(1.0, centre + half)]
print(json.dumps({'z': z, 'wilson': [wilson(k, n) for k, n in c['wilson']],
                  'mcnemar': [binomtest(min(b, cc), b + cc, 0.5).pvalue for b, cc in c['mcnemar']]}))
`;
    const r = spawnSync('/usr/bin/python3', ['-c', py], { input: JSON.stringify({ wilson, mcnemar }), encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const ref = JSON.parse(r.stdout) as { z: number; wilson: [number, number][]; mcnemar: number[] };
    expect(ref.z).toBe(Z95);
    wilson.forEach(([k, n], i) => {
      const w = wilsonInterval(k, n);
      expect(w.low, `${k}/${n}`).toBeCloseTo(ref.wilson[i]![0], 14);
      expect(w.high, `${k}/${n}`).toBeCloseTo(ref.wilson[i]![1], 14);
    });
    mcnemar.forEach(([b, c], i) => {
      const want = ref.mcnemar[i]!;
      const got = mcnemarExact(b, c);
      expect(Math.abs(got - want) / Math.max(want, 1e-300), `b=${b} c=${c}: ${got} vs ${want}`).toBeLessThan(1e-10);
    });
  });
});
