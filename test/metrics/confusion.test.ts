import { describe, expect, it } from 'vitest';
import { ConfusionAccumulator, confusionMatrix, confusionMatrixCsv, formatConfusionMatrix } from '../../src/metrics/confusion.js';

describe('ConfusionAccumulator', () => {
  it('puts true labels on rows and predictions on columns, summing over batches', () => {
    const acc = new ConfusionAccumulator(10);
    acc.update([0, 1, 1], [0, 2, 1]);
    acc.update(new Uint8Array([1, 9]), new Uint8Array([2, 0]));
    const m = acc.result();
    expect(m).toHaveLength(10);
    expect(m[0]![0]).toBe(1);
    expect(m[1]![2]).toBe(2); // two 1s predicted as 2
    expect(m[1]![1]).toBe(1);
    expect(m[9]![0]).toBe(1);
    expect(m.flat().reduce((a, b) => a + b, 0)).toBe(5);
    // batching does not change the result
    expect(confusionMatrix([0, 1, 1, 1, 9], [0, 2, 1, 2, 0])).toEqual(m);
  });

  it('rejects labels outside 0..9 and length mismatches', () => {
    const acc = new ConfusionAccumulator(10);
    expect(() => acc.update([10], [0])).toThrow(/expected labels 0\.\.9, got true 10/);
    expect(() => acc.update([1, 2], [1])).toThrow(/as many predictions as labels/);
  });

  it('formats an aligned table and a CSV', () => {
    const m = confusionMatrix([0, 1, 1, 2], [0, 1, 0, 2], 3);
    m[2]![2] = 12345;
    const lines = formatConfusionMatrix(m).trimEnd().split('\n');
    expect(lines).toHaveLength(4);
    expect(new Set(lines.map((l) => l.length)).size).toBe(1); // every line the same width
    expect(lines[3]!.trim().split(/\s+/)).toEqual(['2', '0', '0', '12345']);
    expect(confusionMatrixCsv(m).split('\n')).toEqual(['true,pred_0,pred_1,pred_2', '0,1,0,0', '1,1,1,0', '2,0,0,12345', '']);
  });
});
