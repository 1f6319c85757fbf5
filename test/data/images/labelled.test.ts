import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMAGE_BYTES } from '../../../src/config.js';
import { decodeImageFile } from '../../../src/data/images/decode.js';
import { decodeLabelledImages, hashLabelledImages, listLabelledImages, parseCsvLine, type LabelledSource } from '../../../src/data/images/labelled.js';
import { rejection } from '../../helpers.js';
import { digitImage, writeDigitFolder, writeLabelsCsv } from './labelledHelpers.js';

let tmp: string;
const folder = (path: string): LabelledSource => ({ kind: 'folder', path, flag: '--images' });
const csv = (path: string): LabelledSource => ({ kind: 'csv', path, flag: '--labels' });

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'svhn-labelled-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('parseCsvLine', () => {
  it('splits on commas, trims, and reads quoted fields with commas and doubled quotes', () => {
    expect(parseCsvLine('a.png,3')).toEqual(['a.png', '3']);
    expect(parseCsvLine(' a b.png , 3 ')).toEqual(['a b.png', '3']);
    expect(parseCsvLine('"x, ""y"".png",7')).toEqual(['x, "y".png', '7']);
    expect(parseCsvLine('a.png,3,extra')).toEqual(['a.png', '3', 'extra']);
    expect(parseCsvLine('"open.png,3')).toBeNull();
  });
});

describe('listLabelledImages: a folder of digit folders', () => {
  it('lists digit by digit, names sorted, subfolders walked; dotfiles and files beside the digit folders are not in the set', async () => {
    const root = join(tmp, 'list');
    await writeDigitFolder(root, 1);
    await mkdir(join(root, '4', 'more'));
    await writeFile(join(root, '4', 'more', 'a.png'), await digitImage(4, { width: 8, height: 8, seed: 1 }));
    await writeFile(join(root, '2', '.DS_Store'), 'x');
    await writeFile(join(root, '2', 'notes.txt'), 'x');
    await writeFile(join(root, 'README.md'), 'x');
    const { files } = await listLabelledImages(folder(root));
    const names = files.map((f) => f.name);
    expect(names).toEqual(['0/00.png', '1/00.jpg', '2/00.webp', '2/notes.txt', '3/00.png', '4/00.jpg', '4/more/a.png', '5/00.webp', '6/00.png', '7/00.jpg', '8/00.webp', '9/00.png']);
    expect(files.map((f) => f.label)).toEqual([0, 1, 2, 2, 3, 4, 4, 5, 6, 7, 8, 9]);
    expect(files.find((f) => f.name === '2/notes.txt')!.skipReason).toMatch(/not an image file name \(\.txt/);
    expect(files.filter((f) => f.skipReason)).toHaveLength(1);
  });

  it('walks each folder once: a symlink loop or a link to another digit is a skipped entry', async () => {
    const root = join(tmp, 'loops');
    await writeDigitFolder(root, 1);
    await symlink('.', join(root, '3', 'self'));
    await symlink('..', join(root, '4', 'up'));
    await symlink('../5', join(root, '4', 'five'));
    const { files } = await listLabelledImages(folder(root));
    expect(files.map((f) => f.name)).toEqual(['0/00.png', '1/00.jpg', '2/00.webp', '3/00.png', '3/self', '4/00.jpg', '4/five', '4/up', '5/00.webp', '6/00.png', '7/00.jpg', '8/00.webp', '9/00.png']);
    expect(files.filter((f) => f.skipReason).map((f) => f.skipReason)).toEqual(new Array(3).fill('a folder already walked (a symlink loop, or a second link to the same folder)'));
  }, 10_000);

  it('refuses a folder that is not a digit, a missing folder and a file', async () => {
    const root = join(tmp, 'ten');
    await writeDigitFolder(root, 1);
    await mkdir(join(root, '10'));
    expect((await rejection(listLabelledImages(folder(root)))).message).toBe(`--images ${root}: folder '10' is not a digit: expected class folders named 0..9`);
    expect((await rejection(listLabelledImages(folder(join(tmp, 'nowhere'))))).message).toMatch(/--images .*nowhere: no such folder/);
    await writeFile(join(tmp, 'afile'), 'x');
    expect((await rejection(listLabelledImages(folder(join(tmp, 'afile'))))).message).toMatch(/expected a folder with subfolders 0\.\.9, got a file/);
  });
});

describe('listLabelledImages: a CSV', () => {
  it('reads rows relative to its folder, skips a header, accepts CRLF, a BOM and absolute paths', async () => {
    const dir = join(tmp, 'csv-ok');
    await mkdir(dir);
    await writeFile(join(dir, 'l.csv'), `\uFEFFfile,label\r\nimgs/a.png,3\r\n\r\n"imgs/b, c.png",0\r\n${join(tmp, 'abs.png')},9\r\n`);
    const { files } = await listLabelledImages(csv(join(dir, 'l.csv')));
    expect(files.map((f) => [f.path, f.label, f.line])).toEqual([
      [join(dir, 'imgs/a.png'), 3, 2],
      [join(dir, 'imgs/b, c.png'), 0, 4],
      [join(tmp, 'abs.png'), 9, 5],
    ]);
    // Without a header the first row is data.
    await writeLabelsCsv(join(dir, 'nohead.csv'), [['a.png', 1]], false);
    expect((await listLabelledImages(csv(join(dir, 'nohead.csv')))).files.map((f) => f.label)).toEqual([1]);
  });

  it('names the line of a label outside 0..9, a duplicate, a malformed row; refuses an empty CSV', async () => {
    const dir = join(tmp, 'csv-bad');
    const cases: Array<[Array<[string, number | string]>, RegExp]> = [
      [[['a.png', 1], ['b.png', 10]], /bad\.csv line 3: label '10' for b\.png: expected a digit 0\.\.9; .*write it as 0/],
      [[['a.png', 1], ['b.png', -1]], /bad\.csv line 3: label '-1' for b\.png: expected a digit 0\.\.9$/],
      [[['a.png', 1], ['b.png', 'x']], /bad\.csv line 3: label 'x'/],
      [[['a.png', 1], ['b.png', 2], ['./a.png', 3]], /bad\.csv line 4: \.\/a\.png is listed twice \(first on line 2\)/],
      [[['a.png', '1,2']], /bad\.csv line 2: expected 2 fields 'path,label', got 3/],
      [[[' ', 4]], /bad\.csv line 2: the path is empty/],
      [[], /bad\.csv: no rows/],
    ];
    for (const [rows, message] of cases) {
      await writeLabelsCsv(join(dir, 'bad.csv'), rows);
      const e = await rejection(listLabelledImages(csv(join(dir, 'bad.csv'))));
      expect(e.code).toBe('BAD_INPUT');
      expect(e.suggestion ? `${e.message}; ${e.suggestion}` : e.message).toMatch(message);
    }
  });
});

describe('hashLabelledImages', () => {
  it('changes with a pixel or a label, not with where the folder lives', async () => {
    const root = join(tmp, 'hash');
    await writeDigitFolder(root, 1, 5);
    const h1 = await hashLabelledImages(await listLabelledImages(folder(root)));
    expect(h1.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(h1.bytes).toBeGreaterThan(0);
    await rename(root, join(tmp, 'hash-moved'));
    const moved = await hashLabelledImages(await listLabelledImages(folder(join(tmp, 'hash-moved'))));
    expect(moved).toEqual(h1);

    await writeFile(join(tmp, 'hash-moved', '3', '00.png'), await digitImage(3, { width: 20, height: 20, seed: 99 }));
    const changed = await hashLabelledImages(await listLabelledImages(folder(join(tmp, 'hash-moved'))));
    expect(changed.sha256).not.toBe(h1.sha256);

    await writeLabelsCsv(join(tmp, 'hash-moved', 'a.csv'), [['3/00.png', 3]]);
    await writeLabelsCsv(join(tmp, 'hash-moved', 'b.csv'), [['3/00.png', 4]]);
    const [a, b] = await Promise.all(['a.csv', 'b.csv'].map(async (f) => hashLabelledImages(await listLabelledImages(csv(join(tmp, 'hash-moved', f))))));
    expect(a!.sha256).not.toBe(b!.sha256);
  });
});

describe('decodeLabelledImages', () => {
  let root: string;
  beforeAll(async () => {
    root = join(tmp, 'decode');
    await writeDigitFolder(root, [2, 1, 1, 1, 1, 1, 1, 1, 1, 1], 9);
    await writeFile(join(root, '5', 'broken.png'), Buffer.from('not a png at all'));
    await writeFile(join(root, '6', 'readme.txt'), 'x');
  });

  it('gives the pixels predict decodes, in listing order, and skips what does not decode with its reason', async () => {
    const listing = await listLabelledImages(folder(root));
    const set = await decodeLabelledImages(listing, { requireEveryDigit: true, progress: 'silent' });
    expect(set.count).toBe(11);
    expect(Array.from(set.labels)).toEqual([0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(set.classCounts).toEqual([2, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
    expect(set.images.length).toBe(11 * IMAGE_BYTES);
    for (let i = 0; i < set.count; i++) {
      expect(Buffer.from(set.images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES)).equals(await decodeImageFile(set.files[i]!)), set.files[i]).toBe(true);
    }
    expect(set.skipped.map((s) => [s.file, s.label])).toEqual([
      [join(root, '5', 'broken.png'), 5],
      [join(root, '6', 'readme.txt'), 6],
    ]);
    expect(set.skipped[0]!.reason).toMatch(/^not a readable image/);
    expect(set.skipped[1]!.reason).toMatch(/^not an image file name/);
  });

  it('with strict, refuses the first file that does not decode, naming it', async () => {
    const e = await rejection(decodeLabelledImages(await listLabelledImages(folder(root)), { strict: true, progress: 'silent' }));
    expect(e.message).toMatch(new RegExp(`^${join(root, '5', 'broken.png')}: not a readable image`));
    expect(e.suggestion).toMatch(/--strict/);
  });

  it('names a digit without images when every digit is required, whether its files are missing or all skipped', async () => {
    const dir = join(tmp, 'nodigit');
    await writeDigitFolder(dir, [1, 1, 1, 1, 1, 1, 1, 0, 1, 1]);
    const e = await rejection(decodeLabelledImages(await listLabelledImages(folder(dir)), { requireEveryDigit: true, progress: 'silent' }));
    expect(e.message).toBe(`--images ${dir}: no images for digit 7: ${join(dir, '7')} has no files for it; a training set needs every digit 0..9 (the train/val split is stratified and the model has 10 outputs)`);
    // Not required (a test set): the digit is simply absent.
    const set = await decodeLabelledImages(await listLabelledImages(folder(dir)), { progress: 'silent' });
    expect(set.classCounts[7]).toBe(0);

    await writeFile(join(dir, '7', 'bad.png'), 'x');
    const e2 = await rejection(decodeLabelledImages(await listLabelledImages(folder(dir)), { requireEveryDigit: true, progress: 'silent' }));
    expect(e2.message).toMatch(/no images for digit 7: all 1 of its files were skipped \(.*bad\.png: /);
  });

  it('names the CSV line of a file it cannot read under strict', async () => {
    const dir = join(tmp, 'csv-missing');
    await writeLabelsCsv(join(dir, 'l.csv'), [['gone.png', 2]]);
    const e = await rejection(decodeLabelledImages(await listLabelledImages(csv(join(dir, 'l.csv'))), { strict: true, progress: 'silent' }));
    expect(e.message).toBe(`${join(dir, 'gone.png')} (${join(dir, 'l.csv')} line 2): cannot read: no such file`);
  });
});
