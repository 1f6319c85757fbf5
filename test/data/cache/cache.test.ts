import { spawnSync } from 'node:child_process';
import { mkdtemp, mkdir, readdir, rm, stat, utimes, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCache, readCacheSplit, readCacheSplitChunks, staleSourceWarnings } from '../../../src/data/cache/cache.js';
import { CACHE_FORMAT, CACHE_VERSION, type DatasetManifest, type SplitEntry } from '../../../src/data/cache/cacheFormat.js';
import { sha256 } from '../../../src/util/atomic.js';

/** Writes a cache by hand, straight from the documented format (not through preprocess). */
async function writeCache(dataDir: string, splits: Record<string, { images: Uint8Array; labels: Uint8Array }>): Promise<DatasetManifest> {
  const dir = join(dataDir, 'cache');
  await mkdir(dir, { recursive: true });
  const entries: Record<string, SplitEntry> = {};
  for (const [name, { images, labels }] of Object.entries(splits)) {
    await writeFile(join(dir, `${name}.images.u8`), images);
    await writeFile(join(dir, `${name}.labels.u8`), labels);
    const counts = new Array(10).fill(0);
    labels.forEach((y) => counts[y]++);
    entries[name] = {
      count: labels.length,
      shape: [labels.length, 32, 32, 3],
      imagesFile: `${name}.images.u8`,
      labelsFile: `${name}.labels.u8`,
      classCounts: counts,
      sha256: { images: sha256(images), labels: sha256(labels) },
    };
  }
  const manifest: DatasetManifest = {
    format: CACHE_FORMAT,
    version: CACHE_VERSION,
    createdAt: new Date().toISOString(),
    synthetic: true,
    key: 'k',
    options: { valFraction: 0.2, seed: 42, limit: null, valLimit: null, extra: false },
    sources: {},
    splits: entries,
  };
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
  return manifest;
}

function fakeSplit(n: number, salt: number) {
  const images = Uint8Array.from({ length: n * 3072 }, (_, i) => (i * 7 + salt) & 255);
  const labels = Uint8Array.from({ length: n }, (_, i) => (i + salt) % 10);
  return { images, labels };
}

describe('cache reader', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'svhn-cache-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('reads whole splits and chunks byte for byte', async () => {
    const dataDir = join(root, 'ok');
    const train = fakeSplit(23, 1);
    const val = fakeSplit(5, 2);
    await writeCache(dataDir, { train, val });
    const cache = await openCache(dataDir, { verify: true });
    expect(cache.manifestSha256).toBe(sha256(await readFile(join(dataDir, 'cache', 'manifest.json'))));

    const t = await readCacheSplit(cache, 'train');
    expect(t.count).toBe(23);
    expect(Buffer.from(t.images).equals(Buffer.from(train.images))).toBe(true);
    expect(Array.from(t.labels)).toEqual(Array.from(train.labels));

    const chunks = [];
    for await (const c of readCacheSplitChunks(cache, 'train', 10)) chunks.push(c);
    expect(chunks.map((c) => [c.start, c.count])).toEqual([[0, 10], [10, 10], [20, 3]]);
    const joined = Buffer.concat(chunks.map((c) => Buffer.from(c.images)));
    expect(joined.equals(Buffer.from(train.images))).toBe(true);
    expect(Array.from(chunks[2]!.labels)).toEqual(Array.from(train.labels.subarray(20)));
  });

  it('removes the temporary caches of killed preprocess runs (their pid gone) when it opens the cache, and no one else\'s', async () => {
    const dataDir = join(root, 'stale');
    await writeCache(dataDir, { train: fakeSplit(3, 1) });
    const dead = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
    const left = [`.tmp-cache-${dead}-lz1x2`, `.tmp-cache-${dead}-lz1x3-old`];
    const kept = [`.tmp-cache-${process.ppid}-lz1x4`, `.tmp-train_32x32.mat-${dead}-lz1x5`];
    for (const name of [...left, ...kept]) await mkdir(join(dataDir, name, 'x'), { recursive: true });
    // While a preprocess holds cache.lock (another host's on a shared disk: its pids mean nothing here), they are its.
    await writeFile(join(dataDir, 'cache.lock'), JSON.stringify({ pid: dead, host: 'elsewhere', startedAt: new Date().toISOString() }));
    await openCache(dataDir);
    expect((await readdir(dataDir)).sort()).toEqual(['cache', 'cache.lock', ...left, ...kept].sort());
    await rm(join(dataDir, 'cache.lock'));
    await openCache(dataDir);
    expect((await readdir(dataDir)).sort()).toEqual(['cache', ...kept].sort());
  });

  it('says to run preprocess when there is no cache', async () => {
    await expect(openCache(join(root, 'none'))).rejects.toMatchObject({ code: 'MISSING_DATA', suggestion: 'run `svhn preprocess` first' });
  });

  it('names a missing split', async () => {
    const dataDir = join(root, 'nosplit');
    await writeCache(dataDir, { train: fakeSplit(2, 0) });
    const cache = await openCache(dataDir);
    await expect(readCacheSplit(cache, 'extra')).rejects.toThrow(/has no 'extra' split/);
    await expect(readCacheSplit(cache, 'val')).rejects.toMatchObject({ code: 'MISSING_DATA' });
  });

  it('detects a truncated file on open and a changed byte with verify', async () => {
    const dataDir = join(root, 'bad');
    const train = fakeSplit(4, 3);
    await writeCache(dataDir, { train });
    const imagesPath = join(dataDir, 'cache', 'train.images.u8');

    const flipped = Uint8Array.from(train.images);
    flipped[100] = flipped[100]! ^ 1;
    await writeFile(imagesPath, flipped);
    await expect(openCache(dataDir)).resolves.toBeTruthy(); // same size: only verify can tell
    await expect(openCache(dataDir, { verify: true })).rejects.toMatchObject({
      code: 'BAD_CACHE',
      message: expect.stringMatching(/train\.images\.u8: sha256 differs from manifest\.json/),
      suggestion: 're-run `svhn preprocess`',
    });

    await writeFile(imagesPath, train.images.subarray(0, 3072 * 3));
    await expect(openCache(dataDir)).rejects.toThrow(/expected 12288 bytes for 4 images, got 9216/);
  });

  it('verifies only the splits asked for, and names a label byte out of 0..9 even when the manifest agrees', async () => {
    const dataDir = join(root, 'labels');
    const train = fakeSplit(4, 1);
    const val = fakeSplit(3, 2);
    val.labels[2] = 12; // hashed as written: only the range check can tell
    await writeCache(dataDir, { train, val });
    await expect(openCache(dataDir, { verify: ['train'] })).resolves.toBeTruthy();
    for (const verify of [['val'] as const, true]) {
      await expect(openCache(dataDir, { verify })).rejects.toMatchObject({
        code: 'BAD_CACHE',
        message: `${join(dataDir, 'cache', 'val.labels.u8')}: expected digits 0..9, got label 12 for image 2`,
      });
    }
  });

  it('warns when a source .mat changed since the cache was built from it, and only then', async () => {
    const dataDir = join(root, 'stale');
    const m = await writeCache(dataDir, { train: fakeSplit(2, 0) });
    const mat = join(dataDir, 'train_32x32.mat');
    await writeFile(mat, 'the old file');
    const { mtimeMs } = await stat(mat);
    await writeFile(join(dataDir, 'cache', 'manifest.json'), JSON.stringify({ ...m, sources: { train: { file: 'train_32x32.mat', kind: 'mat', size: 12, sha256: sha256('the old file'), synthetic: false, mtimeMs } } }));
    const warnings = async () => staleSourceWarnings(dataDir, await openCache(dataDir));
    expect(await warnings()).toEqual([]);
    await utimes(mat, new Date(), new Date(Date.now() + 5000)); // touched, same bytes: hashed, not reported
    expect(await warnings()).toEqual([]);
    await writeFile(mat, 'the new file');
    expect(await warnings()).toEqual([
      `${join(dataDir, 'cache')} was built from an older ${mat} (12 bytes, sha256 ${sha256('the old file').slice(0, 12)}...; now 12 bytes, sha256 ${sha256('the new file').slice(0, 12)}...); re-run \`svhn preprocess\` to use the new one`,
    ]);
    await writeFile(mat, 'a longer new file');
    expect(await warnings()).toEqual([expect.stringMatching(/; now 17 bytes\); re-run/)]);
    await rm(mat);
    expect(await warnings()).toEqual([]); // deleted since: the cache is all there is
  });

  it('rejects a manifest of another format or version', async () => {
    const dataDir = join(root, 'fmt');
    const m = await writeCache(dataDir, { train: fakeSplit(1, 0) });
    await writeFile(join(dataDir, 'cache', 'manifest.json'), JSON.stringify({ ...m, version: 99 }));
    await expect(openCache(dataDir)).rejects.toThrow(/expected cache version 1, got 99/);
    await writeFile(join(dataDir, 'cache', 'manifest.json'), '{not json');
    await expect(openCache(dataDir)).rejects.toMatchObject({ code: 'BAD_CACHE' });
  });
});
