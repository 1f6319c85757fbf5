/**
 * The arithmetic between the reader's two models (src/tasks/read/assemble.ts): the views of
 * each digit's box the classifier reads, their probabilities pooled, and the reading.
 */
import { describe, expect, it } from 'vitest';
import { DIGIT_VIEWS, digitViews, pooledProbs, readingOf } from '../../../src/tasks/read/assemble.js';
import type { Detection } from '../../../src/tasks/read/peaks.js';

const softmax = (logits: number[]) => {
  const m = Math.max(...logits);
  const e = logits.map((z) => Math.exp(z - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

describe('digitViews', () => {
  it('gives each box its views, box after box: the box itself first, then moved by a share of its square\'s side', () => {
    const views = digitViews([[10, 20, 20, 40], [30, 0, 60, 10]]);
    expect(views).toHaveLength(2 * DIGIT_VIEWS.length);
    expect(views[0]).toEqual([10, 20, 20, 40]);
    // the first box is 10 x 20: its square's side is 20, so 1/16 is 1.25 px
    expect(views[1]![0]).toBeCloseTo(11.25, 10);
    expect(views[1]![2]).toBeCloseTo(21.25, 10);
    expect(views[3]![1]).toBeCloseTo(21.25, 10);
    expect(views[DIGIT_VIEWS.length]).toEqual([30, 0, 60, 10]);
    // scaled about the centre
    const [scaled] = digitViews([[10, 20, 20, 40]], [[1.5, 0, 0]]);
    expect(scaled).toEqual([7.5, 15, 22.5, 45]);
  });
});

describe('pooledProbs', () => {
  it('takes the renormalised geometric mean of each digit\'s views', () => {
    const a = softmax([2, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    const b = softmax([0, 0, 0, 0, 0, 0, 0, 0, 0, 3]);
    const c = softmax([1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    const pooled = pooledProbs(Float32Array.from([...a, ...b, ...c, ...c]), 2, 2);
    // the mean of two softmaxes' logs is the softmax of the mean logits
    const want = softmax([1, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    for (let k = 0; k < 10; k++) expect(pooled[k]).toBeCloseTo(want[k]!, 6);
    for (let k = 0; k < 10; k++) expect(pooled[10 + k]).toBeCloseTo(c[k]!, 6);
    // one view: the probabilities as they are
    const one = Float32Array.from(a);
    expect(pooledProbs(one, 1, 1)).toEqual(one);
  });

  it('feeds readingOf: the digit is the pooled best, its confidence the pooled probability times its centre\'s score', () => {
    const p9 = softmax([0, 0, 0, 0, 0, 0, 0, 0, 0, 4]);
    const p3 = softmax([0, 0, 0, 4, 0, 0, 0, 0, 0, 0]);
    // two views that disagree (9, then 3 a little less sure): the pool says 9
    const pooled = pooledProbs(Float32Array.from([...p9, ...softmax([0, 0, 0, 3, 0, 0, 0, 0, 0, 0])]), 1, 2);
    const found: Detection[] = [{ score: 0.5, box: [0, 0, 10, 20], cell: { x: 0, y: 0 } }];
    const r = readingOf(found, [[0, 0, 10, 20]], pooled, 100, 50);
    expect(r.number).toBe('9');
    expect(r.digits[0]!.confidence).toBeCloseTo(0.5 * pooled[9]!, 6);
    expect(pooled[9]!).toBeLessThan(p9[9]!);
    expect(pooled[3]!).toBeLessThan(p3[3]!);
  });
});
