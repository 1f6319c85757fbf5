/**
 * The MAT reader against files it did not write: test/fixtures/mat, written by scipy.io.savemat
 * and a MATLAB-style hand-built writer (see /work/shared/fixtures/make_mat_fixtures.py), with
 * expected.json computed by numpy. Edge cases scipy's fixtures lack (big-endian, complex,
 * sparse, other label storage types, a damaged zlib tail) are built here by a small writer
 * that follows the MAT-File Format document.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { inspectMat, readSvhnMat, readSvhnMatChunks, transposeImages, transposeImagesBytewise } from '../../../src/data/mat/mat.js';
import { rejection } from '../../helpers.js';

const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures', 'mat');
const fixture = (name: string) => join(FIXTURES, name);

interface Expected {
  n: number;
  nhwc_sha256: string;
  digits_sha256: string;
  class_counts: number[];
  first_digits: number[];
  nhwc_spots: [number, number, number, number, number][];
}
const EXPECTED = JSON.parse(readFileSync(fixture('expected.json'), 'utf8')) as Record<string, Expected>;
const GOOD = Object.keys(EXPECTED).filter((f) => existsSync(fixture(f)));

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function classCounts(labels: Uint8Array): number[] {
  const counts = new Array<number>(10).fill(0);
  for (const d of labels) counts[d]!++;
  return counts;
}

function expectMatches(images: Uint8Array, labels: Uint8Array, e: Expected) {
  expect(images.length).toBe(e.n * 3072);
  expect(labels.length).toBe(e.n);
  expect(sha256(images)).toBe(e.nhwc_sha256);
  expect(sha256(labels)).toBe(e.digits_sha256);
  expect(classCounts(labels)).toEqual(e.class_counts);
  expect(Array.from(labels.subarray(0, e.first_digits.length))).toEqual(e.first_digits);
  for (const [i, r, c, ch, v] of e.nhwc_spots) expect(images[((i * 32 + r) * 32 + c) * 3 + ch]).toBe(v);
}

async function drainChunks(file: string, chunk: number) {
  const out: { start: number; count: number; total: number; images: Uint8Array; labels: Uint8Array }[] = [];
  for await (const c of readSvhnMatChunks(file, { chunk })) out.push(c);
  return out;
}

/** Open file descriptors of this process (Linux), to check that every path closes its file. */
const openFds = () => (existsSync('/proc/self/fd') ? readdirSync('/proc/self/fd').length : 0);

describe('readSvhnMat on scipy- and MATLAB-style fixtures', () => {
  it('has the fixtures', () => {
    expect(GOOD).toEqual(expect.arrayContaining(['small_c_u8.mat', 'small_u_u8.mat', 'small_c_f64.mat', 'small_ml_c.mat']));
  });

  for (const name of GOOD) {
    it(`${name}: NHWC bytes, digits, class counts and spot checks equal numpy's`, async () => {
      const progress: number[] = [];
      const m = await readSvhnMat(fixture(name), { onProgress: (done, total) => progress.push(done / total) });
      expect(m.file).toBe(fixture(name));
      expect(m.count).toBe(EXPECTED[name]!.n);
      expectMatches(m.images, m.labels, EXPECTED[name]!);
      expect(progress.at(-1)).toBe(1);
    });

    it(`${name}: chunks of 10 (not dividing 64) add up to the same bytes`, async () => {
      const e = EXPECTED[name]!;
      const chunks = await drainChunks(fixture(name), 10);
      expect(chunks.map((c) => c.start)).toEqual(Array.from({ length: Math.ceil(e.n / 10) }, (_, i) => i * 10));
      expect(chunks.map((c) => c.count)).toEqual(chunks.map((c) => Math.min(10, e.n - c.start)));
      for (const c of chunks) {
        expect(c.total).toBe(e.n);
        expect(c.images.length).toBe(c.count * 3072);
        expect(c.labels.length).toBe(c.count);
      }
      expectMatches(Buffer.concat(chunks.map((c) => c.images)), Buffer.concat(chunks.map((c) => c.labels)), e);
    });
  }
});

describe('inspectMat', () => {
  it('lists names, classes, dims and storage without reading the data', async () => {
    const c = await inspectMat(fixture('small_c_u8.mat'));
    expect(c.version).toBe('5.0');
    expect(c.variables.map(({ name, mxClass, dims, compressed }) => ({ name, mxClass, dims, compressed }))).toEqual([
      { name: 'X', mxClass: 'uint8', dims: [32, 32, 3, 64], compressed: true },
      { name: 'y', mxClass: 'uint8', dims: [64, 1], compressed: true },
    ]);
    expect(c.variables[0]!.offset).toBe(128);
    expect(c.variables[1]!.offset).toBeGreaterThan(128);
    const u = await inspectMat(fixture('small_u_u8.mat'));
    expect(u.variables.map((v) => v.compressed)).toEqual([false, false]);
    // Plain elements are 8-byte aligned, so y starts right after X's padded element.
    expect(u.variables[1]!.offset % 8).toBe(0);
    const f = await inspectMat(fixture('small_ml_c.mat'));
    expect(f.variables.map((v) => v.mxClass)).toEqual(['uint8', 'double']);
    const w = await inspectMat(fixture('bad_wrong_names.mat'));
    expect(w.variables.map((v) => v.name).sort()).toEqual(['images', 'labels']);
  });
});

describe('bad files: a clear error naming the file and the problem', () => {
  const cases: [string, RegExp][] = [
    ['bad_truncated.mat', /truncated/],
    ['bad_header_only.mat', /no variables.*only a header/],
    ['bad_empty.mat', /empty file \(0 bytes\)/],
    ['bad_v73.mat', /v7\.3.*HDF5/],
    ['bad_corrupt_zlib.mat', /expected a valid zlib stream.*corrupt compressed data/],
    ['bad_wrong_names.mat', /expected variables X \(images\) and y \(labels\).*found images \(uint8 32x32x3x64\), labels \(uint8 64x1\)/],
    ['bad_shape.mat', /expected X shaped 32x32x3xN.*found X shaped 28x28x1x64/],
    ['bad_label_range.mat', /expected labels y in 1\.\.10.*found y\[3\] = 11.*1 more/],
    ['bad_count_mismatch.mat', /X has 64 images.*found 63 labels/],
  ];

  it('covers every bad_*.mat fixture', () => {
    expect(readdirSync(FIXTURES).filter((f) => f.startsWith('bad_')).sort()).toEqual(cases.map(([f]) => f).sort());
  });

  for (const [name, problem] of cases) {
    it(`${name}`, async () => {
      const fdsBefore = openFds();
      const e = await rejection(readSvhnMat(fixture(name)));
      expect(e.code).toBe('BAD_MAT');
      expect(e.message.startsWith(`${fixture(name)}: expected `)).toBe(true);
      expect(e.message).toMatch(problem);
      expect(e.message).not.toContain('\n');
      expect(e.suggestion).toBeTruthy();
      const c = await rejection(drainChunks(fixture(name), 10));
      expect(c.message).toBe(e.message);
      expect(openFds()).toBe(fdsBefore);
    });
  }

  it('v7.3 suggests re-saving with -v7 or the original files', async () => {
    const e = await rejection(readSvhnMat(fixture('bad_v73.mat')));
    expect(e.suggestion).toMatch(/-v7/);
  });

  it('a missing file says to download first', async () => {
    const e = await rejection(readSvhnMat(join(FIXTURES, 'no_such.mat')));
    expect(e.code).toBe('MISSING_DATA');
    expect(e.message).toContain('no_such.mat');
  });
});

// ---------------------------------------------------------------- files built here

const MI = { INT8: 1, UINT8: 2, INT16: 3, UINT16: 4, INT32: 5, UINT32: 6, SINGLE: 7, DOUBLE: 9, INT64: 12, MATRIX: 14, COMPRESSED: 15 };
const MX = { SPARSE: 5, DOUBLE: 6, SINGLE: 7, INT16: 10, UINT8: 9, INT64: 14 };
const pad8 = (b: Buffer) => Buffer.concat([b, Buffer.alloc((8 - (b.length % 8)) % 8)]);
const u32 = (...v: number[]) => Buffer.from(new Uint32Array(v).buffer);

/** A sub-element: small format (data in the tag) when it fits in 4 bytes, as MATLAB does. */
function subElement(type: number, data: Buffer): Buffer {
  if (data.length <= 4) return Buffer.concat([u32(type | (data.length << 16)), data, Buffer.alloc(4 - data.length)]);
  return Buffer.concat([u32(type, data.length), pad8(data)]);
}

function matrix(opts: { name: string; cls: number; dims: number[]; type?: number; data?: Buffer; complex?: boolean; extra?: Buffer[] }): Buffer {
  const flags = u32(opts.cls | (opts.complex ? 0x0800 : 0), 0);
  const body = Buffer.concat([
    subElement(MI.UINT32, flags),
    subElement(MI.INT32, Buffer.from(new Int32Array(opts.dims).buffer)),
    subElement(MI.INT8, Buffer.from(opts.name)),
    ...(opts.data ? [subElement(opts.type ?? MI.UINT8, opts.data)] : []),
    ...(opts.extra ?? []),
  ]);
  return Buffer.concat([u32(MI.MATRIX, body.length), body]);
}

function compressed(element: Buffer): Buffer {
  const z = deflateSync(element);
  return Buffer.concat([u32(MI.COMPRESSED, z.length), z]);
}

function header(endian = 'IM'): Buffer {
  const h = Buffer.alloc(128, 0x20);
  h.write('MATLAB 5.0 MAT-file, written by the svhn tests', 0, 'latin1');
  h.fill(0, 116, 124);
  h.writeUInt16LE(0x0100, 124);
  h.write(endian, 126, 'latin1');
  return h;
}

/** n images whose NHWC bytes are known independently: pixel (i, h, w, c) = (i*13 + h*5 + w*3 + c*101) % 256. */
function svhnX(n: number): { colMajor: Buffer; nhwc: Buffer } {
  const colMajor = Buffer.alloc(n * 3072);
  const nhwc = Buffer.alloc(n * 3072);
  for (let i = 0; i < n; i++)
    for (let c = 0; c < 3; c++)
      for (let w = 0; w < 32; w++)
        for (let h = 0; h < 32; h++) {
          const v = (i * 13 + h * 5 + w * 3 + c * 101) % 256;
          colMajor[h + 32 * w + 1024 * c + 3072 * i] = v;
          nhwc[((i * 32 + h) * 32 + w) * 3 + c] = v;
        }
  return { colMajor, nhwc };
}

const tmp = mkdtempSync(join(tmpdir(), 'svhn-mat-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let fileNo = 0;
function writeMat(parts: Buffer[]): string {
  const path = join(tmp, `f${fileNo++}.mat`);
  writeFileSync(path, Buffer.concat(parts));
  return path;
}

describe('storage variants built by the test writer', () => {
  const n = 5;
  const { colMajor, nhwc } = svhnX(n);
  const stored = [3, 10, 1, 7, 10]; // digits 3, 0, 1, 7, 0
  const digits = [3, 0, 1, 7, 0];
  const X = matrix({ name: 'X', cls: MX.UINT8, dims: [32, 32, 3, n], data: colMajor });

  const labelVariants: [string, number, number, Buffer][] = [
    ['int16', MX.INT16, MI.INT16, Buffer.from(new Int16Array(stored).buffer)],
    ['single', MX.SINGLE, MI.SINGLE, Buffer.from(new Float32Array(stored).buffer)],
    ['double stored as miUINT8', MX.DOUBLE, MI.UINT8, Buffer.from(stored)],
    ['int64', MX.INT64, MI.INT64, Buffer.from(new BigInt64Array(stored.map(BigInt)).buffer)],
  ];
  for (const [what, cls, type, data] of labelVariants) {
    it(`reads y of ${what}, as a 1xN row, plain and compressed`, async () => {
      const y = matrix({ name: 'y', cls, dims: [1, n], type, data });
      for (const file of [writeMat([header(), X, y]), writeMat([header(), compressed(y), compressed(X)])]) {
        const m = await readSvhnMat(file);
        expect(Array.from(m.labels)).toEqual(digits);
        expect(Buffer.from(m.images).equals(nhwc)).toBe(true);
      }
    });
  }

  it('reads y data small enough for the small element format, and one image shaped 32x32x3', async () => {
    const one = svhnX(1);
    const file = writeMat([
      header(),
      compressed(matrix({ name: 'X', cls: MX.UINT8, dims: [32, 32, 3], data: one.colMajor })),
      compressed(matrix({ name: 'y', cls: MX.UINT8, dims: [1, 1], data: Buffer.from([10]) })),
    ]);
    const m = await readSvhnMat(file);
    expect(m.count).toBe(1);
    expect(Array.from(m.labels)).toEqual([0]);
    expect(Buffer.from(m.images).equals(one.nhwc)).toBe(true);
  });

  it('skips other variables and needs no particular order', async () => {
    const other = matrix({ name: 'notes', cls: MX.DOUBLE, dims: [1, 2], type: MI.DOUBLE, data: Buffer.from(new Float64Array([1, 2]).buffer) });
    const file = writeMat([header(), compressed(other), matrix({ name: 'y', cls: MX.UINT8, dims: [n, 1], data: Buffer.from(stored) }), compressed(X)]);
    const { variables } = await inspectMat(file);
    expect(variables.map((v) => v.name)).toEqual(['notes', 'y', 'X']);
    expect(Buffer.from((await readSvhnMat(file)).images).equals(nhwc)).toBe(true);
  });

  it('gathers images split across 1 MiB read and inflate pieces (700 images, 2.1 MB)', async () => {
    const big = 700;
    const xs = svhnX(big);
    const labels = Buffer.from(Array.from({ length: big }, (_, i) => 1 + (i % 10)));
    const Xb = matrix({ name: 'X', cls: MX.UINT8, dims: [32, 32, 3, big], data: xs.colMajor });
    const yb = matrix({ name: 'y', cls: MX.UINT8, dims: [big, 1], data: labels });
    for (const file of [writeMat([header(), Xb, yb]), writeMat([header(), compressed(Xb), compressed(yb)])]) {
      const whole = await readSvhnMat(file);
      expect(Buffer.from(whole.images).equals(xs.nhwc)).toBe(true);
      expect(Array.from(whole.labels.subarray(0, 11))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
      for (const chunk of [10, 333]) {
        const parts = await drainChunks(file, chunk);
        expect(parts.length).toBe(Math.ceil(big / chunk));
        expect(Buffer.concat(parts.map((c) => c.images)).equals(xs.nhwc)).toBe(true);
        expect(Buffer.concat(parts.map((c) => c.labels)).equals(Buffer.from(whole.labels))).toBe(true);
      }
    }
  });

  const yOk = matrix({ name: 'y', cls: MX.UINT8, dims: [n, 1], data: Buffer.from(stored) });
  const rejects: [string, () => Buffer[], RegExp][] = [
    ['big-endian', () => [header('MI'), X, yOk], /expected a little-endian MAT file.*found a big-endian one \('MI'\)/],
    ['not a MAT file', () => [Buffer.from('hello, this is plain text and not a MAT file at all'.repeat(4))], /expected a MATLAB Level 5 MAT file/],
    ['complex X', () => [header(), matrix({ name: 'X', cls: MX.UINT8, dims: [32, 32, 3, n], data: colMajor, complex: true, extra: [subElement(MI.UINT8, colMajor)] }), yOk], /expected a real X, found complex X/],
    ['sparse y', () => [header(), X, matrix({ name: 'y', cls: MX.SPARSE, dims: [n, 1], extra: [subElement(MI.INT32, Buffer.from(new Int32Array([0]).buffer))] })], /expected a full \(dense\) y, found sparse y/],
    ['X of class double', () => [header(), matrix({ name: 'X', cls: MX.DOUBLE, dims: [32, 32, 3, 1], type: MI.DOUBLE, data: Buffer.alloc(3072 * 8) }), yOk], /expected X of class uint8, found X \(double/],
    ['y shaped NxN', () => [header(), X, matrix({ name: 'y', cls: MX.UINT8, dims: [n, 2], data: Buffer.alloc(2 * n, 1) })], /expected y shaped Nx1.*found y shaped 5x2/],
    ['labels 0.5', () => [header(), X, matrix({ name: 'y', cls: MX.DOUBLE, dims: [n, 1], type: MI.DOUBLE, data: Buffer.from(new Float64Array([1, 2, 0.5, 4, 5]).buffer) })], /found y\[2\] = 0\.5/],
    ['a damaged zlib checksum at the end of X', () => {
      const cx = compressed(X);
      cx[cx.length - 1]! ^= 0xff; // adler32 is the stream's last 4 bytes
      return [header(), yOk, cx];
    }, /expected a valid zlib stream in the variable at offset \d+, found corrupt compressed data \(incorrect data check\)/],
    ['a zlib stream cut short inside an intact element', () => {
      const whole = deflateSync(X);
      const z = whole.subarray(0, whole.length >> 1);
      return [header(), yOk, u32(MI.COMPRESSED, z.length), z];
    }, /expected a complete zlib stream in the variable at offset \d+, found a compressed stream that ends early/],
    ['X data shorter than its dims', () => [header(), matrix({ name: 'X', cls: MX.UINT8, dims: [32, 32, 3, n], data: colMajor.subarray(0, 3072 * 2) }), yOk], /expected X data of 15360 bytes stored as miUINT8, found 6144 bytes/],
    ['a plain X whose header claims more images than its element holds', () => {
      const huge = matrix({ name: 'X', cls: MX.UINT8, dims: [32, 32, 3, 600000], data: colMajor });
      huge.writeUInt32LE(600000 * 3072, huge.indexOf(u32(MI.UINT8, colMajor.length)) + 4); // real part's byte count
      return [header(), huge, yOk];
    }, /expected X data that fits in its \d+-byte element, found a header claiming 1843200000 bytes/],
    ['garbage after the header', () => [header(), Buffer.from([99, 0, 0, 0, 8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])], /expected a variable \(miMATRIX or miCOMPRESSED element\) at offset 128, found data type 99/],
    ['a short HDF5 file', () => [Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0])], /v7\.3 MAT file \(HDF5\)/],
  ];
  for (const [what, parts, problem] of rejects) {
    it(`rejects ${what}, naming the file`, async () => {
      const file = writeMat(parts());
      const e = await rejection(readSvhnMat(file));
      expect(e.code).toBe('BAD_MAT');
      expect(e.message.startsWith(`${file}: expected `)).toBe(true);
      expect(e.message).toMatch(problem);
      expect((await rejection(drainChunks(file, 2))).message).toBe(e.message);
    });
  }

  it('rejects a chunk size that is not a positive whole number', async () => {
    const e = await rejection(drainChunks(fixture('small_c_u8.mat'), 0));
    expect(e.code).toBe('BAD_FLAG');
  });

  it('closes the file when the caller stops early', async () => {
    const before = openFds();
    let seen = 0;
    for await (const c of readSvhnMatChunks(fixture('small_c_u8.mat'), { chunk: 7 })) {
      seen += c.count;
      if (seen >= 14) break;
    }
    expect(seen).toBe(14);
    expect(openFds()).toBe(before);
  });
});

describe('transposeImages', () => {
  it('matches the byte loop and the index formula, at any image offset', () => {
    const n = 3;
    const src = Buffer.alloc(8 + n * 3072);
    for (let i = 0; i < src.length; i++) src[i] = (i * 31 + (i >> 8)) & 255;
    const fast = new Uint8Array((n + 1) * 3072);
    const slow = new Uint8Array((n + 1) * 3072);
    transposeImages(src, 8, n, fast, 1);
    transposeImagesBytewise(src, 8, n, slow, 1);
    expect(Buffer.from(fast).equals(Buffer.from(slow))).toBe(true);
    for (const [i, h, w, c] of [[0, 0, 0, 0], [0, 0, 1, 2], [1, 31, 0, 1], [2, 17, 29, 2], [2, 31, 31, 2]] as const) {
      expect(fast[((1 + i) * 32 * 32 + h * 32 + w) * 3 + c]).toBe(src[8 + i * 3072 + c * 1024 + w * 32 + h]);
    }
    expect(fast.subarray(0, 3072).every((v) => v === 0)).toBe(true);
  });
});
