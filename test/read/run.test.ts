/**
 * runRead with a test double for the reader (./fakeReader.ts): rows, abstention, photos with
 * no number, failures, boxes after the 1600 px downscale, --draw, and the refusals.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runRead, type ReadRunOptions } from '../../src/read/run.js';
import type { Reading } from '../../src/tasks/read/reading.js';
import { rejection } from '../helpers.js';
import { FixedReader } from './fakeReader.js';

/** A Writable that keeps what it was given. */
function collector(): Writable & { text: () => string } {
  const chunks: string[] = [];
  const w = new Writable({ write: (c, _e, done) => (chunks.push(String(c)), done()) });
  return Object.assign(w, { text: () => chunks.join('') });
}

const solid = (w: number, h: number, background: string) => sharp({ create: { width: w, height: h, channels: 3, background } }).png().toBuffer();

// Readings by the size of the photo the reader receives (boxes in that photo's pixels).
const ANSWERS: Record<string, Reading> = {
  '100x50': { number: '12', confidence: 0.9, digits: [{ digit: 1, confidence: 0.95, box: [10, 10, 40, 45] }, { digit: 2, confidence: 0.947, box: [45, 10, 80, 45] }] },
  '60x40': { number: '', confidence: 0.8, digits: [] },
  '80x40': { number: '7', confidence: 0.3, digits: [{ digit: 7, confidence: 0.3, box: [20, 5, 50, 35] }] },
  // big.png is 2000x1000: the reader sees it at 1600x800, and its box must come back x1.25.
  '1600x800': { number: '5', confidence: 0.99, digits: [{ digit: 5, confidence: 0.99, box: [160, 80, 320, 400] }] },
};

describe('runRead (test double reader)', () => {
  let dir: string;
  const opts = (extra: Partial<ReadRunOptions>): ReadRunOptions => ({ inputs: [join(dir, 'photos')], format: 'csv', recursive: false, progress: 'silent', ...extra });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'svhn-read-run-'));
    const photos = join(dir, 'photos');
    await mkdir(photos);
    await writeFile(join(photos, 'a.png'), await solid(100, 50, '#808080'));
    await writeFile(join(photos, 'b.jpg'), await sharp({ create: { width: 60, height: 40, channels: 3, background: '#204060' } }).jpeg().toBuffer());
    await writeFile(join(photos, 'c.png'), await solid(80, 40, '#a0a0a0'));
    await writeFile(join(photos, 'd_bad.png'), (await solid(30, 30, '#000')).subarray(0, 50));
    await writeFile(join(photos, 'e_big.png'), await solid(2000, 1000, '#305030'));
    await mkdir(join(dir, 'model'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes one CSV row per photo in name order: numbers, no number, abstained, a failure, boxes in the original pixels', async () => {
    const reader = new FixedReader(ANSWERS);
    const out = collector();
    const summary = await runRead(opts({ reader, stream: out, minConfidence: 0.5 }));
    const p = (n: string) => join(dir, 'photos', n);
    expect(out.text().split('\n')).toEqual([
      'input,number,confidence,boxes,digit_confidences,abstained,best,error',
      `${p('a.png')},12,0.9000,10 10 40 45;45 10 80 45,0.9500;0.9470,false,12,`,
      `${p('b.jpg')},,0.8000,,,false,,`,
      `${p('c.png')},,0.3000,20 5 50 35,0.3000,true,7,`,
      expect.stringMatching(new RegExp(`^${p('d_bad.png')},,,,,false,,not a readable image: `)),
      `${p('e_big.png')},5,0.9900,200 100 400 500,0.9900,false,5,`,
      '',
    ]);
    expect(reader.seen).toContainEqual([1600, 800]); // scaled down before the reader saw it
    expect(summary).toMatchObject({ total: 5, read: 4, withNumber: 2, noNumber: 1, abstained: 1, failed: 1, drawn: 0, reader: 'fixed-test-double', backend: null });
    expect(reader.disposed).toBe(false); // an injected reader stays its owner's
  });

  it('writes JSON lines to --out', async () => {
    const summary = await runRead(opts({ reader: new FixedReader(ANSWERS), format: 'jsonl', out: join(dir, 'out', 'rows.jsonl'), inputs: [join(dir, 'photos', 'a.png'), join(dir, 'photos', 'e_big.png')] }));
    const rows = (await readFile(join(dir, 'out', 'rows.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(rows[0]).toEqual({
      input: join(dir, 'photos', 'a.png'),
      number: '12',
      confidence: 0.9,
      digits: [{ digit: 1, confidence: 0.95, box: [10, 10, 40, 45] }, { digit: 2, confidence: 0.947, box: [45, 10, 80, 45] }],
      abstained: false,
      best: '12',
      error: null,
    });
    expect(rows[1].digits[0].box).toEqual([200, 100, 400, 500]);
    expect(summary.failed).toBe(0);
  });

  it('--draw: one PNG per photo read, at the photo\'s own size, with the boxes drawn', async () => {
    const drawDir = join(dir, 'drawn');
    const summary = await runRead(opts({ reader: new FixedReader(ANSWERS), stream: collector(), draw: drawDir }));
    expect(summary.drawn).toBe(4);
    expect((await readdir(drawDir)).sort()).toEqual(['a.png', 'b.png', 'c.png', 'e_big.png']);
    const { data, info } = await sharp(join(drawDir, 'a.png')).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([100, 50]);
    const at = (x: number, y: number) => Array.from(data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3));
    // Along the first box's bottom edge (y 45) the grey photo is marked; far from any mark it is not.
    for (const x of [15, 25, 35]) expect(at(x, 45), `x ${x}`).not.toEqual([128, 128, 128]);
    expect(at(95, 48)).toEqual([128, 128, 128]);
    const big = await sharp(join(drawDir, 'e_big.png')).metadata();
    expect([big.width, big.height]).toEqual([2000, 1000]); // the original size, boxes in its pixels
  });

  it('refuses crops for inputs, and outputs that would overwrite an input or the model, before the reader reads', async () => {
    const reader = new FixedReader(ANSWERS);
    expect((await rejection(runRead(opts({ reader, inputs: ['cache:test'] })))).message).toMatch(/^INPUT cache:test: svhn read takes photos, not the preprocess cache's 32x32 digit crops/);
    await writeFile(join(dir, 'crops.mat'), 'x');
    expect((await rejection(runRead(opts({ reader, inputs: [join(dir, 'crops.mat')] })))).message).toMatch(/not a \.mat file of 32x32 digit crops/);
    const inModel = await rejection(runRead(opts({ reader, model: join(dir, 'model'), draw: join(dir, 'model', 'drawn') })));
    expect(inModel.message).toMatch(/^--draw .*: expected a folder outside the model directory/);
    expect((await rejection(runRead(opts({ reader, draw: join(dir, 'photos') })))).message).toMatch(/^--draw .*: expected a folder outside the input folder/);
    const fileInput = await rejection(runRead(opts({ reader, inputs: [join(dir, 'photos', 'a.png')], draw: join(dir, 'photos') })));
    expect(fileInput.message).toMatch(/expected a folder other than the one holding the input .*a\.png/);
    const out = await rejection(runRead(opts({ reader, out: join(dir, 'photos', 'a.png') })));
    expect(out.message).toMatch(/^--out .*a\.png: expected a file that is not an input/);
    expect((await rejection(runRead(opts({ reader, minConfidence: 1.5 })))).code).toBe('BAD_FLAG');
    expect(reader.seen).toEqual([]);
  });

  it('--shard I/N: the N shards\' rows, concatenated in order, are one run\'s rows; an empty shard writes a header only', async () => {
    const whole = collector();
    await runRead(opts({ reader: new FixedReader(ANSWERS), stream: whole }));
    const rows = whole.text().trim().split('\n');
    expect(rows.length).toBeGreaterThan(3); // a header and a few photos
    for (const count of [2, 3, 7]) {
      const parts: string[] = [];
      for (let index = 0; index < count; index++) {
        const out = collector();
        const summary = await runRead(opts({ reader: new FixedReader(ANSWERS), stream: out, shard: { index, count } }));
        expect(summary.shard).toMatchObject({ index, count, inputs: rows.length - 1 });
        const lines = out.text().trim().split('\n');
        expect(lines[0]).toBe(rows[0]); // every shard's output has the header
        parts.push(...lines.slice(1));
      }
      expect(parts, `${count} shards`).toEqual(rows.slice(1));
    }
    expect((await rejection(runRead(opts({ reader: new FixedReader(ANSWERS), shard: { index: 2, count: 2 } })))).code).toBe('BAD_FLAG');
  });
});
