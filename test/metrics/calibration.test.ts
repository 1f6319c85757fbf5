import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  CALIBRATION_BINS,
  calibrationSummary,
  fitTemperature,
  negativeLogLikelihood,
  softmaxWithTemperature,
  topOne,
} from '../../src/metrics/calibration.js';
import { Rng } from '../../src/util/rng.js';

const K = 10;

/** Standard normal from two uniforms (Box-Muller). */
function gaussian(rng: Rng): number {
  return Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
}

/**
 * n images with logits z ~ scale * N(0, 1) and labels drawn from softmax(z / t0): a model whose
 * calibrated temperature is t0 by construction.
 */
function syntheticLogits(n: number, t0: number, seed: number, scale = 4): { logits: Float64Array; labels: Uint8Array } {
  const rng = new Rng(seed);
  const logits = new Float64Array(n * K);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < K; c++) logits[i * K + c] = scale * gaussian(rng);
    const q = softmaxWithTemperature(logits.subarray(i * K, (i + 1) * K), t0, { classes: K, from: 'logits' });
    let u = rng.next();
    let c = 0;
    while (c < K - 1 && (u -= q[c]!) > 0) c++;
    labels[i] = c;
  }
  return { logits, labels };
}

describe('calibrationSummary (hand-computed)', () => {
  it('bins top-1 confidences in 15 equal-width bins, an edge in the lower bin, and weights the ECE by counts', () => {
    // 0.9 and 0.92 in bin 13 ((13/15, 14/15]), 1.0 in bin 14, 2/15 exactly in bin 1 (its upper edge).
    const confidence = [0.9, 0.92, 1.0, 2 / 15, 0];
    const correct = [1, 0, 1, 0, 0];
    const { ece, bins } = calibrationSummary(confidence, correct);
    expect(bins).toHaveLength(CALIBRATION_BINS);
    expect(bins[13]).toMatchObject({ count: 2, accuracy: 0.5 });
    expect(bins[13]!.confidence).toBeCloseTo(0.91, 15);
    expect(bins[14]).toMatchObject({ count: 1, accuracy: 1, confidence: 1 });
    expect(bins[1]).toMatchObject({ count: 1, accuracy: 0 });
    expect(bins[0]).toMatchObject({ count: 1, accuracy: 0, confidence: 0 });
    expect(bins.reduce((s, b) => s + b.count, 0)).toBe(5);
    expect(ece).toBeCloseTo((2 / 5) * 0.41 + 0 + (1 / 5) * (2 / 15) + 0, 15);
  });

  it('is 0 for a perfectly calibrated set and for no data', () => {
    expect(calibrationSummary([1, 1, 1], [1, 1, 1]).ece).toBe(0);
    expect(calibrationSummary([], []).ece).toBe(0);
  });
});

describe('fitTemperature', () => {
  it('recovers the temperature the labels were drawn with', () => {
    for (const t0 of [0.5, 1, 2.5]) {
      const { logits, labels } = syntheticLogits(4000, t0, 11);
      const fit = fitTemperature(logits, labels, { classes: K, from: 'logits' });
      expect(Math.abs(Math.log(fit.temperature / t0)), `T0 ${t0}: fitted ${fit.temperature}`).toBeLessThan(0.1);
    }
  });

  it('takes probabilities the same as logits (softmax is shift-invariant)', () => {
    const { logits, labels } = syntheticLogits(1000, 2, 5);
    const probs = softmaxWithTemperature(logits, 1, { classes: K, from: 'logits' });
    const a = fitTemperature(logits, labels, { classes: K, from: 'logits' });
    const b = fitTemperature(probs, labels, { classes: K });
    expect(b.temperature).toBeCloseTo(a.temperature, 6);
    expect(b.nllAfter).toBeCloseTo(a.nllAfter, 8);
  });

  it('never raises the NLL above T = 1, and reports both', () => {
    for (const [t0, seed] of [[1, 1], [0.7, 2], [3, 3]] as const) {
      const { logits, labels } = syntheticLogits(300, t0, seed);
      const fit = fitTemperature(logits, labels, { classes: K, from: 'logits' });
      expect(fit.nllAfter).toBeLessThanOrEqual(fit.nllBefore);
      expect(fit.nllBefore).toBeCloseTo(negativeLogLikelihood(logits, labels, { classes: K, from: 'logits' }), 12);
      expect(fit.nllAfter).toBeCloseTo(negativeLogLikelihood(logits, labels, { classes: K, from: 'logits', temperature: fit.temperature }), 12);
    }
    // One image, predicted right with certainty: nothing to gain, T stays 1.
    const sure = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    expect(fitTemperature(sure, [0], { classes: K }).temperature).toBeGreaterThan(0);
    expect(fitTemperature([], [], { classes: K })).toEqual({ temperature: 1, nllBefore: 0, nllAfter: 0 });
  });

  it('is deterministic', () => {
    const { logits, labels } = syntheticLogits(500, 1.7, 9);
    const a = fitTemperature(logits, labels, { classes: K, from: 'logits' });
    const b = fitTemperature(logits, labels, { classes: K, from: 'logits' });
    expect(b).toEqual(a);
  });

  it('lowers the ECE of an overconfident set', () => {
    const { logits, labels } = syntheticLogits(3000, 2.5, 21);
    const fit = fitTemperature(logits, labels, { classes: K, from: 'logits' });
    const raw = topOne(softmaxWithTemperature(logits, 1, { classes: K, from: 'logits' }), labels, K);
    const cal = topOne(softmaxWithTemperature(logits, fit.temperature, { classes: K, from: 'logits' }), labels, K);
    expect(calibrationSummary(cal.confidence, cal.correct).ece).toBeLessThan(calibrationSummary(raw.confidence, raw.correct).ece / 2);
    expect(Array.from(cal.correct)).toEqual(Array.from(raw.correct)); // T > 0 never changes the predicted digit
  });
});

// An independent reference (STYLE lesson 9): numpy re-implements the bins and the ECE;
// scikit-learn's calibration_curve (strategy='uniform') gives the per-bin accuracy and
// confidence of the non-empty bins, where installed.
const python = ['/usr/bin/python3', 'python3'].find((p) => spawnSync(p, ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0);

describe.skipIf(!python)('calibrationSummary equals numpy (and scikit-learn calibration_curve)', () => {
  it('matches bins, counts and ECE on random predictions', () => {
    const cases = [1, 2, 3].map((seed) => {
      const { logits, labels } = syntheticLogits(2000, [0.6, 1, 2][seed - 1]!, 100 + seed, 3);
      // float32, as a model's output is
      const probs = Float32Array.from(softmaxWithTemperature(logits, 1, { classes: K, from: 'logits' }));
      return { probs: Array.from(probs), labels: Array.from(labels) };
    });
    // Edge values exactly on bin boundaries go to the lower bin in both.
    cases.push({ probs: [...Array(K * 16)].map((_, j) => (j % K === 0 ? Math.floor(j / K) / 15 : 0)), labels: [...Array(16)].map((_, i) => i % 2) });
    const script = `
import json, sys
import numpy as np
try:
    from sklearn.calibration import calibration_curve
except ImportError:
    calibration_curve = None
out = []
for c in json.load(sys.stdin):
    p = np.array(c['probs'], dtype=np.float64).reshape(-1, 10)
    y = np.array(c['labels'])
    conf = p.max(axis=1)
    right = (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0, 1, 16)
    ids = np.searchsorted(edges[1:-1], conf)  # (lo, hi]; 0 in the first bin
    count = np.bincount(ids, minlength=15)
    csum = np.bincount(ids, weights=conf, minlength=15)
    asum = np.bincount(ids, weights=right, minlength=15)
    nz = count > 0
    acc = np.where(nz, asum / np.maximum(count, 1), 0)
    mc = np.where(nz, csum / np.maximum(count, 1), 0)
    ece = float(np.sum(count[nz] / len(y) * np.abs(acc[nz] - mc[nz])))
    r = {'count': count.tolist(), 'acc': acc.tolist(), 'conf': mc.tolist(), 'ece': ece}
    if calibration_curve is not None:
        pt, pp = calibration_curve(right, conf, n_bins=15, strategy='uniform')
        r['sk'] = {'true': pt.tolist(), 'pred': pp.tolist()}
    out.append(r)
json.dump(out, sys.stdout)
`;
    const res = spawnSync(python!, ['-c', script], { input: JSON.stringify(cases), encoding: 'utf8' });
    expect(res.status, res.stderr).toBe(0);
    const ref = JSON.parse(res.stdout) as Array<{ count: number[]; acc: number[]; conf: number[]; ece: number; sk?: { true: number[]; pred: number[] } }>;
    cases.forEach((c, i) => {
      const { confidence, correct } = topOne(c.probs, c.labels, K);
      const { ece, bins } = calibrationSummary(confidence, correct);
      expect(bins.map((b) => b.count)).toEqual(ref[i]!.count);
      bins.forEach((b, m) => {
        expect(b.accuracy).toBeCloseTo(ref[i]!.acc[m]!, 12);
        expect(b.confidence).toBeCloseTo(ref[i]!.conf[m]!, 12);
      });
      expect(ece).toBeCloseTo(ref[i]!.ece, 12);
      const sk = ref[i]!.sk;
      if (sk) {
        const filled = bins.filter((b) => b.count > 0);
        expect(filled.map((b) => b.accuracy).length).toBe(sk.true.length);
        filled.forEach((b, m) => {
          expect(b.accuracy).toBeCloseTo(sk.true[m]!, 12);
          expect(b.confidence).toBeCloseTo(sk.pred[m]!, 12);
        });
      }
    });
  });
});
