import { chmod, copyFile, mkdtemp, readFile, readdir, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCache, readCacheSplit } from '../../../src/data/cache/cache.js';
import { formatPreprocessSummary, preprocess } from '../../../src/data/cache/preprocess.js';
import { readSvhnMat } from '../../../src/data/mat/mat.js';
import { sha256 } from '../../../src/util/atomic.js';
import { Rng } from '../../../src/util/rng.js';

const FIXTURE = new URL('../../fixtures/mat/small_c_u8.mat', import.meta.url);

/**
 * A minimal MATLAB v5 writer (uncompressed elements) for SVHN-layout files: X uint8
 * (32, 32, 3, N) column-major from NHWC images, y uint8 (N, 1) with digit 0 stored as 10.
 * Independent of the reader under test.
 */
function matFile(images: Uint8Array, digits: Uint8Array, headerText = 'MATLAB 5.0 MAT-file, written by svhn tests'): Buffer {
  const n = digits.length;
  const pad8 = (b: Buffer) => Buffer.concat([b, Buffer.alloc((8 - (b.length % 8)) % 8)]);
  const tag = (type: number, size: number) => {
    const t = Buffer.alloc(8);
    t.writeUInt32LE(type, 0);
    t.writeUInt32LE(size, 4);
    return t;
  };
  const element = (type: number, data: Buffer) => Buffer.concat([tag(type, data.length), pad8(data)]);
  const matrix = (name: string, dims: number[], data: Buffer) => {
    const flags = Buffer.alloc(8);
    flags.writeUInt32LE(9, 0); // mxUINT8_CLASS
    const dimBuf = Buffer.alloc(4 * dims.length);
    dims.forEach((d, i) => dimBuf.writeInt32LE(d, 4 * i));
    const body = Buffer.concat([element(6, flags), element(5, dimBuf), element(1, Buffer.from(name, 'latin1')), element(2, data)]);
    return Buffer.concat([tag(14, body.length), body]);
  };
  // NHWC -> column-major (32, 32, 3, N): index h + 32*w + 1024*c + 3072*n.
  const X = Buffer.alloc(n * 3072);
  for (let i = 0; i < n; i++)
    for (let h = 0; h < 32; h++)
      for (let w = 0; w < 32; w++)
        for (let c = 0; c < 3; c++) X[h + 32 * w + 1024 * c + 3072 * i] = images[i * 3072 + (h * 32 + w) * 3 + c]!;
  const y = Buffer.from(digits.map((d) => (d === 0 ? 10 : d)));
  const header = Buffer.alloc(128, 0x20);
  header.write(headerText.slice(0, 116), 0, 'latin1');
  header.fill(0, 116, 124);
  header.writeUInt16LE(0x0100, 124);
  header.write('IM', 126, 'latin1');
  return Buffer.concat([header, matrix('X', [32, 32, 3, n], X), matrix('y', [n, 1], y)]);
}

function randomData(n: number, seed: number, digit: (i: number) => number) {
  const rng = new Rng(seed);
  const images = Uint8Array.from({ length: n * 3072 }, () => rng.int(256));
  const digits = Uint8Array.from({ length: n }, (_, i) => digit(i));
  return { images, digits };
}

const noProgress = { progress: 'silent' as const };

describe('preprocess', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'svhn-pre-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('splits train, keeps test labels from test_32x32.mat, and writes a readable cache', async () => {
    const dataDir = join(root, 'own');
    await mkdir(dataDir);
    // Train labels cycle 0..9 (10 each); test labels are all 7: if test took train's labels
    // (the notebook's bug), its histogram would not be [0,...,0,30,0,0].
    const train = randomData(100, 1, (i) => i % 10);
    const test = randomData(30, 2, () => 7);
    await writeFile(join(dataDir, 'train_32x32.mat'), matFile(train.images, train.digits));
    await writeFile(join(dataDir, 'test_32x32.mat'), matFile(test.images, test.digits));

    const r = await preprocess({ dataDir, ...noProgress });
    expect(r.reused).toBe(false);
    const s = r.manifest.splits;
    expect(s.train!.count + s.val!.count).toBe(100);
    expect(s.val!.count).toBe(20);
    expect(s.val!.classCounts).toEqual(new Array(10).fill(2)); // stratified: 2 of each 10
    expect(s.test!.classCounts).toEqual([0, 0, 0, 0, 0, 0, 0, 30, 0, 0]);
    expect(r.manifest.synthetic).toBe(false);
    expect(r.manifest.sources.train!.sha256).toBe(sha256(await readFile(join(dataDir, 'train_32x32.mat'))));

    const cache = await openCache(dataDir, { verify: true });
    expect(cache.manifestSha256).toBe(r.manifestSha256);
    const t = await readCacheSplit(cache, 'test');
    expect(Buffer.from(t.images).equals(Buffer.from(test.images))).toBe(true); // NHWC round trip
    // Every train/val image is one of train_32x32.mat's images, with its own label.
    const byHash = new Map<string, number>();
    for (let i = 0; i < 100; i++) byHash.set(sha256(train.images.subarray(i * 3072, (i + 1) * 3072)), train.digits[i]!);
    const seen = new Set<string>();
    for (const split of ['train', 'val'] as const) {
      const d = await readCacheSplit(cache, split);
      for (let i = 0; i < d.count; i++) {
        const h = sha256(d.images.subarray(i * 3072, (i + 1) * 3072));
        expect(byHash.get(h)).toBe(d.labels[i]);
        seen.add(h);
      }
    }
    expect(seen.size).toBe(100);

    const png = await sharp(r.samplesPng!).metadata();
    expect(png.format).toBe('png');
    expect(png.width).toBeGreaterThan(5 * 96);
    expect(formatPreprocessSummary(r)).toMatch(/test\s+30\s+\(30, 32, 32, 3\)/);
  });

  it('reuses an up-to-date cache, rebuilds when flags or sources change, and leaves no temp dirs', async () => {
    const dataDir = join(root, 'reuse');
    await mkdir(dataDir);
    await copyFile(FIXTURE, join(dataDir, 'train_32x32.mat'));
    await copyFile(FIXTURE, join(dataDir, 'test_32x32.mat'));

    const first = await preprocess({ dataDir, ...noProgress });
    const manifestPath = join(dataDir, 'cache', 'manifest.json');
    const mtime1 = (await stat(manifestPath)).mtimeMs;
    const second = await preprocess({ dataDir, ...noProgress });
    expect(second.reused).toBe(true);
    expect(second.manifestSha256).toBe(first.manifestSha256);
    expect((await stat(manifestPath)).mtimeMs).toBe(mtime1);

    const limited = await preprocess({ dataDir, limit: 20, valLimit: 5, ...noProgress });
    expect(limited.reused).toBe(false);
    expect(limited.manifest.key).not.toBe(first.manifest.key);
    expect(limited.manifest.splits.train!.count).toBe(20);
    expect(limited.manifest.splits.val!.count).toBe(5);
    expect(limited.manifest.splits.test!.count).toBe(64);

    // A different test file (same name) changes the key.
    const other = randomData(12, 5, (i) => i % 10);
    await writeFile(join(dataDir, 'test_32x32.mat'), matFile(other.images, other.digits));
    const changed = await preprocess({ dataDir, limit: 20, valLimit: 5, ...noProgress });
    expect(changed.reused).toBe(false);
    expect(changed.manifest.splits.test!.count).toBe(12);

    expect((await readdir(dataDir)).filter((n) => n.startsWith('.tmp'))).toEqual([]);
  });

  it('marks the offline sample as synthetic (marker file or .mat header)', async () => {
    const a = join(root, 'synth-marker');
    await mkdir(a);
    await copyFile(FIXTURE, join(a, 'train_32x32.mat'));
    await copyFile(FIXTURE, join(a, 'test_32x32.mat'));
    const bytes = (await stat(FIXTURE)).size;
    const listing = (size: number) => ({ synthetic: true, files: ['train_32x32.mat', 'test_32x32.mat'].map((file) => ({ file, bytes: size })) });
    await writeFile(join(a, 'SYNTHETIC.json'), JSON.stringify(listing(bytes)));
    const ra = await preprocess({ dataDir: a, sampleCount: 0, ...noProgress });
    expect(ra.manifest.synthetic).toBe(true);
    // A stale marker (real files downloaded over an old sample: other sizes) does not count.
    const stale = join(root, 'synth-stale');
    await mkdir(stale);
    await copyFile(FIXTURE, join(stale, 'train_32x32.mat'));
    await copyFile(FIXTURE, join(stale, 'test_32x32.mat'));
    await writeFile(join(stale, 'SYNTHETIC.json'), JSON.stringify(listing(17_124_864)));
    const rs = await preprocess({ dataDir: stale, sampleCount: 0, ...noProgress });
    expect(rs.manifest.synthetic).toBe(false);
    expect(ra.samplesPng).toBeNull();
    expect(formatPreprocessSummary(ra)).toMatch(/SYNTHETIC/);

    const b = join(root, 'synth-header');
    await mkdir(b);
    const d = randomData(20, 3, (i) => i % 10);
    await writeFile(join(b, 'train_32x32.mat'), matFile(d.images, d.digits, 'MATLAB 5.0 MAT-file, SYNTHETIC svhn offline sample'));
    await writeFile(join(b, 'test_32x32.mat'), matFile(d.images, d.digits));
    const rb = await preprocess({ dataDir: b, sampleCount: 0, ...noProgress });
    expect(rb.manifest.synthetic).toBe(true);
    expect(rb.manifest.sources.train!.synthetic).toBe(true);
    expect(rb.manifest.sources.test!.synthetic).toBe(false);
  });

  it('streams extra in chunks into its own split', async () => {
    const dataDir = join(root, 'extra');
    await mkdir(dataDir);
    await copyFile(FIXTURE, join(dataDir, 'train_32x32.mat'));
    await copyFile(FIXTURE, join(dataDir, 'test_32x32.mat'));
    await copyFile(FIXTURE, join(dataDir, 'extra_32x32.mat'));
    const r = await preprocess({ dataDir, extra: true, chunk: 10, sampleCount: 0, ...noProgress });
    const whole = await readSvhnMat(join(dataDir, 'extra_32x32.mat'));
    const cache = await openCache(dataDir, { verify: true });
    const extra = await readCacheSplit(cache, 'extra');
    expect(r.manifest.options.extra).toBe(true);
    expect(Buffer.from(extra.images).equals(Buffer.from(whole.images))).toBe(true);
    expect(Array.from(extra.labels)).toEqual(Array.from(whole.labels));
  });

  // root ignores directory permissions, so this runs only as an ordinary user (as in CI).
  it.skipIf(process.getuid?.() === 0)('names an unwritable data directory', async () => {
    const dataDir = join(root, 'readonly');
    await mkdir(dataDir);
    await copyFile(FIXTURE, join(dataDir, 'train_32x32.mat'));
    await copyFile(FIXTURE, join(dataDir, 'test_32x32.mat'));
    await chmod(dataDir, 0o555);
    try {
      await expect(preprocess({ dataDir, ...noProgress })).rejects.toMatchObject({ code: 'IO', message: `cannot create a directory in ${dataDir}: permission denied` });
    } finally {
      await chmod(dataDir, 0o755);
    }
  });

  it('fails clearly, writing nothing, on missing or corrupt input and bad options', async () => {
    const dataDir = join(root, 'bad');
    await mkdir(dataDir);
    await expect(preprocess({ dataDir, ...noProgress })).rejects.toMatchObject({
      code: 'MISSING_DATA',
      message: `${join(dataDir, 'train_32x32.mat')} not found`,
      suggestion: expect.stringMatching(/svhn download/),
    });
    await copyFile(FIXTURE, join(dataDir, 'train_32x32.mat'));
    await copyFile(new URL('../../fixtures/mat/bad_truncated.mat', import.meta.url), join(dataDir, 'test_32x32.mat'));
    await expect(preprocess({ dataDir, ...noProgress })).rejects.toThrow(/test_32x32\.mat/);
    expect(await readdir(dataDir)).toEqual(['test_32x32.mat', 'train_32x32.mat']); // no cache, no temp dir

    await expect(preprocess({ dataDir, valFraction: 1.5 })).rejects.toMatchObject({ code: 'BAD_FLAG', exitCode: 2 });
    await expect(preprocess({ dataDir, limit: 0 })).rejects.toThrow(/--limit: expected a positive integer, got 0/);
    await expect(preprocess({ dataDir, chunk: Number.NaN })).rejects.toThrow(/--chunk/);
  });
});
