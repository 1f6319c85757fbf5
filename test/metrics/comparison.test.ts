import { describe, expect, it } from 'vitest';
import { compareModels, formatComparison, mcnemarPairs, type ModelSummary } from '../../src/metrics/comparison.js';
import { accuracyInterval, mcnemarExact } from '../../src/metrics/intervals.js';
import { MeanAccumulator } from '../../src/metrics/mean.js';

const row = (name: string, over: Partial<ModelSummary>): ModelSummary => ({
  name,
  accuracy: 0.9,
  macroF1: 0.88,
  weightedF1: 0.89,
  loss: 0.4,
  params: 1000,
  imagesPerSec: 500,
  synthetic: false,
  ...over,
});

describe('compareModels', () => {
  it('marks the best of each column (lowest loss and params) and the best model by accuracy', () => {
    const c = compareModels([
      row('baseline', { accuracy: 0.88, loss: 0.35, params: 500, imagesPerSec: 900 }),
      row('optimized', { accuracy: 0.93, macroF1: 0.92, weightedF1: 0.93, loss: 0.3, params: 2000 }),
    ]);
    expect(c.best).toBe(1);
    expect(c.bestByColumn).toEqual({ accuracy: 1, macroF1: 1, weightedF1: 1, loss: 1, params: 0, imagesPerSec: 0 });
    const text = formatComparison(c).split('\n');
    expect(text[0]).toMatch(/^model\s+accuracy\s+macro F1\s+weighted F1\s+loss\s+parameters\s+images\/s$/);
    expect(text[2]).toMatch(/^baseline\s+0\.8800 .* 500\* +900\*$/);
    expect(text[3]).toMatch(/^optimized\s+0\.9300\*.*<- best$/);
    // columns line up: every data row as wide as the header (before the best marker)
    expect(text[2]!.length).toBe(text[0]!.length);
  });

  it('breaks an accuracy tie by lower loss', () => {
    const c = compareModels([row('a', { loss: 0.5 }), row('b', { loss: 0.2 })]);
    expect(c.best).toBe(1);
  });
});

describe('intervals and McNemar pairs in the comparison', () => {
  it('shows each accuracy with its Wilson interval and lists the pairs below the table', () => {
    const labels = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    const models = [
      { name: 'a', predicted: [0, 1, 2, 3, 4, 5, 6, 7, 8, 0] }, // 9 right
      { name: 'b', predicted: [0, 1, 2, 3, 4, 0, 0, 0, 0, 9] }, // 6 right
      { name: 'c', predicted: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] }, // 10 right
    ];
    const pairs = mcnemarPairs(models, labels);
    expect(pairs.map((p) => [p.a, p.b, p.aRightBWrong, p.aWrongBRight])).toEqual([
      ['a', 'b', 4, 1],
      ['a', 'c', 0, 1],
      ['b', 'c', 0, 4],
    ]);
    expect(pairs[0]!.p).toBe(mcnemarExact(4, 1));
    expect(pairs[2]!.p).toBeCloseTo(2 / 16, 15);
    const c = compareModels(
      [row('a', { accuracy: 0.9, accuracyInterval: accuracyInterval(9, 10) }), row('b', { accuracy: 0.6, accuracyInterval: accuracyInterval(6, 10) }), row('c', { accuracy: 1, accuracyInterval: accuracyInterval(10, 10) })],
      pairs,
    );
    const text = formatComparison(c);
    expect(text).toMatch(/^model\s+accuracy \(95% CI\)\s+macro F1/);
    expect(text).toMatch(/\na\s+0\.9000 \(0\.596-0\.982\)/);
    expect(text).toMatch(/\nc\s+1\.0000 \(0\.722-1\.000\)\*/);
    expect(text).toContain('95% CI: Wilson interval of the accuracy\n');
    expect(text).toContain('\nb vs c: 0 only b right, 4 only c right, McNemar exact p = 0.1250\n');
  });
});

describe('MeanAccumulator', () => {
  it('weights each batch by its size', () => {
    const m = new MeanAccumulator();
    expect(m.result()).toBeNaN();
    m.add(1, 3); // three items of mean 1
    m.add(4, 1); // one short batch of mean 4: counts once, not as a whole batch
    expect(m.result()).toBe(7 / 4);
    m.addSum(3, 2);
    expect(m.result()).toBe(10 / 6);
    expect(m.count).toBe(6);
  });
});
