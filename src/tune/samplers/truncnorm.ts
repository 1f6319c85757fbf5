/**
 * The truncated normal distribution TPE's Parzen estimators are made of: log-density, log-mass
 * of an interval, and inverse-CDF sampling, all in log space so that a kernel far out in a tail
 * (a narrow one near the edge of its range) neither underflows nor loses its digits. The same
 * method as SciPy's truncnorm and Optuna's _truncnorm.py (the left tail is accurate, so the
 * right is computed as a mirrored left); written here for double-precision JS.
 * a, b are the truncation bounds in standard units: (bound - mu) / sigma.
 */

const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);
const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

/** erf(x) by its Maclaurin series: accurate to ~1e-15 for |x| <= 2.5, where the terms stay small. */
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= -x2 / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
  }
  return TWO_OVER_SQRT_PI * sum;
}

/** erfc(x) for x >= 2.5 by its continued fraction (modified Lentz), relative accuracy ~1e-15 even where it underflows towards 0. */
function erfcFraction(x: number): number {
  // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...)))))
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 500; n++) {
    const an = n / 2;
    d = x + an * d;
    d = d === 0 ? tiny : 1 / d;
    c = x + an / c;
    if (c === 0) c = tiny;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / (Math.sqrt(Math.PI) * f);
}

/** The complementary error function, accurate in both tails. */
export function erfc(x: number): number {
  if (x === Infinity) return 0;
  if (x === -Infinity) return 2;
  if (x >= 2.5) return erfcFraction(x);
  if (x <= -2.5) return 2 - erfcFraction(-x);
  return 1 - erfSeries(x);
}

/** The standard normal CDF. */
export function ndtr(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2);
}

/** log of the standard normal CDF, finite down to x = -1e150 or so (the asymptotic series below -20). */
export function logNdtr(x: number): number {
  if (x === -Infinity) return -Infinity;
  if (x > 6) return Math.log1p(-ndtr(-x));
  if (x > -20) return Math.log(ndtr(x));
  // log Phi(x) = -x^2/2 - log(-x) - log sqrt(2 pi) + log(1 - 1/x^2 + 3/x^4 - 15/x^6 ...)
  const x2 = x * x;
  let series = 1;
  let term = 1;
  for (let i = 1; i < 20; i++) {
    const next = (-term * (2 * i - 1)) / x2;
    if (Math.abs(next) >= Math.abs(term)) break; // asymptotic: stop before it grows
    term = next;
    series += term;
    if (Math.abs(term) < 1e-17) break;
  }
  return -0.5 * x2 - Math.log(-x) - LOG_SQRT_2PI + Math.log(series);
}

/** log(e^p - e^q) for p >= q. */
function logDiff(p: number, q: number): number {
  return p + Math.log1p(-Math.exp(q - p));
}

/** log(e^p + e^q). */
export function logAddExp(p: number, q: number): number {
  const m = Math.max(p, q);
  if (m === -Infinity) return -Infinity;
  return m + Math.log(Math.exp(p - m) + Math.exp(q - m));
}

/** log of a standard normal's mass on [a, b], a <= b. */
export function logGaussMass(a: number, b: number): number {
  if (b <= 0) return logDiff(logNdtr(b), logNdtr(a));
  if (a > 0) return logDiff(logNdtr(-a), logNdtr(-b));
  // Straddling 0: one minus both tails, without the cancellation of subtracting two CDFs near 1.
  return Math.log1p(-ndtr(a) - ndtr(-b));
}

/** The x with logNdtr(x) = y (y <= 0), by Newton's method from a tail or logistic first guess. */
function ndtriExp(y: number): number {
  // Near y = 0 (x large) solve for -x in the left tail instead: log Phi(-x) = log(1 - e^y).
  const flipped = y > -1e-2;
  const z = flipped ? Math.log(-Math.expm1(y)) : y;
  let x = z < -5 ? -Math.sqrt(-2 * (z + LOG_SQRT_2PI)) : -(Math.sqrt(3) / Math.PI) * Math.log(Math.expm1(-z));
  for (let i = 0; i < 100; i++) {
    const l = logNdtr(x);
    // d/dx log Phi(x) = pdf(x) / Phi(x)
    const dx = (l - z) * Math.exp(l - (-0.5 * x * x - LOG_SQRT_2PI));
    x -= dx;
    if (Math.abs(dx) < 1e-8 * Math.abs(x)) break;
  }
  return flipped ? -x : x;
}

/** The q-quantile (0 <= q < 1) of the standard normal truncated to [a, b]. */
export function truncnormPpf(q: number, a: number, b: number): number {
  if (q <= 0) return a;
  const logMass = logGaussMass(a, b);
  const x = a < 0 ? ndtriExp(logAddExp(logNdtr(a), Math.log(q) + logMass)) : -ndtriExp(logAddExp(logNdtr(-b), Math.log1p(-q) + logMass));
  return Math.min(b, Math.max(a, x));
}

/** log density at x of N(mu, sigma) truncated to [low, high]; logMass: logGaussMass((low - mu)/sigma, (high - mu)/sigma), precomputed per kernel. */
export function truncnormLogPdf(x: number, mu: number, sigma: number, low: number, high: number, logMass: number): number {
  if (x < low || x > high) return -Infinity;
  const z = (x - mu) / sigma;
  return -0.5 * z * z - LOG_SQRT_2PI - Math.log(sigma) - logMass;
}
