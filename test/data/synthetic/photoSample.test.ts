/**
 * The synthetic photo sample on disk (src/data/synthetic/photoSample.ts): SVHN's format-1
 * layout, labels that parse back, the SYNTHETIC marks, the same bytes for a seed, an
 * up-to-date split kept, and a folder or CSV it did not write refused.
 */
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fitBoxes, parsePhotoLabels } from '../../../src/data/images/photoLabels.js';
import { generateSyntheticPhotos, hasSyntheticMark, type SyntheticPhotosManifest } from '../../../src/data/synthetic/photoSample.js';
import { sha256 } from '../../../src/util/atomic.js';
import { rejection } from '../../helpers.js';

const COUNTS = { train: 40, test: 30 };
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'svhn-synphotos-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const generate = (dataDir: string, seed: number, extra: { force?: boolean } = {}) =>
  generateSyntheticPhotos({ dataDir, size: 'small', seed, splits: ['train', 'test'], counts: COUNTS, ...extra });

/** Every file under root (relative path -> bytes). */
async function snapshot(root: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) files.set(join(entry.parentPath, entry.name).slice(root.length + 1), await readFile(join(entry.parentPath, entry.name)));
  }
  return files;
}

describe('generateSyntheticPhotos', () => {
  it('writes full/<split>/<n>.png (1-based), <split>.csv and SYNTHETIC.json, labels that parse back with boxes inside their photos', async () => {
    const dataDir = join(dir, 'a');
    const { root, splits } = await generate(dataDir, 5);
    expect(root).toBe(join(dataDir, 'full'));
    expect((await readdir(root)).sort()).toEqual(['SYNTHETIC.json', 'test', 'test.csv', 'train', 'train.csv']);
    expect(splits.map((s) => [s.split, s.count])).toEqual([['train', 40], ['test', 30]]);
    for (const [split, count] of Object.entries(COUNTS)) {
      const names = await readdir(join(root, split));
      expect(names.sort()).toEqual(Array.from({ length: count }, (_, i) => `${i + 1}.png`).sort());
      const csvPath = join(root, `${split}.csv`);
      const text = await readFile(csvPath, 'utf8');
      expect(text.split('\n')[0]).toBe('file,number,boxes');
      const rows = parsePhotoLabels(text, csvPath);
      expect(rows.map((r) => r.file)).toEqual(Array.from({ length: count }, (_, i) => `${split}/${i + 1}.png`));
      for (const row of rows) {
        const png = await readFile(join(root, row.file));
        expect(hasSyntheticMark(png)).toBe(true);
        const meta = await sharp(png).metadata();
        expect(meta.format).toBe('png');
        expect(row.boxes).not.toBeNull();
        expect(row.boxes!.length).toBe(row.number.length);
        expect(fitBoxes(row.boxes!, meta.width!, meta.height!)).toEqual(row.boxes); // inside: nothing clipped
      }
    }
    const manifest = JSON.parse(await readFile(join(root, 'SYNTHETIC.json'), 'utf8')) as SyntheticPhotosManifest;
    expect(manifest.synthetic).toBe(true);
    expect(manifest.note).toContain('NOT real SVHN');
    expect(manifest.seed).toBe(5);
    expect(manifest.counts).toEqual(COUNTS);
    for (const f of manifest.files) {
      expect(sha256(await readFile(join(root, f.csv)))).toBe(f.sha256);
      expect(f.lengths.reduce((a, b) => a + b, 0)).toBe(f.count);
    }
    const tEXt = (await readFile(join(root, 'test/1.png'))).subarray(37, 160).toString('latin1');
    expect(tEXt).toMatch(/^tEXtComment\0SYNTHETIC svhn offline photo sample, NOT real SVHN \(v3 small seed 5 test 1\)/);
  });

  it('gives the same bytes for a seed and other photos for another', async () => {
    const a = await snapshot(join(dir, 'a', 'full'));
    await generate(join(dir, 'b'), 5);
    const b = await snapshot(join(dir, 'b', 'full'));
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [name, bytes] of a) expect(b.get(name)!.equals(bytes), name).toBe(true);
    await generate(join(dir, 'c'), 6);
    const c = await snapshot(join(dir, 'c', 'full'));
    expect(c.get('train.csv')!.equals(a.get('train.csv')!)).toBe(false);
    expect(c.get('test/1.png')!.equals(a.get('test/1.png')!)).toBe(false);
  });

  it('keeps an up-to-date split, and makes it again for another seed or with force', async () => {
    const photo = join(dir, 'a', 'full', 'train', '1.png');
    const before = (await stat(photo)).mtimeMs;
    await generate(join(dir, 'a'), 5);
    expect((await stat(photo)).mtimeMs).toBe(before);
    await generate(join(dir, 'a'), 5, { force: true });
    expect((await stat(photo)).mtimeMs).not.toBe(before);
    await generate(join(dir, 'a'), 6);
    const manifest = JSON.parse(await readFile(join(dir, 'a', 'full', 'SYNTHETIC.json'), 'utf8')) as SyntheticPhotosManifest;
    expect(manifest.seed).toBe(6);
    expect((await readdir(join(dir, 'a', 'full'))).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
  });

  it('a run stopped in its second split leaves the first one whole, with no temporaries, and the next run goes on from there', async () => {
    const dataDir = join(dir, 'stopped');
    const stop = new Error('stopped');
    const run = generateSyntheticPhotos({
      dataDir,
      size: 'small',
      seed: 5,
      splits: ['train', 'test'],
      counts: COUNTS,
      onProgress: (split, done) => {
        if (split === 'test' && done === 10) throw stop;
      },
    });
    await expect(run).rejects.toBe(stop);
    expect((await readdir(join(dataDir, 'full'))).sort()).toEqual(['SYNTHETIC.json', 'train', 'train.csv']);
    const photo = join(dataDir, 'full', 'train', '1.png');
    const before = (await stat(photo)).mtimeMs;
    await generate(dataDir, 5); // the marker vouches for train.csv: kept, not refused
    expect((await stat(photo)).mtimeMs).toBe(before);
    const whole = await snapshot(join(dir, 'b', 'full')); // seed 5 made in one go
    const resumed = await snapshot(join(dataDir, 'full'));
    expect([...resumed.keys()].sort()).toEqual([...whole.keys()].sort());
    for (const [name, bytes] of whole) if (name !== 'SYNTHETIC.json') expect(resumed.get(name)!.equals(bytes), name).toBe(true);
  });

  it('refuses a photo folder it did not write, and leaves it as it was', async () => {
    const dataDir = join(dir, 'foreign-dir');
    await mkdir(join(dataDir, 'full', 'train'), { recursive: true });
    const theirs = await sharp({ create: { width: 40, height: 20, channels: 3, background: '#808080' } }).png().toBuffer();
    await writeFile(join(dataDir, 'full', 'train', '1.png'), theirs);
    const e = await rejection(generate(dataDir, 5));
    expect(e.message).toBe(`${join(dataDir, 'full', 'train')}: expected no folder or the synthetic photo sample, got another folder (real SVHN photos, or yours), which the sample would replace`);
    expect((await readFile(join(dataDir, 'full', 'train', '1.png'))).equals(theirs)).toBe(true);
    expect(await readdir(join(dataDir, 'full'))).toEqual(['train']);
  });

  it('refuses a labels CSV it did not write, even beside its own marker', async () => {
    const dataDir = join(dir, 'a');
    const csv = join(dataDir, 'full', 'test.csv');
    const theirs = 'file,number,boxes\ntest/1.png,19,1 1 5 9;5 1 9 9\n';
    await writeFile(csv, theirs);
    const e = await rejection(generate(dataDir, 6));
    expect(e.message).toContain(`${csv}: expected no file or the synthetic photo sample's labels, got another file`);
    expect(await readFile(csv, 'utf8')).toBe(theirs);
  });
});
