/**
 * A format-1 archive into <out>/<split>/ and <out>/<split>.csv, against the archives h5py and
 * Python's tarfile wrote (test/fixtures/full/make_full_fixtures.py): the CSV rows it must hold,
 * the photos byte for byte, a second run that changes nothing, and one clear line for each kind
 * of bad archive, with nothing left behind.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parsePhotoLabels } from '../../../src/data/images/photoLabels.js';
import { extractArchive } from '../../../src/data/sources/extractArchive.js';
import { withPngText } from '../../../src/data/synthetic/photoSample.js';
import { rejection } from '../../helpers.js';

const FIXTURES = resolve(import.meta.dirname, '../../fixtures/full');
const fixture = (name: string) => join(FIXTURES, name);
const EXPECTED = JSON.parse(await readFile(fixture('expected.json'), 'utf8')) as Record<string, { rows: { file: string; number: string; boxes: number[][] }[] }>;

let out: string;
beforeEach(async () => {
  out = await mkdtemp(join(tmpdir(), 'svhn-extract-'));
});
afterEach(async () => {
  await rm(out, { recursive: true, force: true });
});

describe('extractArchive', () => {
  it('writes the photos and a CSV in digitStruct order, boxes rounded and clipped', async () => {
    const result = await extractArchive({ archive: fixture('train.tar.gz'), split: 'train', outDir: out });
    expect(result).toMatchObject({ status: 'extracted', photos: 3, digits: 6, clipped: 2 });
    const csv = await readFile(join(out, 'train.csv'), 'utf8');
    const rows = parsePhotoLabels(csv, 'train.csv');
    expect(rows.map(({ file, number, boxes }) => ({ file, number, boxes }))).toEqual(EXPECTED['train']!.rows);
    expect(csv.split('\n').slice(0, 3)).toEqual(['file,number,boxes', 'train/1.png,19,3 2 9 12;9 2 16 13', 'train/2.png,0,0 1 7 11']);
    expect((await readdir(out)).sort()).toEqual(['train', 'train.csv']);
    expect((await readdir(join(out, 'train'))).sort()).toEqual(['1.png', '2.png', '3.png']); // no digitStruct.mat, no see_bboxes.m
    // The photos are the archive's bytes.
    const listing = execFileSync('tar', ['-xzOf', fixture('train.tar.gz'), 'train/3.png']);
    expect((await readFile(join(out, 'train', '3.png'))).equals(listing)).toBe(true);
  });

  it('a second run over a complete folder changes nothing; a photo gone makes it again', async () => {
    await extractArchive({ archive: fixture('test.tar.gz'), split: 'test', outDir: out });
    const before = (await stat(join(out, 'test.csv'))).mtimeMs;
    const again = await extractArchive({ archive: fixture('test.tar.gz'), split: 'test', outDir: out });
    expect(again).toMatchObject({ status: 'skipped', photos: 2, digits: 3 });
    expect((await stat(join(out, 'test.csv'))).mtimeMs).toBe(before);
    await rm(join(out, 'test', '2.png'));
    const redo = await extractArchive({ archive: fixture('test.tar.gz'), split: 'test', outDir: out });
    expect(redo.status).toBe('extracted');
    expect((await readdir(join(out, 'test'))).sort()).toEqual(['1.png', '2.png']);
  });

  it.each([
    ['traversal.tar.gz', /traversal\.tar\.gz: entry 'train\/\.\.\/\.\.\/evil\.png' climbs out with '\.\.': refused/],
    ['absolute.tar.gz', /absolute\.tar\.gz: entry '\/tmp\/evil\.png' is an absolute path: refused/],
    ['symlink.tar.gz', /symlink\.tar\.gz: entry 'train\/1\.png' is a symlink: refused \(expected only files and folders\)/],
    ['not_gzip.tar.gz', /not_gzip\.tar\.gz: not a gzip file \(incorrect header check\): expected a \.tar\.gz/],
    ['not_tar.tar.gz', /not_tar\.tar\.gz: the gzip does not hold a tar archive/],
    ['missing_photo.tar.gz', /missing_photo\.tar\.gz: train\/2\.png, photo 2 in train\/digitStruct\.mat, is not in the archive/],
    ['bad_label.tar.gz', /bad_label\.tar\.gz: train\/digitStruct\.mat: photo 2 \(2\.png\): digit 1 has label 11: expected 1\.\.10/],
    ['not_hdf5.tar.gz', /not_hdf5\.tar\.gz: train\/digitStruct\.mat: not an HDF5 file/],
  ])('%s: one line naming the archive, nothing left behind', async (name, message) => {
    const e = await rejection(extractArchive({ archive: fixture(name), split: 'train', outDir: out }));
    expect(e.message).toMatch(message);
    expect(e.message).not.toContain('\n');
    expect(await readdir(out)).toEqual([]);
    await expect(stat('/tmp/evil.png')).rejects.toThrow();
  });

  it('refuses to replace (or take as its own) the synthetic photo sample', async () => {
    await extractArchive({ archive: fixture('train.tar.gz'), split: 'train', outDir: out });
    const png = await readFile(join(out, 'train', '1.png'));
    await writeFile(join(out, 'train', '1.png'), withPngText(png, 'Comment', 'SYNTHETIC photo sample'));
    const e = await rejection(extractArchive({ archive: fixture('train.tar.gz'), split: 'train', outDir: out }));
    expect(e.message).toMatch(/train\/: holds the synthetic photo sample, which SVHN's photos would replace$/);
    expect(e.suggestion).toContain('another --data-dir');
  });

  it('a failed run leaves an earlier folder and its CSV as they were', async () => {
    await extractArchive({ archive: fixture('train.tar.gz'), split: 'train', outDir: out });
    await writeFile(join(out, 'train', 'mine.txt'), 'x'); // still complete: every listed photo is there
    const e = await rejection(extractArchive({ archive: fixture('missing_photo.tar.gz'), split: 'train', outDir: out, force: true }));
    expect(e.message).toContain('is not in the archive');
    expect((await readdir(out)).sort()).toEqual(['train', 'train.csv']);
    expect((await readdir(join(out, 'train'))).sort()).toEqual(['1.png', '2.png', '3.png', 'mine.txt']);
  });
});
