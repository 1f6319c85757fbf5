/**
 * SeededDropout's mask (models/layers.ts dropoutMask): a counter-based stream, so a
 * replica's shard draws exactly its rows of the whole batch's mask.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { dropoutMask, SeededDropout } from '../../src/models/layers.js';
import { setReplicaContext } from '../../src/models/replicaContext.js';
import { Rng } from '../../src/util/rng.js';

describe('Rng.skip', () => {
  it('moves the stream on as n draws do', () => {
    for (const n of [0, 1, 7, 1000, 123456]) {
      const a = new Rng(99);
      for (let i = 0; i < n; i++) a.nextU32();
      const b = new Rng(99).skip(n);
      expect([b.nextU32(), b.nextU32()]).toEqual([a.nextU32(), a.nextU32()]);
    }
  });
});

describe('dropoutMask', () => {
  it('drops about `rate` of the values and scales the rest by 1 / (1 - rate)', () => {
    for (const rate of [0.3, 0.5]) {
      const m = dropoutMask(5, rate, 0, 100_000);
      const dropped = m.filter((v) => v === 0).length / m.length;
      expect(Math.abs(dropped - rate)).toBeLessThan(0.01); // ~6 standard deviations
      expect(new Set(m.filter((v) => v !== 0))).toEqual(new Set([Math.fround(1 / Math.fround(1 - rate))]));
    }
  });

  it('gives each shard its part of the whole batch\'s mask', () => {
    const whole = dropoutMask(17, 0.4, 0, 7 * 12);
    const parts = [dropoutMask(17, 0.4, 0, 3 * 12), dropoutMask(17, 0.4, 3 * 12, 4 * 12)];
    expect(Array.from(parts[0]!).concat(Array.from(parts[1]!))).toEqual(Array.from(whole));
    expect(Array.from(dropoutMask(18, 0.4, 0, 84))).not.toEqual(Array.from(whole));
  });
});

describe('SeededDropout', () => {
  it('masks a shard with the rows the whole batch would use, and is the identity at inference', () => {
    const x = tf.tidy(() => tf.add(tf.randomUniform([5, 6], 0, 1, 'float32', 3), 1));
    const whole = new SeededDropout({ rate: 0.5, seed: 11 });
    const shard = new SeededDropout({ rate: 0.5, seed: 11 });
    const before = tf.memory().numTensors;
    const all = whole.apply(x, { training: true }) as tf.Tensor;
    const rows = x.slice(2, 3);
    setReplicaContext({ offset: 2, size: 3, total: 5, allReduce: (v) => v });
    let part: tf.Tensor;
    try {
      part = shard.apply(rows, { training: true }) as tf.Tensor;
    } finally {
      setReplicaContext(undefined);
    }
    const expected = all.slice(2, 3);
    expect(Array.from(part.dataSync())).toEqual(Array.from(expected.dataSync()));
    const zeros = Array.from(all.dataSync()).filter((v) => v === 0).length;
    expect(zeros).toBeGreaterThan(0);
    expect(zeros).toBeLessThan(30);
    const inferred = whole.apply(x, { training: false }) as tf.Tensor;
    expect(Array.from(inferred.dataSync())).toEqual(Array.from(x.dataSync()));
    tf.dispose([all, rows, part, expected, ...(inferred === x ? [] : [inferred])]);
    expect(tf.memory().numTensors).toBe(before); // the mask lived only inside the call
    x.dispose();
  });
});

describe('dropoutMask and Rng', () => {
  it('draws the same stream as Rng.nextU32', () => {
    const rng = new Rng(1234).skip(10);
    const mask = dropoutMask(1234, 0.5, 10, 2000);
    const scale = Math.fround(1 / Math.fround(0.5));
    expect(Array.from(mask)).toEqual(Array.from({ length: 2000 }, () => (rng.nextU32() < 0.5 * 4294967296 ? 0 : scale)));
  });
});
