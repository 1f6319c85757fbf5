import { describe, expect, it } from 'vitest';
import { compareModels, formatComparison, type ModelSummary } from '../../src/metrics/comparison.js';
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
