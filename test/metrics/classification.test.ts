import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  classificationReport,
  classificationReportDict,
  formatClassificationReport,
  formatFixed,
  numpySum,
} from '../../src/metrics/classification.js';
import { confusionMatrix } from '../../src/metrics/confusion.js';
import { Rng } from '../../src/util/rng.js';

// Digit 3 has support 2 but is never predicted; digit 4 is predicted once but has no support;
// digits 5..9 appear nowhere.
const yTrue = [0, 0, 1, 1, 1, 2, 3, 3];
const yPred = [0, 1, 1, 1, 4, 2, 2, 2];

describe('classificationReport (hand-computed)', () => {
  const r = classificationReport(confusionMatrix(yTrue, yPred));

  it('scores each digit by sklearn definitions', () => {
    const c = r.perClass;
    expect(c[0]).toEqual({ label: 0, precision: 1, recall: 0.5, f1: 2 / 3, support: 2 });
    expect(c[1]).toEqual({ label: 1, precision: 2 / 3, recall: 2 / 3, f1: 4 / 6, support: 3 });
    expect(c[2]).toEqual({ label: 2, precision: 1 / 3, recall: 1, f1: 2 / 4, support: 1 });
    // never predicted: precision 0 (zero_division), recall 0, f1 0
    expect(c[3]).toEqual({ label: 3, precision: 0, recall: 0, f1: 0, support: 2 });
    // no support: recall 0 (zero_division), precision 0 (tp 0 of 1 predicted), f1 0
    expect(c[4]).toEqual({ label: 4, precision: 0, recall: 0, f1: 0, support: 0 });
    for (const d of [5, 6, 7, 8, 9]) expect(c[d]).toEqual({ label: d, precision: 0, recall: 0, f1: 0, support: 0 });
  });

  it('averages over all ten digits, zero-support ones included as 0 in the macro average', () => {
    expect(r.accuracy).toBe(4 / 8);
    expect(r.total).toBe(8);
    expect(r.macroAvg.precision).toBeCloseTo((1 + 2 / 3 + 1 / 3) / 10, 15);
    expect(r.macroAvg.recall).toBeCloseTo((0.5 + 2 / 3 + 1) / 10, 15);
    expect(r.macroAvg.f1).toBeCloseTo((2 / 3 + 2 / 3 + 0.5) / 10, 15);
    expect(r.weightedAvg.precision).toBeCloseTo((1 * 2 + (2 / 3) * 3 + (1 / 3) * 1) / 8, 15);
    expect(r.weightedAvg.recall).toBeCloseTo((0.5 * 2 + (2 / 3) * 3 + 1) / 8, 15);
    expect(r.weightedAvg.f1).toBeCloseTo(((2 / 3) * 2 + (2 / 3) * 3 + 0.5) / 8, 15);
    expect(r.macroAvg.support).toBe(8);
  });

  it('says what svhn reports where a score is ill-defined, naming the digits (no sklearn parameter to point at)', () => {
    expect(r.warnings).toEqual([
      'precision of digits 3, 5, 6, 7, 8, 9 is ill-defined: no image was predicted as any of them; reported as 0.0',
      'recall of digits 4, 5, 6, 7, 8, 9 is ill-defined: no image is labelled as any of them; reported as 0.0',
      'f1-score of digits 5, 6, 7, 8, 9 is ill-defined: no image is labelled or predicted as any of them; reported as 0.0',
    ]);
    const one = classificationReport(confusionMatrix([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [0, 1, 2, 2, 4, 5, 6, 7, 8, 9]));
    expect(one.warnings).toEqual(['precision of digit 3 is ill-defined: no image was predicted as 3; reported as 0.0']);
    for (const w of [...r.warnings, ...one.warnings]) expect(w).not.toMatch(/zero_division|\n/);
    const clean = classificationReport(confusionMatrix([...Array(10).keys()], [...Array(10).keys()]));
    expect(clean.warnings).toEqual([]);
    expect(clean.accuracy).toBe(1);
  });

  it("lays the text out like sklearn's classification_report", () => {
    // sklearn >= 1.3 prints "accuracy" (1.2 printed "micro avg" with the same 0.50 when a
    // given label appeared nowhere); everything else is character for character.
    const expected = [
      '              precision    recall  f1-score   support',
      '',
      '           0       1.00      0.50      0.67         2',
      '           1       0.67      0.67      0.67         3',
      '           2       0.33      1.00      0.50         1',
      '           3       0.00      0.00      0.00         2',
      '           4       0.00      0.00      0.00         0',
      '           5       0.00      0.00      0.00         0',
      '           6       0.00      0.00      0.00         0',
      '           7       0.00      0.00      0.00         0',
      '           8       0.00      0.00      0.00         0',
      '           9       0.00      0.00      0.00         0',
      '',
      '    accuracy                           0.50         8',
      '   macro avg       0.20      0.22      0.18         8',
      'weighted avg       0.54      0.50      0.48         8',
      '',
    ].join('\n');
    expect(formatClassificationReport(r)).toBe(expected);
    expect(formatClassificationReport(r, { digits: 4 }).split('\n')[2]).toBe('           0     1.0000    0.5000    0.6667         2');
  });

  it("gives sklearn's output_dict shape", () => {
    const d = classificationReportDict(r);
    expect(d['accuracy']).toBe(0.5);
    expect(d['3']).toEqual({ precision: 0, recall: 0, 'f1-score': 0, support: 2 });
    expect(Object.keys(d).slice(-3)).toEqual(['accuracy', 'macro avg', 'weighted avg']);
  });
});

describe('formatFixed (Python float formatting)', () => {
  it('rounds exact ties to even and everything else correctly', () => {
    expect(formatFixed(0.125, 2)).toBe('0.12'); // toFixed gives 0.13
    expect(formatFixed(0.375, 2)).toBe('0.38');
    expect(formatFixed(0.625, 2)).toBe('0.62');
    expect(formatFixed(0.875, 2)).toBe('0.88');
    expect(formatFixed(2.5, 0)).toBe('2');
    expect(formatFixed(3.5, 0)).toBe('4');
    expect(formatFixed(0.005, 2)).toBe('0.01'); // 0.005 is slightly above the tie as a double
    expect(formatFixed(1 / 3, 4)).toBe('0.3333');
    expect(formatFixed(0, 2)).toBe('0.00');
  });

  it('sums like numpy (pairwise) where naive summation differs', () => {
    const a = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];
    // numpy: eight partial sums in a tree, then the tail: ((.1+.2)+(.3+.4))+((.5+.6)+(.7+.8)) + .9 + 1.0
    expect(numpySum(a)).toBe(0.1 + 0.2 + (0.3 + 0.4) + (0.5 + 0.6 + (0.7 + 0.8)) + 0.9 + 1.0);
  });
});

// micrograd-style check against the reference (STYLE lesson 9), where scikit-learn is installed.
const python = ['/usr/bin/python3', 'python3'].find((p) => spawnSync(p, ['-c', 'import sklearn'], { stdio: 'ignore' }).status === 0);

describe.skipIf(!python)('classificationReport equals scikit-learn on random labels', () => {
  it('matches numbers exactly and text character for character', () => {
    const rng = new Rng(7);
    const cases: { yTrue: number[]; yPred: number[] }[] = [];
    for (const [n, noSupport, neverPredicted] of [
      [500, -1, -1],
      [300, 7, 3],
      [1000, 0, 9],
      [60, -1, -1],
    ] as const) {
      const yTrue: number[] = [];
      const yPred: number[] = [];
      for (let i = 0; i < n; i++) {
        let t = i < 10 ? i : Math.floor(rng.next() * 10);
        if (t === noSupport) t = (t + 1) % 10;
        // right 60% of the time, otherwise any digit; every digit predicted at least once
        let p = i >= 10 && i < 20 ? i - 10 : rng.next() < 0.6 ? t : Math.floor(rng.next() * 10);
        if (p === neverPredicted) p = (p + 1) % 10;
        yTrue.push(t);
        yPred.push(p);
      }
      cases.push({ yTrue, yPred });
    }
    const script = `
import json, sys, warnings
import sklearn
from sklearn.metrics import classification_report
warnings.simplefilter('ignore')
out = []
for c in json.load(sys.stdin):
    kw = dict(labels=list(range(10)))
    out.append({'text2': classification_report(c['yTrue'], c['yPred'], **kw),
                'text4': classification_report(c['yTrue'], c['yPred'], digits=4, **kw),
                'dict': classification_report(c['yTrue'], c['yPred'], output_dict=True, **kw),
                'version': sklearn.__version__})
json.dump(out, sys.stdout)
`;
    const res = spawnSync(python!, ['-c', script], { input: JSON.stringify(cases), encoding: 'utf8' });
    expect(res.status, res.stderr).toBe(0);
    const ref = JSON.parse(res.stdout) as { text2: string; text4: string; dict: Record<string, any>; version: string }[];
    const [major, minor] = ref[0]!.version.split('.').map(Number) as [number, number];
    // sklearn < 1.3 computed F1 as 2PR/(P+R); since 1.3 as 2tp/(support+predicted), our
    // default. Equal in exact arithmetic, an ulp apart at times: compare with the installed form.
    const f1Form = major > 1 || minor >= 3 ? 'counts' : 'ratio';
    cases.forEach((c, i) => {
      const r = classificationReport(confusionMatrix(c.yTrue, c.yPred), { f1Form });
      const modern = classificationReport(confusionMatrix(c.yTrue, c.yPred));
      modern.perClass.forEach((m, k) => expect(m.f1).toBeCloseTo(r.perClass[k]!.f1, 15));
      const d = classificationReportDict(r) as Record<string, any>;
      for (const key of [...Array(10).keys()].map(String).concat(['macro avg', 'weighted avg'])) {
        expect(d[key].precision, `${key} precision`).toBe(ref[i]!.dict[key].precision);
        expect(d[key].recall, `${key} recall`).toBe(ref[i]!.dict[key].recall);
        expect(d[key].support).toBe(ref[i]!.dict[key].support);
        expect(d[key]['f1-score'], `${key} f1`).toBe(ref[i]!.dict[key]['f1-score']);
      }
      expect(d['accuracy']).toBe(ref[i]!.dict['accuracy']);
      expect(formatClassificationReport(r)).toBe(ref[i]!.text2);
      expect(formatClassificationReport(r, { digits: 4 })).toBe(ref[i]!.text4);
    });
  });
});
