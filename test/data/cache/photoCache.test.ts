/**
 * The photo cache (preprocess --format full): built from a handful of photos drawn here with
 * sharp, each a flat colour so the letterbox can be checked pixel by pixel, then read back
 * through openPhotoCache / readPhotoSplit. The CLI and the real photos: test/cli/preprocessFull.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPhotoCache, readPhotoSplit, type PhotoCacheManifest, type PhotoInfo } from '../../../src/data/cache/photoCache.js';
import { drawVal, preprocessPhotos } from '../../../src/data/cache/photoPreprocess.js';
import { fitBoxes, type Box } from '../../../src/data/images/photoLabels.js';
import { LABEL_BYTES, LETTERBOX_FILL, READER_IMAGE_BYTES, READER_INPUT, boxToInput, letterboxOf, readLabelRecord } from '../../../src/tasks/read/format.js';
import { sha256 } from '../../../src/util/atomic.js';
import { rejection } from '../../helpers.js';

interface FixturePhoto {
  file: string;
  width: number;
  height: number;
  rgb: [number, number, number];
  number: string;
  boxes: Box[];
  format?: 'png' | 'jpeg';
}

/** Eight training photos of every shape: wide, tall, square, no number, a JPEG, a 4-digit one. */
const TRAIN: FixturePhoto[] = [
  { file: 'p/wide.png', width: 100, height: 40, rgb: [200, 30, 30], number: '12', boxes: [[10, 5, 30, 35], [40, 5, 60, 35]] },
  { file: 'p/tall.png', width: 60, height: 90, rgb: [30, 200, 30], number: '7', boxes: [[20, 10, 40, 80]] },
  { file: 'p/square.png', width: 50, height: 50, rgb: [30, 30, 200], number: '45', boxes: [[5, 5, 25, 45], [25, 5, 45, 45]] },
  { file: 'p/blank.png', width: 96, height: 48, rgb: [10, 10, 10], number: '', boxes: [] },
  { file: 'p/photo.jpg', width: 120, height: 50, rgb: [128, 128, 128], number: '345', boxes: [[10, 10, 30, 40], [30, 10, 50, 40], [50, 10, 70, 40]], format: 'jpeg' },
  { file: 'p/long.png', width: 200, height: 30, rgb: [250, 250, 0], number: '2024', boxes: [[10, 2, 40, 28], [40, 2, 70, 28], [70, 2, 100, 28], [100, 2, 130, 28]] },
  { file: 'p/edge.png', width: 40, height: 40, rgb: [0, 250, 250], number: '9', boxes: [[-2, 5, 20, 41]] }, // crosses the edge a little: clipped
  { file: 'p/small.png', width: 30, height: 12, rgb: [250, 0, 250], number: '1', boxes: [[10, 1, 20, 11]] },
];
const TEST: FixturePhoto[] = [
  { file: 't/a.png', width: 70, height: 35, rgb: [90, 60, 30], number: '8', boxes: [[30, 5, 45, 30]] },
  { file: 't/b.png', width: 35, height: 70, rgb: [30, 60, 90], number: '06', boxes: [[2, 20, 17, 50], [17, 20, 33, 50]] },
];

let root: string;

async function writePhoto(dir: string, p: FixturePhoto): Promise<void> {
  const img = sharp({ create: { width: p.width, height: p.height, channels: 3, background: { r: p.rgb[0], g: p.rgb[1], b: p.rgb[2] } } });
  const bytes = p.format === 'jpeg' ? await img.jpeg({ quality: 95 }).toBuffer() : await img.png().toBuffer();
  await mkdir(join(dir, p.file, '..'), { recursive: true });
  await writeFile(join(dir, p.file), bytes);
}

const csvOf = (photos: FixturePhoto[]) => 'file,number,boxes\n' + photos.map((p) => `${p.file},${p.number},${p.boxes.map((b) => b.join(' ')).join(';')}`).join('\n') + '\n';

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'svhn-photo-cache-'));
  for (const p of [...TRAIN, ...TEST]) await writePhoto(root, p);
  await writeFile(join(root, 'train.csv'), csvOf(TRAIN));
  await writeFile(join(root, 'test.csv'), csvOf(TEST));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const build = (dataDir: string, extra: Partial<Parameters<typeof preprocessPhotos>[0]> = {}) =>
  preprocessPhotos({ dataDir: join(root, dataDir), labels: join(root, 'train.csv'), testLabels: join(root, 'test.csv'), progress: 'silent', ...extra });

/** The record the cache must hold for a fixture photo: its boxes fitted, mapped into the input, rounded and clipped. */
function expectedRecord(p: FixturePhoto): Box[] {
  const lb = letterboxOf(p.width, p.height);
  const fitted = fitBoxes(p.boxes, p.width, p.height) as Box[];
  const clip = (v: number, hi: number) => Math.max(0, Math.min(hi, Math.round(v)));
  return fitted.map((b) => {
    const [l, t, r, bt] = boxToInput(b, lb, p.width, p.height);
    return [clip(l, READER_INPUT.width), clip(t, READER_INPUT.height), clip(r, READER_INPUT.width), clip(bt, READER_INPUT.height)];
  });
}

describe('preprocessPhotos -> openPhotoCache / readPhotoSplit', () => {
  let manifest: PhotoCacheManifest;
  let splits: Record<'train' | 'val' | 'test', { count: number; images: Uint8Array; labels: Uint8Array; photos?: PhotoInfo[] }>;

  beforeAll(async () => {
    manifest = (await build('a')).manifest;
    const cache = await openPhotoCache(join(root, 'a'), { verify: true });
    splits = { train: await readPhotoSplit(cache, 'train'), val: await readPhotoSplit(cache, 'val'), test: await readPhotoSplit(cache, 'test') };
  });

  it('writes train + val (a seeded split, disjoint, covering every photo) and test, in the documented shapes', () => {
    expect(manifest).toMatchObject({ format: 'svhn-photo-cache', version: 1, synthetic: false, input: { height: 48, width: 96, channels: 3 }, letterboxFill: 114, maxDigits: 6, labelBytes: 25 });
    expect(splits.train.count).toBe(6);
    expect(splits.val.count).toBe(2); // round(8 x 0.2)
    expect(splits.test.count).toBe(2);
    for (const s of Object.values(splits)) {
      expect(s.images.length).toBe(s.count * READER_IMAGE_BYTES);
      expect(s.labels.length).toBe(s.count * LABEL_BYTES);
      expect(s.photos).toHaveLength(s.count);
    }
    const trainFiles = splits.train.photos!.map((p) => p.file);
    const valFiles = splits.val.photos!.map((p) => p.file);
    expect(trainFiles.filter((f) => valFiles.includes(f))).toEqual([]);
    expect([...trainFiles, ...valFiles].sort()).toEqual(TRAIN.map((p) => p.file).sort());
    // In CSV order within each split; which photo went where is drawVal's, from the seed.
    const isVal = drawVal(TRAIN.length, 0.2, 42);
    expect(valFiles).toEqual(TRAIN.filter((_, i) => isVal[i]).map((p) => p.file));
    expect(splits.test.photos!.map((p) => p.file)).toEqual(['t/a.png', 't/b.png']);
    expect(manifest.splits.train!.digitsHistogram.reduce((a, b) => a + b, 0)).toBe(6);
  });

  it('holds each photo\'s own size and number, and label records equal to boxToInput of its CSV boxes, rounded; a photo without a number has n = 0', () => {
    const all = [...TRAIN, ...TEST];
    for (const s of Object.values(splits)) {
      s.photos!.forEach((info, i) => {
        const p = all.find((f) => f.file === info.file)!;
        expect(info).toEqual({ file: p.file, number: p.number, width: p.width, height: p.height });
        expect(s.labels[i * LABEL_BYTES], p.file).toBe(p.number.length);
        expect(readLabelRecord(s.labels, i * LABEL_BYTES), p.file).toEqual(expectedRecord(p));
      });
    }
    const blank = [...splits.train.photos!, ...splits.val.photos!].findIndex((p) => p.file === 'p/blank.png');
    expect(blank).toBeGreaterThanOrEqual(0);
  });

  it('letterboxes: LETTERBOX_FILL where the padding is, the photo (its flat colour) where it is not', () => {
    for (const s of Object.values(splits)) {
      s.photos!.forEach((info, i) => {
        const p = [...TRAIN, ...TEST].find((f) => f.file === info.file)!;
        const lb = letterboxOf(p.width, p.height);
        const image = s.images.subarray(i * READER_IMAGE_BYTES, (i + 1) * READER_IMAGE_BYTES);
        for (let y = 0; y < READER_INPUT.height; y++) {
          for (let x = 0; x < READER_INPUT.width; x++) {
            const o = (y * READER_INPUT.width + x) * 3;
            const inside = x >= lb.padX && x < lb.padX + lb.width && y >= lb.padY && y < lb.padY + lb.height;
            const want = inside ? p.rgb : [LETTERBOX_FILL, LETTERBOX_FILL, LETTERBOX_FILL];
            const tol = inside ? (p.format === 'jpeg' ? 3 : 1) : 0;
            for (let c = 0; c < 3; c++) if (Math.abs(image[o + c]! - want[c]!) > tol) throw new Error(`${p.file} (${x}, ${y}) channel ${c}: expected ${want[c]}, got ${image[o + c]}`);
          }
        }
      });
    }
  });

  it('records each file\'s sha256 in the manifest, and the sources', async () => {
    const dir = join(root, 'a', 'cache-full');
    for (const [name, s] of Object.entries(manifest.splits)) {
      expect(sha256(await readFile(join(dir, s!.imagesFile))), name).toBe(s!.sha256.images);
      expect(sha256(await readFile(join(dir, s!.labelsFile))), name).toBe(s!.sha256.labels);
      expect(sha256(await readFile(join(dir, s!.photosFile))), name).toBe(s!.sha256.photos);
    }
    expect(manifest.source.kind).toBe('csv');
    expect(manifest.source.train).toMatchObject({ rows: 8, used: 8, noBoxes: { count: 0 }, tooLong: 0, skipped: [], sha256: sha256(await readFile(join(root, 'train.csv'))) });
    expect(manifest.samples).toMatchObject({ file: 'samples.png', count: 6 });
    expect(sha256(await readFile(join(dir, 'samples.png')))).toBe(manifest.samples!.sha256);
  });

  it('gives the same bytes on a rerun (photos decoded concurrently, written in order), whatever the concurrency', async () => {
    await build('b', { concurrency: 1 });
    await build('a');
    for (const name of ['train', 'val', 'test'].flatMap((s) => [`${s}.images.u8`, `${s}.labels.u8`, `${s}.photos.json`]).concat('samples.png')) {
      expect(Buffer.compare(await readFile(join(root, 'a', 'cache-full', name)), await readFile(join(root, 'b', 'cache-full', name))), name).toBe(0);
    }
  });
});

describe('openPhotoCache refuses a damaged cache, naming the file', () => {
  it('a missing cache, a short file, a changed byte (with verify)', async () => {
    const missing = await rejection(openPhotoCache(join(root, 'none')));
    expect(missing.code).toBe('MISSING_DATA');
    expect(missing.suggestion).toBe('run `svhn preprocess --format full`');

    await build('damaged');
    const dir = join(root, 'damaged', 'cache-full');
    const labels = await readFile(join(dir, 'val.labels.u8'));
    labels[1] ^= 1;
    await writeFile(join(dir, 'val.labels.u8'), labels);
    await openPhotoCache(join(root, 'damaged')); // sizes only: still fine
    const changed = await rejection(openPhotoCache(join(root, 'damaged'), { verify: true }));
    expect(changed.code).toBe('BAD_CACHE');
    expect(changed.message).toMatch(/val\.labels\.u8 \(split 'val'\): sha256 differs from manifest\.json/);

    await writeFile(join(dir, 'train.images.u8'), Buffer.alloc(10));
    const short = await rejection(openPhotoCache(join(root, 'damaged')));
    expect(short.message).toMatch(/train\.images\.u8: expected \d+ bytes for 6 images, got 10/);
    expect(short.suggestion).toBe('run `svhn preprocess --format full`');
  });

  it('a cache of another format', async () => {
    await mkdir(join(root, 'other', 'cache-full'), { recursive: true });
    await writeFile(join(root, 'other', 'cache-full', 'manifest.json'), JSON.stringify({ format: 'svhn-cache', version: 1 }));
    expect((await rejection(openPhotoCache(join(root, 'other')))).message).toMatch(/expected format 'svhn-photo-cache', got "svhn-cache"/);
  });
});

describe('preprocessPhotos on bad inputs: one clear error, or a listed skip', () => {
  async function csv(name: string, text: string): Promise<string> {
    await writeFile(join(root, name), text);
    return join(root, name);
  }

  it('a non-digit number, a box count that does not match the number: an error naming the line', async () => {
    const letters = await rejection(build('bad1', { labels: await csv('letters.csv', 'file,number,boxes\np/wide.png,1a,1 1 5 5;6 1 9 5\n'), testLabels: undefined }));
    expect(letters.message).toMatch(/letters\.csv line 2: number '1a' for p\/wide\.png: expected digits 0-9 only/);
    const count = await rejection(build('bad2', { labels: await csv('count.csv', 'file,number,boxes\np/wide.png,123,1 1 5 5;6 1 9 5\n'), testLabels: undefined }));
    expect(count.message).toMatch(/count\.csv line 2: p\/wide\.png: 2 boxes for the 3-digit number '123'/);
  });

  it('a box outside its photo, an undecodable photo, a missing photo: skipped and listed; rows without boxes skipped and counted', async () => {
    await writeFile(join(root, 'p', 'broken.png'), Buffer.from('\x89PNG\r\n\x1a\n but then nothing'));
    const text = csvOf(TRAIN).replace('file,number,boxes\n', 'file,number,boxes\np/outside.png,5,200 200 260 260\np/broken.png,3,1 1 5 5\np/gone.png,4,1 1 5 5\np/nobox.png,77,\n');
    await writePhoto(root, { file: 'p/outside.png', width: 50, height: 50, rgb: [1, 2, 3], number: '5', boxes: [] });
    const r = await build('skips', { labels: await csv('skips.csv', text), testLabels: undefined });
    const s = r.manifest.source.train;
    expect(s).toMatchObject({ rows: 12, used: 8, noBoxes: { count: 1, first: ['p/nobox.png'] } });
    expect(s.skipped.map((k) => [k.file, k.line])).toEqual([['p/outside.png', 2], ['p/broken.png', 3], ['p/gone.png', 4]]);
    expect(s.skipped[0]!.reason).toBe("box 1 '200 200 260 260' leaves the 50x50 photo");
    expect(s.skipped[1]!.reason).toMatch(/^not a readable image/);
    expect(s.skipped[2]!.reason).toBe('cannot read: no such file');
    expect(r.manifest.splits.train!.count + r.manifest.splits.val!.count).toBe(8);
    expect(r.manifest.splits.test).toBeUndefined();
  });

  it('no boxes at all, nothing decodable: an error', async () => {
    const none = await rejection(build('nobox', { labels: await csv('nobox.csv', 'file,number\np/wide.png,12\np/tall.png,7\n'), testLabels: undefined }));
    expect(none.code).toBe('BAD_INPUT');
    expect(none.message).toMatch(/nobox\.csv: none of its 2 photos has digit boxes \(p\/wide\.png \(line 2\), p\/tall\.png \(line 3\)\)/);
    const broken = await rejection(build('broken', { labels: await csv('broken.csv', 'file,number,boxes\np/broken.png,3,1 1 5 5\np/gone.png,4,1 1 5 5\n'), testLabels: undefined }));
    expect(broken.message).toMatch(/broken\.csv: none of its 2 photos could be cached \(p\/broken\.png: not a readable image/);
  });

  it('a FIFO as the CSV: refused at once, not waited on', async () => {
    execFileSync('mkfifo', [join(root, 'pipe.csv')]);
    const e = await rejection(build('fifo', { labels: join(root, 'pipe.csv'), testLabels: undefined }));
    expect(e.message).toBe(`cannot read ${join(root, 'pipe.csv')}: expected a regular file, got a FIFO`);
  });

  it('a cache folder holding a file preprocess did not write: refused, and left as it was', async () => {
    await mkdir(join(root, 'mine', 'cache-full'), { recursive: true });
    await writeFile(join(root, 'mine', 'cache-full', 'notes.txt'), 'mine');
    const e = await rejection(build('mine'));
    expect(e.message).toMatch(/cache-full: expected a new folder or an earlier photo cache \(it is replaced whole\), got one holding notes\.txt/);
    expect(await readFile(join(root, 'mine', 'cache-full', 'notes.txt'), 'utf8')).toBe('mine');
  });

  it('no photos under <data-dir>/full: MISSING_DATA pointing at svhn download --format full', async () => {
    const e = await rejection(preprocessPhotos({ dataDir: join(root, 'empty'), progress: 'silent' }));
    expect(e.code).toBe('MISSING_DATA');
    expect(e.message).toMatch(/empty\/full\/train\.csv not found/);
    expect(e.suggestion).toMatch(/svhn download --format full/);
  });
});
