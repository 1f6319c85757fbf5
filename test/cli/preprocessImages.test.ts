/**
 * `svhn preprocess --images DIR / --labels FILE.csv` through the real CLI, on digit folders
 * made here with sharp (test/data/images/labelledHelpers.ts); and, where ../shared/realsvhn exists,
 * on 554 real SVHN digits against the .mat path.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMAGE_BYTES } from '../../src/config.js';
import type { DatasetManifest } from '../../src/data/cache/cacheFormat.js';
import { decodeImageFile } from '../../src/data/images/decode.js';
import { svhnSync } from '../helpers.js';
import { digitImage, writeDigitFolder, writeLabelsCsv, type FixtureFile } from '../data/images/labelledHelpers.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const REAL = resolve(REPO, '../shared/realsvhn');

let root: string;
let files: FixtureFile[];
const svhn = (cwd: string, ...args: string[]) => svhnSync([...args, '--log-format', 'json'], { cwd, timeoutMs: 90_000 });
const manifestOf = async (dataDir: string) => JSON.parse(await readFile(join(dataDir, 'cache', 'manifest.json'), 'utf8')) as DatasetManifest;
const errorLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('svhn: error'));

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'svhn-cli-pre-img-'));
  files = await writeDigitFolder(join(root, 'digits'), [6, 5, 5, 5, 5, 5, 5, 5, 5, 5]); // 51 images
  await writeFile(join(root, 'digits', '3', 'notes.txt'), 'not an image');
  await writeFile(join(root, 'digits', '8', 'broken.png'), Buffer.from('\x89PNG but then nothing'));
  await writeDigitFolder(join(root, 'test-digits'), 2, 77); // 20 images
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('svhn preprocess --images', () => {
  it('builds the cache from a folder: stratified split, the pixels predict sees, skipped files listed, source hashed; reused, then rebuilt when an image changes', async () => {
    const r = svhn(root, 'preprocess', '--images', 'digits', '--data-dir', 'a', '--val-fraction', '0.2');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^train\s+41\s+\(41, 32, 32, 3\)/m);
    expect(r.stdout).toMatch(/^val\s+10\s+\(10, 32, 32, 3\)/m);
    expect(r.stdout).not.toMatch(/^test /m);
    expect(r.stdout).toContain('train + val: folder digits, 53 files, 2 skipped');
    expect(r.stdout).toContain('skipped digits/3/notes.txt: not an image file name');
    expect(r.stdout).toMatch(/skipped digits\/8\/broken\.png: not a readable image/);
    expect(r.stdout).toContain('no test split');
    expect(r.stderr).toMatch(/"msg":"skipped digits\/8\/broken\.png: not a readable image/);

    const m = await manifestOf(join(root, 'a'));
    expect(m.synthetic).toBe(false);
    expect(m.splits.test).toBeUndefined();
    expect(m.sources.train).toMatchObject({ kind: 'folder', file: 'digits', files: 53, synthetic: false });
    expect(m.sources.train!.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(m.sources.train!.skipped!.map((s) => s.file)).toEqual(['digits/3/notes.txt', 'digits/8/broken.png']);
    // Stratified: every digit in val, in proportion (6 zeros -> 1 in val, as every other digit).
    expect(m.splits.val!.classCounts).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
    expect(m.splits.train!.classCounts).toEqual([5, 4, 4, 4, 4, 4, 4, 4, 4, 4]);
    expect(existsSync(join(root, 'a', 'cache', 'samples.png'))).toBe(true);

    // Each cached image is exactly what decodeImageFile (predict's decoder) makes of a file with that label.
    const decoded = new Map<string, number>();
    for (const f of files) decoded.set(Buffer.from(await decodeImageFile(join(root, 'digits', f.name))).toString('base64'), f.label);
    for (const split of ['train', 'val'] as const) {
      const images = await readFile(join(root, 'a', 'cache', `${split}.images.u8`));
      const labels = await readFile(join(root, 'a', 'cache', `${split}.labels.u8`));
      for (let i = 0; i < labels.length; i++) {
        expect(decoded.get(images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES).toString('base64')), `${split} #${i}`).toBe(labels[i]);
      }
    }

    const again = svhn(root, 'preprocess', '--images', 'digits', '--data-dir', 'a', '--val-fraction', '0.2', '--json');
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ reused: true, key: m.key, sources: { train: { kind: 'folder', files: 53 } } });

    // One image changes: a new source hash, a new key, a rebuilt cache.
    await writeFile(join(root, 'digits', '5', '00.webp'), await digitImage(5, { width: 30, height: 30, seed: 1234, format: 'webp' }));
    const changed = svhn(root, 'preprocess', '--images', 'digits', '--data-dir', 'a', '--val-fraction', '0.2', '--json');
    expect(changed.code).toBe(0);
    const summary = JSON.parse(changed.stdout);
    expect(summary.reused).toBe(false);
    expect(summary.key).not.toBe(m.key);
    expect(summary.sources.train.sha256).not.toBe(m.sources.train!.sha256);
  });

  it('reads a CSV for train + val and a second folder for test, with --limit and --val-limit', async () => {
    await writeLabelsCsv(join(root, 'lists', 'train.csv'), files.map((f) => [`../digits/${f.name}`, f.label]));
    const r = svhn(root, 'preprocess', '--labels', 'lists/train.csv', '--test-images', 'test-digits', '--data-dir', 'b', '--limit', '20', '--val-limit', '10', '--seed', '3', '--json');
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.splits).toMatchObject({ train: { count: 20 }, val: { count: 10 }, test: { count: 20 } });
    expect(s.splits.test.classCounts).toEqual([2, 2, 2, 2, 2, 2, 2, 2, 2, 2]);
    expect(s.splits.train.classCounts).toEqual([2, 2, 2, 2, 2, 2, 2, 2, 2, 2]);
    expect(s.sources.train).toMatchObject({ kind: 'csv', file: 'lists/train.csv', files: 51 });
    expect(s.sources.test).toMatchObject({ kind: 'folder', file: 'test-digits', files: 20, skipped: [] });
    expect(s.synthetic).toBe(false);
  });

  it('--strict refuses a file that does not decode, exit 1, and leaves no cache or temporary folder', async () => {
    const r = svhn(root, 'preprocess', '--images', 'digits', '--data-dir', 'strict', '--strict');
    expect(r.code).toBe(1);
    expect(errorLines(r.stderr)).toEqual(['svhn: error: digits/3/notes.txt: not an image file name (.txt; expected .png .jpg .jpeg .webp .gif .bmp .tif .tiff); remove or fix the file, or drop --strict to skip unreadable files']);
    expect(existsSync(join(root, 'strict', 'cache'))).toBe(false);
    expect(existsSync(join(root, 'strict')) ? await readdir(join(root, 'strict')) : []).toEqual([]);

    // An up-to-date cache built without --strict is refused too: its skipped files are still there.
    expect(svhn(root, 'preprocess', '--images', 'digits', '--data-dir', 'a', '--val-fraction', '0.2').code).toBe(0);
    const reused = svhn(root, 'preprocess', '--images', 'digits', '--data-dir', 'a', '--val-fraction', '0.2', '--strict');
    expect(reused.code).toBe(1);
    expect(errorLines(reused.stderr)).toHaveLength(1);
    expect(reused.stderr).toMatch(/svhn: error: digits\/3\/notes\.txt: not an image file name/);
  });

  it('answers each bad input with one line naming the file, folder or line, a non-zero exit and no cache', async () => {
    const bad = join(root, 'bad');
    await mkdir(bad, { recursive: true });
    const list = files.slice(0, 12).map((f): [string, number | string] => [`../digits/${f.name}`, f.label]);
    await writeLabelsCsv(join(bad, 'label11.csv'), [...list, ['../digits/1/00.jpg', 11]]);
    await writeLabelsCsv(join(bad, 'twice.csv'), [...list, [list[3]![0], list[3]![1]]]);
    await writeDigitFolder(join(bad, 'no7'), [1, 1, 1, 1, 1, 1, 1, 0, 1, 1]);
    await writeDigitFolder(join(bad, 'ten'), 1);
    await mkdir(join(bad, 'ten', '10'));
    await writeDigitFolder(join(bad, 'broken4'), 1);
    await rm(join(bad, 'broken4', '4'), { recursive: true });
    await mkdir(join(bad, 'broken4', '4'));
    await writeFile(join(bad, 'broken4', '4', 'a.png'), 'not a png');
    execFileSync('mkfifo', [join(bad, 'pipe.csv')]);
    const cases: Array<[string[], RegExp | string, number]> = [
      [['--labels', 'bad/label11.csv'], `bad/label11.csv line 14: label '11' for ../digits/1/00.jpg: expected a digit 0..9`, 1],
      [['--labels', 'bad/twice.csv'], `bad/twice.csv line 14: ${list[3]![0]} is listed twice (first on line 5); keep one row per file`, 1],
      [['--images', 'bad/no7'], '--images bad/no7: no images for digit 7: bad/no7/7 has no files for it; a training set needs every digit 0..9', 1],
      [['--images', 'bad/broken4'], /--images bad\/broken4: no images for digit 4: all 1 of its files were skipped \(bad\/broken4\/4\/a\.png: not a readable image/, 1],
      [['--images', 'bad/ten'], `--images bad/ten: folder '10' is not a digit: expected class folders named 0..9`, 1],
      [['--images', 'bad/nowhere'], '--images bad/nowhere: no such folder', 1],
      [['--labels', 'bad/nowhere.csv'], '--labels bad/nowhere.csv: no such file', 1],
      [['--labels', 'bad/pipe.csv'], '--labels bad/pipe.csv: expected a CSV file of path,label rows, got a FIFO', 1],
      [['--images', 'bad/pipe.csv'], '--images bad/pipe.csv: expected a folder with subfolders 0..9, got a FIFO', 1],
      [['--images', 'digits', '--labels', 'bad/twice.csv'], `option '--images <dir>' cannot be used with option '--labels <file.csv>'`, 2],
      [['--images', 'digits', '--test-labels', 'bad/label11.csv'], `bad/label11.csv line 14: label '11' for ../digits/1/00.jpg: expected a digit 0..9`, 1],
      [['--images', 'digits', '--test-images', 'bad/ten'], `--test-images bad/ten: folder '10' is not a digit`, 1],
      [['--test-images', 'test-digits'], '--test-images: a test set from images goes with a training set from images', 2],
      [['--images', 'digits', '--extra'], '--extra: caches extra_32x32.mat, not used with --images', 2],
    ];
    for (const [args, message, code] of cases) {
      const r = svhn(root, 'preprocess', ...args, '--data-dir', 'bad-out');
      const lines = errorLines(r.stderr);
      expect(lines, args.join(' ')).toHaveLength(1);
      if (typeof message === 'string') expect(lines[0], args.join(' ')).toContain(message);
      else expect(lines[0], args.join(' ')).toMatch(message);
      expect(r.code, args.join(' ')).toBe(code);
      expect(r.stderr, args.join(' ')).not.toMatch(/\n\s+at /); // no stack trace
    }
    expect(existsSync(join(root, 'bad-out', 'cache'))).toBe(false);
    expect(existsSync(join(root, 'bad-out')) ? await readdir(join(root, 'bad-out')) : []).toEqual([]);
  });
});

describe.skipIf(!existsSync(REAL))('svhn preprocess on real SVHN digits (../shared/realsvhn)', () => {
  it('--labels labels.csv caches byte for byte what the .mat path caches from the same 554 digits; --images digits/ holds the same images', async () => {
    const cwd = join(root, 'real');
    await mkdir(join(cwd, 'mat'), { recursive: true });
    // The .mat path needs a test file too: the same file stands in (only train and val are compared).
    await symlink(join(REAL, 'train_32x32.mat'), join(cwd, 'mat', 'train_32x32.mat'));
    await symlink(join(REAL, 'train_32x32.mat'), join(cwd, 'mat', 'test_32x32.mat'));
    const fromMat = svhn(cwd, 'preprocess', '--data-dir', 'mat', '--json');
    const fromCsv = svhn(cwd, 'preprocess', '--labels', join(REAL, 'labels.csv'), '--data-dir', 'csv', '--json', '--strict');
    const fromDir = svhn(cwd, 'preprocess', '--images', join(REAL, 'digits'), '--data-dir', 'dir', '--json', '--strict');
    for (const r of [fromMat, fromCsv, fromDir]) expect(r.code, r.stderr).toBe(0);
    const [m, c, d] = [fromMat, fromCsv, fromDir].map((r) => JSON.parse(r.stdout));
    // README: digits per class 32, 112, 79, 72, 55, 53, 34, 36, 43, 38.
    const total = (s: { splits: Record<string, { classCounts: number[] }> }) => s.splits.train!.classCounts.map((n, k) => n + s.splits.val!.classCounts[k]!);
    for (const s of [m, c, d]) expect(total(s)).toEqual([32, 112, 79, 72, 55, 53, 34, 36, 43, 38]);
    expect(c.sources.train).toMatchObject({ kind: 'csv', files: 554, skipped: [] });
    // labels.csv lists the digits in the .mat's order: the same split, the same bytes.
    for (const f of ['train.images.u8', 'train.labels.u8', 'val.images.u8', 'val.labels.u8']) {
      expect((await readFile(join(cwd, 'csv', 'cache', f))).equals(await readFile(join(cwd, 'mat', 'cache', f))), f).toBe(true);
    }
    // The folder lists digit by digit, so its split differs; the images are the same set.
    const images = async (dir: string) => {
      const all: string[] = [];
      for (const split of ['train', 'val']) {
        const b = await readFile(join(cwd, dir, 'cache', `${split}.images.u8`));
        for (let i = 0; i < b.length; i += IMAGE_BYTES) all.push(b.subarray(i, i + IMAGE_BYTES).toString('base64'));
      }
      return all.sort();
    };
    expect(await images('dir')).toEqual(await images('mat'));
  });
});
