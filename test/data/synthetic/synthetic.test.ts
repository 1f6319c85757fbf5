import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../../src/config.js';
import { hashFile } from '../../../src/util/atomic.js';
import { Rng } from '../../../src/util/rng.js';
import { rejection } from '../../helpers.js';
import { SYNTHETIC_MARKER_FILE, generateImages, generateSynthetic, splitSeed, type SyntheticManifest } from '../../../src/data/synthetic/synthetic.js';

const IMG = 3072;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'svhn-synthetic-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Polarity-invariant features: |gray - mean| scaled to unit RMS (light-on-dark and dark-on-light alike). */
function features(images: Uint8Array, n: number): Float32Array {
  const f = new Float32Array(n * 1024);
  for (let i = 0; i < n; i++) {
    let mean = 0;
    for (let p = 0; p < 1024; p++) {
      const o = i * IMG + p * 3;
      const g = (images[o]! + images[o + 1]! + images[o + 2]!) / 3;
      f[i * 1024 + p] = g;
      mean += g;
    }
    mean /= 1024;
    let ss = 0;
    for (let p = 0; p < 1024; p++) {
      const d = Math.abs(f[i * 1024 + p]! - mean);
      f[i * 1024 + p] = d;
      ss += d * d;
    }
    const rms = Math.sqrt(ss / 1024) + 1e-6;
    for (let p = 0; p < 1024; p++) f[i * 1024 + p]! /= rms;
  }
  return f;
}

function classMeans(f: Float32Array, labels: Uint8Array): Float32Array {
  const means = new Float32Array(10 * 1024);
  const counts = new Array<number>(10).fill(0);
  labels.forEach((l, i) => {
    counts[l]!++;
    for (let p = 0; p < 1024; p++) means[l * 1024 + p]! += f[i * 1024 + p]!;
  });
  for (let l = 0; l < 10; l++) for (let p = 0; p < 1024; p++) means[l * 1024 + p]! /= Math.max(1, counts[l]!);
  return means;
}

const dist2 = (a: Float32Array, ai: number, b: Float32Array, bi: number) => {
  let d = 0;
  for (let p = 0; p < 1024; p++) {
    const x = a[ai * 1024 + p]! - b[bi * 1024 + p]!;
    d += x * x;
  }
  return d;
};

describe('generateImages', () => {
  it('makes 32x32x3 uint8 images with digits 0..9, every class present, 1 the most common (as in SVHN)', () => {
    const n = 2000;
    const { images, labels } = generateImages(new Rng(11), n);
    expect(images.length).toBe(n * IMG);
    expect(labels.length).toBe(n);
    const counts = new Array<number>(10).fill(0);
    for (const l of labels) {
      expect(l).toBeLessThanOrEqual(9);
      counts[l]!++;
    }
    expect(Math.min(...counts)).toBeGreaterThan(n / 40);
    expect(counts.indexOf(Math.max(...counts))).toBe(1);
    // Every image has content: the pixel spread is well above the noise floor.
    for (let i = 0; i < n; i += 97) {
      const px = images.subarray(i * IMG, (i + 1) * IMG);
      const mean = px.reduce((a, b) => a + b, 0) / IMG;
      const sd = Math.sqrt(px.reduce((a, b) => a + (b - mean) ** 2, 0) / IMG);
      expect(sd).toBeGreaterThan(4);
    }
  });

  it('is learnable but not trivial: nearest class mean beats chance by far yet stays well below 100%', () => {
    const train = generateImages(new Rng(1), 2000);
    const test = generateImages(new Rng(2), 500);
    const means = classMeans(features(train.images, 2000), train.labels);
    const ft = features(test.images, 500);
    let correct = 0;
    for (let i = 0; i < 500; i++) {
      let best = -1;
      let bestD = Infinity;
      for (let l = 0; l < 10; l++) {
        const d = dist2(ft, i, means, l);
        if (d < bestD) [best, bestD] = [l, d];
      }
      if (best === test.labels[i]) correct++;
    }
    const acc = correct / 500;
    // Chance for this prior-free matcher is 0.1. Real fonts, tight neighbours, clutter, blur
    // and low contrast keep it near 0.21 (the stroke glyphs before them allowed 0.3-0.85);
    // images unrelated to their labels would score 0.1.
    expect(acc).toBeGreaterThan(0.16);
    expect(acc).toBeLessThan(0.85);
    // Per-class mean images differ from one another.
    let minD = Infinity;
    for (let a = 0; a < 10; a++) for (let b = a + 1; b < 10; b++) minD = Math.min(minD, dist2(means, a, means, b));
    expect(Math.sqrt(minD / 1024)).toBeGreaterThan(0.05);
  });

  it('differs per split seed and per seed, repeats for the same one', () => {
    expect(splitSeed(1234, 'train')).not.toBe(splitSeed(1234, 'test'));
    expect(splitSeed(1234, 'test')).not.toBe(splitSeed(1235, 'test'));
    const a = generateImages(new Rng(splitSeed(1234, 'train')), 20);
    const b = generateImages(new Rng(splitSeed(1234, 'test')), 20);
    const c = generateImages(new Rng(splitSeed(1234, 'train')), 20);
    expect(Buffer.from(a.images).equals(Buffer.from(b.images))).toBe(false);
    expect(Buffer.from(a.images).equals(Buffer.from(c.images))).toBe(true);
    expect(Array.from(a.labels)).toEqual(Array.from(c.labels));
  });
});

describe('generateSynthetic', () => {
  const testCount = DEFAULTS.synthetic.sizes.small.test;

  it('writes the same bytes for the same seed and different bytes for another, with a SYNTHETIC manifest', async () => {
    const run = (sub: string, seed: number) => generateSynthetic({ dataDir: join(dir, sub), size: 'small', seed, splits: ['test'] });
    const progress: number[] = [];
    const a = await generateSynthetic({ dataDir: join(dir, 'a'), size: 'small', seed: 7, splits: ['test'], onProgress: (s, d, t) => s === 'test' && t === testCount && progress.push(d) });
    const b = await run('b', 7);
    const c = await run('c', 8);
    const [fa, fb, fc] = [a.files[0]!, b.files[0]!, c.files[0]!];
    expect(fa).toMatchObject({ split: 'test', count: testCount, path: join(dir, 'a', 'test_32x32.mat') });
    expect(fa.sha256).toBe(fb.sha256);
    expect(fa.bytes).toBe(fb.bytes);
    expect(fc.sha256).not.toBe(fa.sha256);
    expect((await hashFile(fa.path)).sha256).toBe(fa.sha256);
    expect((await stat(fa.path)).size).toBe(fa.bytes);
    expect(progress.at(-1)).toBe(testCount);

    const header = Buffer.alloc(116);
    const fh = await open(fa.path, 'r');
    await fh.read(header, 0, 116, 0);
    await fh.close();
    expect(header.toString('latin1')).toMatch(/^MATLAB 5\.0 MAT-file, written by svhn.*SYNTHETIC/);

    const m = JSON.parse(await readFile(join(dir, 'a', SYNTHETIC_MARKER_FILE), 'utf8')) as SyntheticManifest;
    expect(m.synthetic).toBe(true);
    expect(m.note).toMatch(/NOT real SVHN/);
    expect(m).toMatchObject({ seed: 7, size: 'small', counts: { test: testCount } });
    expect(m.files).toHaveLength(1);
    expect(m.files[0]).toMatchObject({ split: 'test', file: 'test_32x32.mat', sha256: fa.sha256, bytes: fa.bytes });
    expect(m.files[0]!.classCounts.reduce((x, y) => x + y, 0)).toBe(testCount);

    // The same request again keeps the file (same seed, size, version, sha256 checked).
    const mtime = (await stat(fa.path)).mtimeMs;
    const again = await run('a', 7);
    expect(again.files[0]!.sha256).toBe(fa.sha256);
    expect((await stat(fa.path)).mtimeMs).toBe(mtime);
  });

  it("reads back through the project's reader with the manifest's class counts", async () => {
    if (!existsSync(new URL('../../../src/data/mat/mat.ts', import.meta.url))) return;
    const { readSvhnMat } = (await import('../../../src/data/mat/mat.js')) as typeof import('../../../src/data/mat/mat.js');
    const m = await readSvhnMat(join(dir, 'a', 'test_32x32.mat'));
    expect(m.count).toBe(testCount);
    const counts = new Array<number>(10).fill(0);
    for (const l of m.labels) counts[l]!++;
    const manifest = JSON.parse(await readFile(join(dir, 'a', SYNTHETIC_MARKER_FILE), 'utf8')) as SyntheticManifest;
    expect(counts).toEqual(manifest.files[0]!.classCounts);
    // The first images are exactly what the generator draws for this split's seed.
    const first = generateImages(new Rng(splitSeed(7, 'test')), 3);
    expect(Buffer.from(m.images.subarray(0, 3 * IMG)).equals(Buffer.from(first.images))).toBe(true);
  });

  it('never writes over a file it did not make (a real .mat beside a missing split, a FIFO), --force or not; replaces its own of another seed', async () => {
    const d = join(dir, 'real-beside');
    await mkdir(d, { recursive: true });
    const realHeader = Buffer.alloc(200, 0);
    realHeader.write('MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Mon Dec 12 2011', 'latin1');
    await writeFile(join(d, 'test_32x32.mat'), realHeader);
    for (const force of [false, true]) {
      const e = await rejection(generateSynthetic({ dataDir: d, size: 'small', seed: 7, splits: ['train', 'test'], force }));
      expect(e.code).toBe('BAD_INPUT');
      expect(e.message).toBe(`${join(d, 'test_32x32.mat')}: expected no file or the synthetic sample, got another file (real SVHN, or yours), which the synthetic sample would replace`);
    }
    expect(await readFile(join(d, 'test_32x32.mat'))).toEqual(realHeader);
    expect(existsSync(join(d, 'train_32x32.mat'))).toBe(false); // refused before any split was written
    expect(existsSync(join(d, SYNTHETIC_MARKER_FILE))).toBe(false);

    await rm(join(d, 'test_32x32.mat'));
    execFileSync('mkfifo', [join(d, 'test_32x32.mat')]);
    await expect(generateSynthetic({ dataDir: d, size: 'small', seed: 7, splits: ['test'] })).rejects.toMatchObject({ code: 'BAD_INPUT' });
    await rm(join(d, 'test_32x32.mat'));

    // The sample's own file, from another seed, is replaced.
    await cp(join(dir, 'c', 'test_32x32.mat'), join(d, 'test_32x32.mat'));
    const own = await generateSynthetic({ dataDir: d, size: 'small', seed: 7, splits: ['test'] });
    expect(own.files[0]!.sha256).toBe((await hashFile(join(dir, 'a', 'test_32x32.mat'))).sha256);
  });

  it('rejects a bad size, seed or split with BAD_FLAG', async () => {
    const base = { dataDir: join(dir, 'bad'), size: 'small' as const, seed: 1, splits: ['test' as const] };
    await expect(generateSynthetic({ ...base, size: 'huge' as 'small' })).rejects.toMatchObject({ code: 'BAD_FLAG' });
    await expect(generateSynthetic({ ...base, seed: -1 })).rejects.toMatchObject({ code: 'BAD_FLAG' });
    await expect(generateSynthetic({ ...base, splits: ['valid' as 'test'] })).rejects.toMatchObject({ code: 'BAD_FLAG', message: expect.stringContaining('valid') });
    await expect(generateSynthetic({ ...base, splits: [] })).rejects.toMatchObject({ code: 'BAD_FLAG' });
  });
});
