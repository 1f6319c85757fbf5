/**
 * `svhn predict --shard I/N` (issue 24, 7) through the real CLI (bin/svhn.js runs dist/: build
 * first): the N shards' rows, concatenated in shard order, are one run's rows.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveColourModel, solidRgb } from '../predict/helpers.js';
import { svhnAsync } from '../helpers.js';
import { writeSvhnMat } from '../../src/data/mat/matWriter.js';

const svhn = (args: string[], cwd: string) => svhnAsync(args, { cwd, timeoutMs: 60_000 });
const BASE = ['--model', 'model', '--backend', 'cpu'];

/** CSV text -> its data lines (the header dropped). */
const body = (csv: string) => csv.split('\n').slice(1).filter((l) => l !== '');

describe('svhn predict --shard', () => {
  let dir: string;
  // Sorted walk with --recursive: a0..a8.png, sub/z.png, x_corrupt.png (11), then many.mat#0..4: 16 inputs.
  const INPUTS = ['imgs', '--recursive', 'five.mat'];
  const TOTAL = 16;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'svhn-cli-shard-'));
    await saveColourModel(join(dir, 'model'));
    await mkdir(join(dir, 'imgs', 'sub'), { recursive: true });
    const png = (d: number) => sharp(solidRgb(d, 12, 9), { raw: { width: 12, height: 9, channels: 3 } }).png().toBuffer();
    for (let i = 0; i < 9; i++) await writeFile(join(dir, 'imgs', `a${i}.png`), await png(i));
    await writeFile(join(dir, 'imgs', 'sub', 'z.png'), await png(9));
    await writeFile(join(dir, 'imgs', 'x_corrupt.png'), (await png(3)).subarray(0, 40));
    const digits = Uint8Array.from([7, 1, 0, 5, 2]);
    await writeSvhnMat(join(dir, 'five.mat'), { count: digits.length, chunks: [{ images: Buffer.concat(Array.from(digits, (d) => solidRgb(d, 32, 32))), labels: digits }], level: 1 });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('3 shards of a folder and a .mat: CSV rows and JSONL bytes concatenated equal one run', async () => {
    const whole = await svhn(['predict', ...INPUTS, ...BASE], dir);
    expect(whole.code, whole.stderr).toBe(3); // x_corrupt.png
    const wholeRows = body(whole.stdout);
    expect(wholeRows).toHaveLength(TOTAL);
    const wholeJsonl = await svhn(['predict', ...INPUTS, ...BASE, '--format', 'jsonl', '--out', 'whole.jsonl'], dir);
    expect(wholeJsonl.code, wholeJsonl.stderr).toBe(3);

    const csvRows: string[] = [];
    const jsonl: Buffer[] = [];
    // Shard I gets [floor(16*I/3), floor(16*(I+1)/3)): [0,5) [5,10) [10,16); x_corrupt.png is input 10.
    const sizes = [5, 5, 6];
    for (let i = 0; i < 3; i++) {
      const csv = await svhn(['predict', ...INPUTS, ...BASE, '--shard', `${i}/3`, '--grid', `grid${i}.png`, '--grid-count', '4'], dir);
      expect(csv.code, csv.stderr).toBe(i === 2 ? 3 : 0);
      expect(csv.stdout.split('\n')[0]).toMatch(/^input,predicted,/); // each shard's CSV has its header
      const rows = body(csv.stdout);
      expect(rows).toHaveLength(sizes[i]!);
      csvRows.push(...rows);
      // The summary counts the shard's items; the corrupt file is never read by the shards that skip it.
      expect(csv.stderr).toMatch(new RegExp(`predicted ${i === 2 ? sizes[i]! - 1 : sizes[i]} of ${sizes[i]} inputs \\(shard ${i}/3 of ${TOTAL}\\)`));
      if (i < 2) expect(csv.stderr).not.toMatch(/x_corrupt/);
      expect((await sharp(join(dir, `grid${i}.png`)).metadata()).format).toBe('png');

      const j = await svhn(['predict', ...INPUTS, ...BASE, '--shard', `${i}/3`, '--format', 'jsonl', '--out', `shard${i}.jsonl`], dir);
      expect(j.code, j.stderr).toBe(i === 2 ? 3 : 0);
      jsonl.push(await readFile(join(dir, `shard${i}.jsonl`)));
    }
    expect(csvRows).toEqual(wholeRows);
    expect(Buffer.concat(jsonl).equals(await readFile(join(dir, 'whole.jsonl')))).toBe(true);
    // The shards are where the formula puts them: shard 1 starts at a5.png, shard 2 with the corrupt file.
    expect(csvRows[5]!.split(',')[0]).toBe(join('imgs', 'a5.png'));
    expect(csvRows[10]!.split(',')[0]).toBe(join('imgs', 'x_corrupt.png'));
  });

  it('more shards than inputs: the empty shards write just the header (CSV) or nothing (JSONL) and exit 0', async () => {
    const inputs = ['imgs/a0.png', 'imgs/a1.png'];
    const whole = await svhn(['predict', ...inputs, ...BASE], dir);
    expect(whole.code, whole.stderr).toBe(0);
    const rows: string[] = [];
    // 2 inputs over 5 shards: [0,0) [0,0) [0,1) [1,1) [1,2)
    for (let i = 0; i < 5; i++) {
      const r = await svhn(['predict', ...inputs, ...BASE, '--shard', `${i}/5`], dir);
      expect(r.code, r.stderr).toBe(0);
      const empty = i !== 2 && i !== 4;
      expect(body(r.stdout)).toHaveLength(empty ? 0 : 1);
      if (empty) {
        expect(r.stdout).toMatch(/^input,predicted,[^\n]*\n$/);
        expect(r.stderr).toMatch(new RegExp(`shard ${i}/5 is empty: only 2 inputs for 5 shards`));
      }
      rows.push(...body(r.stdout));
    }
    expect(rows).toEqual(body(whole.stdout));
    const j = await svhn(['predict', ...inputs, ...BASE, '--shard', '3/5', '--format', 'jsonl', '--out', 'empty.jsonl'], dir);
    expect(j.code, j.stderr).toBe(0);
    expect(await readFile(join(dir, 'empty.jsonl'), 'utf8')).toBe('');
  });

  it('bad values are one line naming --shard and exit 2', async () => {
    for (const bad of ['3/3', '1', 'a/b', '-1/3', '0/0']) {
      const r = await svhn(['predict', 'imgs', ...BASE, '--shard', bad], dir);
      expect(r.code, `${bad}: ${r.stderr}`).toBe(2);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trim().split('\n');
      expect(lines, bad).toHaveLength(1);
      expect(lines[0]).toMatch(/^svhn: error: .*--shard.*expected I\/N.*counted from 0/);
      expect(lines[0]).toContain(`'${bad}'`);
    }
  });
});
