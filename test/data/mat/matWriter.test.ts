import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../../src/util/atomic.js';
import { MI_COMPRESSED, MI_MATRIX, MX_UINT8_CLASS, writeSvhnMat, type SvhnChunk } from '../../../src/data/mat/matWriter.js';

const IMG = 3072;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'svhn-matwriter-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** N pseudo-random NHWC images (every byte value used) and digits 0..9. */
function sample(n: number, seed = 1): SvhnChunk {
  const images = new Uint8Array(n * IMG);
  let s = seed;
  for (let i = 0; i < images.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    images[i] = s >>> 24;
  }
  const labels = Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) % 10);
  return { images, labels };
}

async function* inChunks(c: SvhnChunk, sizes: number[]): AsyncGenerator<SvhnChunk> {
  let at = 0;
  for (const k of sizes) {
    yield { images: c.images.subarray(at * IMG, (at + k) * IMG), labels: c.labels.subarray(at, at + k) };
    at += k;
  }
}

interface ParsedVar {
  name: string;
  mxClass: number;
  dims: number[];
  dataType: number;
  data: Buffer;
}

/** A minimal independent parse: header, then top-level miCOMPRESSED elements of uint8 matrices. */
function parseMat(buf: Buffer): { text: string; version: number; endian: string; vars: ParsedVar[]; compressedLengths: number[] } {
  const text = buf.subarray(0, 116).toString('latin1');
  const version = buf.readUInt16LE(124);
  const endian = buf.subarray(126, 128).toString('latin1');
  const vars: ParsedVar[] = [];
  const compressedLengths: number[] = [];
  let o = 128;
  while (o < buf.length) {
    const type = buf.readUInt32LE(o);
    const len = buf.readUInt32LE(o + 4);
    expect(type).toBe(MI_COMPRESSED);
    expect(o + 8 + len).toBeLessThanOrEqual(buf.length);
    compressedLengths.push(len);
    const m = inflateSync(buf.subarray(o + 8, o + 8 + len));
    o += 8 + len;
    expect(m.readUInt32LE(0)).toBe(MI_MATRIX);
    expect(m.readUInt32LE(4)).toBe(m.length - 8);
    let p = 8;
    const flagsType = m.readUInt32LE(p);
    expect(flagsType).toBe(6);
    const mxClass = m.readUInt32LE(p + 8) & 0xff;
    p += 16;
    expect(m.readUInt32LE(p)).toBe(5); // miINT32 dims
    const dimsLen = m.readUInt32LE(p + 4);
    const dims = Array.from({ length: dimsLen / 4 }, (_, i) => m.readInt32LE(p + 8 + 4 * i));
    p += 8 + ((dimsLen + 7) & ~7);
    const nameTag = m.readUInt32LE(p);
    let name: string;
    if (nameTag >>> 16 !== 0) {
      name = m.subarray(p + 4, p + 4 + (nameTag >>> 16)).toString('latin1');
      p += 8;
    } else {
      const n = m.readUInt32LE(p + 4);
      name = m.subarray(p + 8, p + 8 + n).toString('latin1');
      p += 8 + ((n + 7) & ~7);
    }
    const dataType = m.readUInt32LE(p);
    const n = m.readUInt32LE(p + 4);
    vars.push({ name, mxClass, dims, dataType, data: m.subarray(p + 8, p + 8 + n) });
  }
  return { text, version, endian, vars, compressedLengths };
}

describe('writeSvhnMat', () => {
  it('writes the SVHN layout: header, X uint8 (32,32,3,N) column-major, then y uint8 (N,1) with 10 for 0', async () => {
    const n = 13;
    const s = sample(n);
    const path = join(dir, 'a.mat');
    const res = await writeSvhnMat(path, { count: n, chunks: inChunks(s, [5, 0, 8]), header: 'MATLAB 5.0 MAT-file, written by svhn, SYNTHETIC' });
    const buf = await readFile(path);
    expect(res.bytes).toBe(buf.length);
    expect(res.sha256).toBe(sha256(buf));

    const mat = parseMat(buf);
    expect(mat.text.startsWith('MATLAB 5.0 MAT-file, written by svhn, SYNTHETIC')).toBe(true);
    expect(mat.version).toBe(0x0100);
    expect(mat.endian).toBe('IM');
    expect(mat.vars.map((v) => v.name)).toEqual(['X', 'y']);
    const [X, y] = mat.vars as [ParsedVar, ParsedVar];
    expect(X.mxClass).toBe(MX_UINT8_CLASS);
    expect(X.dims).toEqual([32, 32, 3, n]);
    expect(X.dataType).toBe(2);
    expect(X.data.length).toBe(n * IMG);
    // Column-major: X(h, w, c, i) at h + 32 w + 1024 c + 3072 i; NHWC at ((i 32 + h) 32 + w) 3 + c.
    for (const [i, h, w, c] of [[0, 0, 0, 0], [0, 31, 0, 0], [0, 0, 31, 2], [7, 5, 9, 1], [12, 31, 31, 2]] as const) {
      expect(X.data[h + 32 * w + 1024 * c + IMG * i]).toBe(s.images[((i * 32 + h) * 32 + w) * 3 + c]);
    }
    expect(y.mxClass).toBe(MX_UINT8_CLASS);
    expect(y.dims).toEqual([n, 1]);
    expect(Array.from(y.data)).toEqual(Array.from(s.labels, (l) => (l === 0 ? 10 : l)));
    expect(await readdir(dir)).toEqual(['a.mat']); // no temp file left behind
  });

  it("round-trips through the project's reader (src/data/mat/mat.ts) when it is there", async () => {
    const readerPath = new URL('../../../src/data/mat/mat.ts', import.meta.url);
    if (!existsSync(readerPath)) return;
    const { readSvhnMat } = (await import('../../../src/data/mat/mat.js')) as typeof import('../../../src/data/mat/mat.js');
    const n = 2085; // more than one 2,048-image stage, so the staging seams are crossed
    const s = sample(n, 3);
    const path = join(dir, 'b.mat');
    await writeSvhnMat(path, { count: n, chunks: inChunks(s, [1, 2000, 83, 1]) });
    const m = await readSvhnMat(path);
    expect(m.count).toBe(n);
    expect(Buffer.from(m.images).equals(Buffer.from(s.images))).toBe(true);
    expect(Array.from(m.labels)).toEqual(Array.from(s.labels));
  });

  const hasScipy = spawnSync('python3', ['-c', 'import scipy.io'], { stdio: 'ignore' }).status === 0;
  it.skipIf(!hasScipy)('is read by scipy.io.loadmat to the same pixels and labels', async () => {
    const n = 9;
    const s = sample(n, 5);
    const path = join(dir, 'c.mat');
    const nhwc = join(dir, 'c.nhwc');
    await writeSvhnMat(path, { count: n, chunks: inChunks(s, [9]) });
    await writeFile(nhwc, s.images);
    const py = [
      'import sys, numpy as np, scipy.io as sio',
      'm = sio.loadmat(sys.argv[1])',
      'X, y = m["X"], m["y"]',
      'assert X.dtype == np.uint8 and X.shape == (32, 32, 3, int(sys.argv[3])), (X.dtype, X.shape)',
      'assert y.dtype == np.uint8 and y.shape == (int(sys.argv[3]), 1), (y.dtype, y.shape)',
      'ref = np.fromfile(sys.argv[2], dtype=np.uint8).reshape(-1, 32, 32, 3)',
      'assert (np.transpose(X, (3, 0, 1, 2)) == ref).all()',
      'print(",".join(str(v) for v in y[:, 0]))',
    ].join('\n');
    const r = spawnSync('python3', ['-c', py, path, nhwc, String(n)], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(Array.from(s.labels, (l) => (l === 0 ? 10 : l)).join(','));
  });

  it('rejects a count mismatch or a bad label, leaving an existing file untouched and no temp file', async () => {
    const path = join(dir, 'keep', 'd.mat');
    const s = sample(4, 7);
    await writeSvhnMat(path, { count: 4, chunks: inChunks(s, [4]) });
    const before = await readFile(path);

    await expect(writeSvhnMat(path, { count: 5, chunks: inChunks(s, [4]) })).rejects.toMatchObject({ code: 'BAD_INPUT', message: expect.stringContaining('expected 5 images, got 4') });
    await expect(writeSvhnMat(path, { count: 3, chunks: inChunks(s, [4]) })).rejects.toMatchObject({ code: 'BAD_INPUT' });
    const bad = { images: s.images, labels: Uint8Array.from([1, 2, 10, 3]) };
    await expect(writeSvhnMat(path, { count: 4, chunks: inChunks(bad, [4]) })).rejects.toMatchObject({ code: 'BAD_INPUT', message: expect.stringContaining('label 10') });
    const short = { images: s.images.subarray(0, 100), labels: s.labels };
    await expect(writeSvhnMat(path, { count: 4, chunks: [short] })).rejects.toMatchObject({ code: 'BAD_INPUT' });

    expect((await readFile(path)).equals(before)).toBe(true);
    expect(await readdir(join(dir, 'keep'))).toEqual(['d.mat']);
  });

  it('writes an empty file (N = 0) that still parses', async () => {
    const path = join(dir, 'e.mat');
    await writeSvhnMat(path, { count: 0, chunks: [] });
    const mat = parseMat(await readFile(path));
    expect(mat.vars.map((v) => [v.name, v.dims])).toEqual([['X', [32, 32, 3, 0]], ['y', [0, 1]]]);
  });
});
