/**
 * How sure an accuracy is: the Wilson score interval of a proportion, and the exact McNemar
 * test of two classifiers scored on the same images.
 */

/** The two-sided 95% normal quantile, scipy.stats.norm.ppf(0.975). */
export const Z95 = 1.959963984540054;

export interface Interval {
  low: number;
  high: number;
}

/**
 * Wilson score interval of `correct` successes in `n` trials (z = 1.96: 95%). Unlike
 * p ± z·se it stays inside [0, 1] and is sensible at 0 or n correct. n = 0 says nothing: [0, 1].
 */
export function wilsonInterval(correct: number, n: number, z = Z95): Interval {
  if (n === 0) return { low: 0, high: 1 };
  const p = correct / n;
  const z2n = (z * z) / n;
  const centre = (p + z2n / 2) / (1 + z2n);
  const half = (z / (1 + z2n)) * Math.sqrt((p * (1 - p)) / n + z2n / (4 * n));
  return {
    low: correct === 0 ? 0 : Math.max(0, centre - half),
    high: correct === n ? 1 : Math.min(1, centre + half),
  };
}

/**
 * Two-sided exact McNemar p-value: b = images A gets right and B wrong, c = the reverse.
 * Under "A and B are equally good" each discordant image is a fair coin, so
 *   p = min(1, 2 · P(X <= min(b, c))),  X ~ Binomial(b + c, 1/2)
 * (scipy.stats.binomtest(min(b, c), b + c, 0.5).pvalue). The largest term, P(X = min(b, c)),
 * comes from Loader's saddle-point form (R's dbinom, accurate to a few ulps with no
 * factorials); the smaller ones by the ratio P(X = k-1) / P(X = k) = k / (n - k + 1),
 * summed largest first so nothing underflows until the whole p-value does.
 */
export function mcnemarExact(b: number, c: number): number {
  const n = b + c;
  const m = Math.min(b, c);
  if (n === 0 || 2 * m + 1 >= n) return 1; // |b - c| <= 1: the tail holds half the mass or more
  const top = binomialHalfPmf(m, n);
  let sum = 1; // in units of `top`
  let term = 1;
  for (let k = m; k > 0; k--) {
    term *= k / (n - k + 1);
    sum += term;
    if (term < sum * 1e-17) break; // the rest cannot change a double
  }
  return Math.min(1, 2 * top * sum);
}

/** P(X = x) for X ~ Binomial(n, 1/2), Loader (2000) "Fast and accurate computation of binomial probabilities". */
function binomialHalfPmf(x: number, n: number): number {
  if (x === 0 || x === n) return Math.exp(-n * Math.LN2);
  const lc = stirlerr(n) - stirlerr(x) - stirlerr(n - x) - bd0(x, n / 2) - bd0(n - x, n / 2);
  const lf = Math.log(2 * Math.PI) + Math.log(x) + Math.log1p(-x / n);
  return Math.exp(lc - 0.5 * lf);
}

/** log(n!) - log(sqrt(2π n) (n/e)^n), the error of Stirling's formula, for integers n >= 1. */
function stirlerr(n: number): number {
  if (n <= 15) {
    let logFact = 0;
    for (let i = 2; i <= n; i++) logFact += Math.log(i);
    return logFact - (n + 0.5) * Math.log(n) + n - 0.5 * Math.log(2 * Math.PI);
  }
  const [s0, s1, s2, s3, s4] = [1 / 12, 1 / 360, 1 / 1260, 1 / 1680, 1 / 1188];
  const nn = n * n;
  if (n > 500) return (s0 - s1 / nn) / n;
  if (n > 80) return (s0 - (s1 - s2 / nn) / nn) / n;
  if (n > 35) return (s0 - (s1 - (s2 - s3 / nn) / nn) / nn) / n;
  return (s0 - (s1 - (s2 - (s3 - s4 / nn) / nn) / nn) / nn) / n;
}

/** x log(x / np) + np - x, without cancellation when x is near np. */
function bd0(x: number, np: number): number {
  if (Math.abs(x - np) < 0.1 * (x + np)) {
    let v = (x - np) / (x + np);
    let s = (x - np) * v;
    let ej = 2 * x * v;
    v *= v;
    for (let j = 1; j < 1000; j++) {
      ej *= v;
      const s1 = s + ej / (2 * j + 1);
      if (s1 === s) return s1;
      s = s1;
    }
    return s;
  }
  return x * Math.log(x / np) + np - x;
}

/** An accuracy's interval as report.json and --json carry it. */
export interface AccuracyInterval extends Interval {
  method: 'wilson';
  level: 0.95;
}

export function accuracyInterval(correct: number, n: number): AccuracyInterval {
  return { ...wilsonInterval(correct, n), method: 'wilson', level: 0.95 };
}

/** "0.806-0.868": three decimals, enough for an interval's ends. */
export function formatInterval(i: Interval): string {
  return `${i.low.toFixed(3)}-${i.high.toFixed(3)}`;
}
