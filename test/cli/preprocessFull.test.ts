/**
 * `svhn preprocess --format full` through the real CLI: on a tiny synthetic photo sample made
 * here with the sample's own generator (a dozen photos, not --size small's 3000), and, where
 * ../shared/realsvhn exists, on its 256 real SVHN photos (read from there, never copied).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPhotoCache, readPhotoSplit } from '../../src/data/cache/photoCache.js';
import { parsePhotoLabels } from '../../src/data/images/photoLabels.js';
import { generateSyntheticPhotos } from '../../src/data/synthetic/photoSample.js';
import { LABEL_BYTES, boxToInput, letterboxOf, readLabelRecord } from '../../src/tasks/read/format.js';
import { svhnAsync } from '../helpers.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const REAL = resolve(REPO, '../shared/realsvhn');

let root: string;
const svhn = (...args: string[]) => svhnAsync([...args, '--log-format', 'json'], { cwd: root, timeoutMs: 120_000 });
const errorLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('svhn: error'));

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'svhn-cli-pre-full-'));
  await generateSyntheticPhotos({ dataDir: join(root, 'data'), size: 'small', seed: 7, splits: ['train', 'test'], counts: { train: 10, test: 4 } });
}, 120_000);
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('svhn preprocess --format full', () => {
  it('caches the photo sample under <data-dir>/full: train -> train + val, test -> test, marked synthetic; --json and the table', async () => {
    const r = await svhn('preprocess', '--format', 'full', '--data-dir', 'data', '--json');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ synthetic: true, options: { valFraction: 0.2, seed: 42 }, source: { kind: 'full' } });
    expect(out.splits.train.count).toBe(8);
    expect(out.splits.val.count).toBe(2);
    expect(out.splits.test.count).toBe(4);
    expect(out.cacheDir).toBe(join('data', 'cache-full'));
    expect(r.stderr).toMatch(/SYNTHETIC photos/);

    const cache = await openPhotoCache(join(root, 'data'), { verify: true });
    expect(cache.manifestSha256).toBe(out.manifestSha256);
    expect(existsSync(join(root, 'data', 'cache', 'manifest.json'))).toBe(false); // the digit cache is another folder
    // Each record is the sample's own boxes, mapped into the input.
    const rows = parsePhotoLabels(await readFile(join(root, 'data', 'full', 'test.csv'), 'utf8'), 'test.csv');
    const test = await readPhotoSplit(cache, 'test');
    test.photos!.forEach((p, i) => {
      const row = rows.find((r) => r.file === p.file)!;
      const lb = letterboxOf(p.width, p.height);
      expect(readLabelRecord(test.labels, i * LABEL_BYTES)).toEqual(row.boxes!.map((b) => boxToInput(b, lb, p.width, p.height).map(Math.round)));
    });

    const table = await svhn('preprocess', '--format', 'full', '--data-dir', 'data', '--seed', '3');
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toContain('WARNING: these are SYNTHETIC photos');
    expect(table.stdout).toMatch(/^train\s+8\s+\(8, 48, 96, 3\)\s+\(8, 25\)/m);
    expect(table.stdout).toMatch(/^test\s+4\s+\(4, 48, 96, 3\)\s+\(4, 25\)/m);
    expect(table.stdout).toContain('split: val 0.2 of the training photos, seed 3');
  });

  it('refuses the digit-only flags, and leaves the digit preprocess the default', async () => {
    const limit = await svhn('preprocess', '--format', 'full', '--data-dir', 'data', '--limit', '5');
    expect(limit.code).toBe(2);
    expect(errorLines(limit.stderr)).toEqual(['svhn: error: --limit: not used with --format full (it takes --data-dir, --labels, --test-labels, --val-fraction, --seed and --json)']);
    const digits = await svhn('preprocess', '--data-dir', 'data');
    expect(digits.code).toBe(1);
    expect(errorLines(digits.stderr)[0]).toMatch(/train_32x32\.mat not found/);
  });

  it('names what is wrong in a CSV of your own in one line', async () => {
    const r = await svhn('preprocess', '--format', 'full', '--labels', 'data/full/nothere.csv', '--data-dir', 'mine');
    expect(r.code).toBe(1);
    expect(errorLines(r.stderr)).toEqual([`svhn: error: cannot read data/full/nothere.csv: no such file or directory`]);
  });

  it.skipIf(!existsSync(join(REAL, 'photos.csv')))('caches the 256 real SVHN photos of ../shared/realsvhn (--labels): train + val, boxes on the digits', async () => {
    const r = await svhn('preprocess', '--format', 'full', '--labels', join(REAL, 'photos.csv'), '--data-dir', 'real', '--json');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.synthetic).toBe(false);
    expect(out.splits.train.count + out.splits.val.count).toBe(256);
    expect(out.splits.val.count).toBe(51);
    expect(out.source.train).toMatchObject({ rows: 256, used: 256, skipped: [] });
    expect(out.samplesPng).toBe(join('real', 'cache-full', 'samples.png'));

    const cache = await openPhotoCache(join(root, 'real'), { verify: true });
    const rows = parsePhotoLabels(await readFile(join(REAL, 'photos.csv'), 'utf8'), 'photos.csv');
    for (const split of ['train', 'val'] as const) {
      const s = await readPhotoSplit(cache, split);
      s.photos!.forEach((p, i) => {
        const row = rows.find((r) => r.file === p.file)!;
        expect(p.number).toBe(row.number);
        expect(s.labels[i * LABEL_BYTES]).toBe(row.number.length);
      });
    }
  });
});
