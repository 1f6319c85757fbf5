/** --shard I/N's pieces (issue 24, 7): the flag's parser, the block formula, and the slice of the item stream. */
import { describe, expect, it } from 'vitest';
import { parseShard, shardRange, sliceItems, type InputItem } from '../../src/predict/inputs.js';

describe('predict --shard', () => {
  it('parses I/N with I counted from 0 and says what was expected otherwise', () => {
    expect(parseShard('0/3')).toEqual({ index: 0, count: 3 });
    expect(parseShard('2/3')).toEqual({ index: 2, count: 3 });
    expect(parseShard('0/1')).toEqual({ index: 0, count: 1 });
    for (const bad of ['3/3', '1', 'a/b', '-1/3', '0/0', '1/3/4', '1.5/3', '', '/3']) {
      expect(parseShard(bad), bad).toMatch(/^expected I\/N, .*counted from 0.*got '/);
    }
    expect(parseShard('3/3')).toMatch(/I < N \(the last of 3 shards is 2\/3\)/);
  });

  it('cuts any total into N contiguous blocks that cover it in order, sizes within 1', () => {
    for (let total = 0; total <= 40; total++) {
      for (let n = 1; n <= 12; n++) {
        let next = 0;
        const sizes: number[] = [];
        for (let i = 0; i < n; i++) {
          const { start, end } = shardRange(total, { index: i, count: n });
          expect(start).toBe(next);
          expect(end).toBe(Math.floor((total * (i + 1)) / n));
          sizes.push(end - start);
          next = end;
        }
        expect(next).toBe(total);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      }
    }
    // total*I past 2^53 stays exact
    const total = 2 ** 52 + 3;
    expect(shardRange(total, { index: 6, count: 7 }).end).toBe(total);
  });

  it('slices the stream without pulling items past the block', async () => {
    let pulled = 0;
    async function* items(): AsyncGenerator<InputItem> {
      for (let i = 0; i < 100; i++) {
        pulled++;
        yield { kind: 'file', id: `f${i}`, path: `f${i}` };
      }
    }
    const got: string[] = [];
    for await (const x of sliceItems(items(), 3, 6)) got.push(x.id);
    expect(got).toEqual(['f3', 'f4', 'f5']);
    expect(pulled).toBe(6);
    pulled = 0;
    for await (const x of sliceItems(items(), 4, 4)) got.push(x.id);
    expect(pulled).toBe(0);
  });
});
