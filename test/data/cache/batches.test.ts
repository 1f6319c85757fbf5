import { describe, expect, it } from 'vitest';
import { IMAGE_BYTES } from '../../../src/config.js';
import { BatchAssembler, epochBatches, gatherImages, sequentialBatches, type Batch, type ImageSet } from '../../../src/data/cache/batches.js';
import { Rng } from '../../../src/util/rng.js';

/** Image i: every byte = i % 256, label i % 10, so a batch row tells which image it came from. */
function numbered(count: number, offset = 0): ImageSet {
  const images = new Uint8Array(count * IMAGE_BYTES);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    images.fill((offset + i) % 256, i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES);
    labels[i] = (offset + i) % 10;
  }
  return { count, images, labels };
}

const ids = (b: Batch) => Array.from({ length: b.size }, (_, i) => Math.round(b.xs[i * IMAGE_BYTES]! * 255));

async function collect(gen: AsyncIterable<Batch>): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of gen) out.push(b);
  return out;
}

describe('batches', () => {
  it('scales uint8 to float32 [0, 1] exactly as numpy does and one-hot encodes labels', () => {
    const set = numbered(3);
    set.images[5] = 255;
    const asm = new BatchAssembler(4);
    for (let i = 0; i < 3; i++) expect(asm.push(set, i)).toBeUndefined();
    const b = asm.flush()!;
    expect(b.size).toBe(3);
    expect(b.xs.length).toBe(3 * IMAGE_BYTES);
    expect(b.xs[5]).toBe(1);
    expect(b.xs[IMAGE_BYTES]).toBe(Math.fround(1 / 255));
    expect(Array.from(b.ys.subarray(10, 20))).toEqual([0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(b.labels)).toEqual([0, 1, 2]);
    expect(asm.flush()).toBeUndefined();
  });

  it('keeps validation order and ends with a short batch', () => {
    const bs = [...sequentialBatches(numbered(10), 4)];
    expect(bs.map((b) => b.size)).toEqual([4, 4, 2]);
    expect(bs.flatMap(ids)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('shuffles every epoch with the seeded rng: a permutation, reproducible, different next epoch', async () => {
    const set = numbered(50);
    const rng = new Rng(1);
    const e1 = (await collect(epochBatches({ train: set, batchSize: 16, rng }))).flatMap(ids);
    const e2 = (await collect(epochBatches({ train: set, batchSize: 16, rng }))).flatMap(ids);
    expect([...e1].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(e1).not.toEqual(e2);
    const again = (await collect(epochBatches({ train: set, batchSize: 16, rng: new Rng(1) }))).flatMap(ids);
    expect(again).toEqual(e1);
  });

  it('streams extra chunk by chunk, mixing it with train, each image once per epoch', async () => {
    const train = numbered(30);
    const extraAll = numbered(70, 100);
    let pulled = 0;
    const extra = {
      count: 70,
      async *chunks() {
        for (let s = 0; s < 70; s += 20) {
          pulled++;
          const idx = Array.from({ length: Math.min(20, 70 - s) }, (_, k) => s + k);
          yield gatherImages(extraAll, idx);
        }
      },
    };
    const gen = epochBatches({ train, extra, batchSize: 8, rng: new Rng(3) });
    const first = await gen.next();
    expect(pulled).toBe(1); // lazily: one chunk in memory when the first batch comes out
    const rest = await collect({ [Symbol.asyncIterator]: () => gen });
    const all = [first.value as Batch, ...rest].flatMap(ids);
    expect(all).toHaveLength(100);
    expect([...all].sort((a, b) => a - b)).toEqual([...Array.from({ length: 30 }, (_, i) => i), ...Array.from({ length: 70 }, (_, i) => 100 + i)].sort((a, b) => a - b));
    // Train images are spread over the epoch, not all at its start or end.
    const firstHalf = all.slice(0, 50).filter((v) => v < 30).length;
    expect(firstHalf).toBeGreaterThan(5);
    expect(firstHalf).toBeLessThan(25);
  });
});
