import { describe, expect, it } from 'vitest';
import { failedRow, formatReadCsvRow, formatReadJsonlRow, READ_ROWS, readingRow } from '../../src/read/rows.js';
import type { Reading } from '../../src/tasks/read/reading.js';

const twelve: Reading = {
  number: '12',
  confidence: 0.81234,
  digits: [
    { digit: 1, confidence: 0.9, box: [10.4, 5.5, 20.49, 30] },
    { digit: 2, confidence: 0.90256, box: [21, 5, 33.5, 30.2] },
  ],
};

describe('read rows', () => {
  it('CSV: the columns in order, boxes rounded to whole pixels, confidences to 4 decimals', () => {
    expect(READ_ROWS.csvHeader).toBe('input,number,confidence,boxes,digit_confidences,abstained,best,error\n');
    expect(formatReadCsvRow(readingRow('a, b.png', twelve, 0))).toBe('"a, b.png",12,0.8123,10 6 20 30;21 5 34 30,0.9000;0.9026,false,12,\n');
  });

  it('JSONL: the same fields, digits as objects with their box as numbers', () => {
    expect(JSON.parse(formatReadJsonlRow(readingRow('a.png', twelve, 0)))).toEqual({
      input: 'a.png',
      number: '12',
      confidence: 0.8123,
      digits: [
        { digit: 1, confidence: 0.9, box: [10, 6, 20, 30] },
        { digit: 2, confidence: 0.9026, box: [21, 5, 34, 30] },
      ],
      abstained: false,
      best: '12',
      error: null,
    });
  });

  it('below --min-confidence a number abstains: number empty (null in JSONL), best and boxes kept; at it, it answers', () => {
    const row = readingRow('a.png', twelve, 0.9);
    expect(row).toMatchObject({ number: null, abstained: true, best: '12' });
    expect(formatReadCsvRow(row)).toBe('a.png,,0.8123,10 6 20 30;21 5 34 30,0.9000;0.9026,true,12,\n');
    expect(readingRow('a.png', twelve, 0.81234)).toMatchObject({ number: '12', abstained: false });
  });

  it('a photo with no number: empty number and no boxes, not an error, never abstains', () => {
    const none: Reading = { number: '', confidence: 0.3, digits: [] };
    const row = readingRow('empty.jpg', none, 0.5);
    expect(row).toEqual({ input: 'empty.jpg', number: '', confidence: 0.3, digits: [], abstained: false, best: '', error: null });
    expect(formatReadCsvRow(row)).toBe('empty.jpg,,0.3000,,,false,,\n');
    expect(JSON.parse(formatReadJsonlRow(row)).number).toBe('');
  });

  it('a number keeps its leading zero', () => {
    const zero: Reading = { number: '07', confidence: 0.5, digits: [] };
    expect(formatReadCsvRow(readingRow('z.png', zero, 0)).split(',')[1]).toBe('07');
  });

  it('a failed photo: only input and error', () => {
    expect(formatReadCsvRow(failedRow('bad.png', 'not a readable image: x, y'))).toBe('bad.png,,,,,false,,"not a readable image: x, y"\n');
    expect(JSON.parse(formatReadJsonlRow(failedRow('bad.png', 'empty file (0 bytes)')))).toEqual({ input: 'bad.png', number: null, confidence: null, digits: [], abstained: false, best: null, error: 'empty file (0 bytes)' });
  });

  it('on a terminal, control characters in names are shown escaped, in both formats', () => {
    const name = 'x\x1b[2J\x9b.png';
    expect(formatReadCsvRow(failedRow(name, 'bad'), true)).toBe('x\\x1b[2J\\x9b.png,,,,,false,,bad\n');
    const line = formatReadJsonlRow(failedRow(name, 'bad'), true);
    expect(line).not.toMatch(/[\x1b\x9b]/);
    expect(JSON.parse(line).input).toBe(name); // the same JSON value
  });
});
