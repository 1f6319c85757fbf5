/**
 * `svhn predict` driven through the real CLI (bin/svhn.js runs dist/: build first) in a temp folder.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTOTYPES, saveColourModel, solidRgb, writeBmp } from '../predict/helpers.js';
import { SVHN_BIN, svhnAsync, svhnSync } from '../helpers.js';
import { writeSvhnMat } from '../../src/data/mat/matWriter.js';

const ROOT = join(import.meta.dirname, '../..');
const MAT = join(ROOT, 'test/fixtures/mat/small_c_u8.mat');
const matExpected = (JSON.parse(readFileSync(join(ROOT, 'test/fixtures/mat/expected.json'), 'utf8')) as Record<string, { n: number; first_digits: number[] }>)['small_c_u8.mat']!;

/** Async, so the vitest worker's event loop keeps answering its RPCs while a run takes its time (a blocked worker under load times out). */
const svhn = (args: string[], cwd: string) => svhnAsync(args, { cwd, timeoutMs: 60_000 });

/** Splits CSV text into rows of cells (RFC 4180 quotes). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (cell += '"'), i++;
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(cell), (cell = '');
    else if (c === '\n') row.push(cell), rows.push(row), (row = []), (cell = '');
    else cell += c;
  }
  return rows;
}

describe('svhn predict', () => {
  let dir: string;
  // file name -> the digit its colour stands for (the colour model predicts it)
  const images: Record<string, number> = {};

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'svhn-cli-predict-'));
    await saveColourModel(join(dir, 'model'));
    const imgDir = join(dir, 'imgs');
    await mkdir(join(imgDir, 'sub'), { recursive: true });
    const raw = (d: number, w: number, h: number) => sharp(solidRgb(d, w, h), { raw: { width: w, height: h, channels: 3 } });
    const write = async (name: string, digit: number, bytes: Buffer) => {
      await writeFile(join(imgDir, name), bytes);
      images[name] = digit;
    };
    await write('a, comma.png', 2, await raw(2, 37, 23).png().toBuffer());
    await write('b.jpg', 4, await raw(4, 120, 80).jpeg().toBuffer());
    await write('c.webp', 3, await raw(3, 20, 30).webp().toBuffer());
    await write('d.gif', 7, await raw(7, 33, 33).gif().toBuffer());
    await write('e.tiff', 6, await raw(6, 50, 9).tiff({ compression: 'lzw' }).toBuffer());
    await write('f.bmp', 5, writeBmp({ width: 13, height: 21, bpp: 24, pixel: () => [...PROTOTYPES[5]!, 255] as [number, number, number, number] }));
    await write('g_grey.png', 8, await sharp(Buffer.alloc(16 * 16, 128), { raw: { width: 16, height: 16, channels: 1 } }).toColourspace('b-w').png().toBuffer());
    const clear = Buffer.alloc(10 * 10 * 4); // fully transparent: flattened to white = digit 1
    await write('h_alpha.png', 1, await sharp(clear, { raw: { width: 10, height: 10, channels: 4 } }).png().toBuffer());
    const png = await raw(9, 40, 40).png().toBuffer();
    await writeFile(join(imgDir, 'x_corrupt.png'), png.subarray(0, 60));
    await writeFile(join(imgDir, 'y_zero.png'), '');
    await writeFile(join(imgDir, 'sub', 'z.png'), await raw(0, 8, 8).png().toBuffer());
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes clean CSV to stdout with error rows for bad files, and exits 3', async () => {
    const r = await svhn(['predict', 'imgs', '--model', 'model', '--backend', 'cpu', '--log-format', 'json'], dir);
    expect(r.code, r.stderr).toBe(3);
    const rows = parseCsv(r.stdout);
    // The columns of before issue 24 keep their places; best and abstained come last.
    expect(rows[0]).toEqual(['input', 'predicted', 'confidence', 'top1', 'top1_prob', 'top2', 'top2_prob', 'top3', 'top3_prob', 'label', 'error', 'best', 'abstained']);
    expect(rows.every((row) => row.length === 13)).toBe(true); // nothing but CSV on stdout
    const body = rows.slice(1);
    expect(body.map((row) => row[0])).toEqual([...Object.keys(images).sort(), 'x_corrupt.png', 'y_zero.png'].map((n) => join('imgs', n)));
    for (const row of body.slice(0, -2)) {
      const name = row[0]!.slice('imgs/'.length);
      expect([name, Number(row[1])]).toEqual([name, images[name]]);
      expect(Number(row[2])).toBeGreaterThan(0.5);
      expect(row[10]).toBe('');
      expect(row.slice(11)).toEqual([row[1], 'false']); // no --min-confidence: never abstains
    }
    expect(body.at(-2)![1]).toBe('');
    expect(body.at(-2)!.slice(11)).toEqual(['', 'false']);
    expect(r.stderr).not.toMatch(/ abstained/); // the summary line says nothing of it without the flag
    expect(body.at(-2)![10]).toMatch(/not a readable image/);
    expect(body.at(-1)![10]).toBe('empty file (0 bytes)');
    expect(r.stderr).toMatch(/2 failed/);
  });

  it('writes JSON lines to --out (stdout stays empty), recursing into subfolders', async () => {
    const r = await svhn(['predict', 'imgs/sub', 'imgs/b.jpg', '--model', 'model', '--format', 'jsonl', '--out', 'out/rows.jsonl', '--top-k', '2', '--backend', 'cpu'], dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    const lines = (await readFile(join(dir, 'out/rows.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ input: 'imgs/sub/z.png', predicted: 0, label: null, error: null });
    expect(lines[0].top).toHaveLength(2);
    expect(lines[1]).toMatchObject({ input: 'imgs/b.jpg', predicted: 4 });
    const rec = await svhn(['predict', 'imgs', '--recursive', '--model', 'model', '--format', 'jsonl', '--backend', 'cpu'], dir);
    expect(rec.stdout.trim().split('\n').map((l) => JSON.parse(l).input)).toContain('imgs/sub/z.png');
  });

  it('predicts a .mat file with true labels and draws a --grid', async () => {
    const r = await svhn(['predict', MAT, '--model', 'model', '--grid', 'grid.png', '--grid-count', '12', '--backend', 'cpu'], dir);
    expect(r.code, r.stderr).toBe(0);
    const rows = parseCsv(r.stdout).slice(1);
    expect(rows).toHaveLength(matExpected.n);
    expect(rows.slice(0, matExpected.first_digits.length).map((row) => Number(row[9]))).toEqual(matExpected.first_digits);
    expect(rows[3]![0]).toBe(`${MAT}#3`);
    expect(r.stderr).toMatch(/, accuracy \d\.\d{4} \(95% CI \d\.\d{3}-\d\.\d{3}, Wilson\) on \d+ labelled/);
    const meta = await sharp(join(dir, 'grid.png')).metadata();
    expect(meta.format).toBe('png');
    expect(meta.width! * meta.height!).toBeGreaterThan(12 * 128 * 128);
  });

  it('--min-confidence P: rows below P abstain (predicted empty, best kept), at or above P answer; the exit code is unchanged; the summary counts them', async () => {
    await mkdir(join(dir, 'unsure'), { recursive: true });
    // Left half red, right half green: the mean colour sits between prototypes, so the top probability is split.
    const split = Buffer.alloc(32 * 32 * 3);
    for (let i = 0; i < 32 * 32; i++) split.set(i % 32 < 16 ? PROTOTYPES[2]! : PROTOTYPES[3]!, i * 3);
    await writeFile(join(dir, 'unsure', 'a_split.png'), await sharp(split, { raw: { width: 32, height: 32, channels: 3 } }).png().toBuffer());
    await writeFile(join(dir, 'unsure', 'b_blue.png'), await sharp(solidRgb(4, 32, 32), { raw: { width: 32, height: 32, channels: 3 } }).png().toBuffer());
    await writeFile(join(dir, 'unsure', 'c_empty.png'), '');
    const run = (extra: string[]) => svhn(['predict', 'unsure', '--model', 'model', '--backend', 'cpu', '--format', 'jsonl', '--log-format', 'json', ...extra], dir);
    const jsonl = (text: string) => text.trim().split('\n').map((l) => JSON.parse(l));
    const plain = await run([]);
    expect(plain.code, plain.stderr).toBe(3); // the empty file
    const [split0, blue, empty] = jsonl(plain.stdout);
    expect(split0).toMatchObject({ input: 'unsure/a_split.png', abstained: false, error: null });
    expect(split0.best).toBe(split0.predicted);
    expect(blue).toMatchObject({ predicted: 4, best: 4, abstained: false });
    expect(empty).toMatchObject({ predicted: null, best: null, abstained: false, error: 'empty file (0 bytes)' });
    const p = split0.confidence as number; // 6 decimals, like P given on the command line
    expect(p).toBeLessThan(0.6);
    expect(blue.confidence).toBeGreaterThan(0.9);

    // Just above the split row's confidence: it abstains, the blue one does not.
    const above = (p + 0.000001).toFixed(6);
    for (const format of ['jsonl', 'csv']) {
      const r = await svhn(['predict', 'unsure', '--model', 'model', '--backend', 'cpu', '--format', format, '--log-format', 'json', '--min-confidence', above, ...(format === 'csv' ? ['--grid', 'unsure.png'] : [])], dir);
      expect(r.code, r.stderr).toBe(3); // still only the empty file's failure: abstaining is not one
      if (format === 'jsonl') {
        expect(jsonl(r.stdout)).toEqual([{ ...split0, predicted: null, abstained: true }, blue, empty]);
      } else {
        const rows = parseCsv(r.stdout);
        expect(rows[1]).toEqual(['unsure/a_split.png', '', p.toFixed(6), String(split0.best), p.toFixed(6), ...rows[1]!.slice(5, 9), '', '', String(split0.best), 'true']);
        expect(rows[2]!.slice(0, 2)).toEqual(['unsure/b_blue.png', '4']);
        expect(rows[2]!.slice(11)).toEqual(['4', 'false']);
      }
      const summary = JSON.parse(r.stderr.trim().split('\n').find((l) => l.includes('"abstained"'))!);
      expect(summary).toMatchObject({ predicted: 2, abstained: 1, failed: 1 });
      expect(summary.msg).toMatch(new RegExp(`; 1 abstained \\(below --min-confidence ${Number(above)}\\); 1 failed`));
    }
    expect((await sharp(join(dir, 'unsure.png')).metadata()).format).toBe('png');
    // Just below the row's confidence it answers: the row is the plain one (the exact boundary, P itself, is in test/predict).
    const at = await run(['--min-confidence', (p - 0.000001).toFixed(6)]);
    expect(jsonl(at.stdout)).toEqual([split0, blue, empty]);
    // 1: every prediction abstains (a softmax of this model stays under 1); 0 is the default.
    expect(jsonl((await run(['--min-confidence', '1'])).stdout).map((x) => x.abstained)).toEqual([true, true, false]);
    expect((await run(['--min-confidence', '0'])).stdout).toBe(plain.stdout);
    const onlyUnsure = await svhn(['predict', 'unsure/a_split.png', '--model', 'model', '--backend', 'cpu', '--min-confidence', '0.99'], dir);
    expect(onlyUnsure.code, onlyUnsure.stderr).toBe(0); // abstaining is not a failure
    expect(parseCsv(onlyUnsure.stdout)[1]!.slice(11)).toEqual([String(split0.best), 'true']);
  });

  it('--min-confidence: a value outside 0..1 or not a number is one line naming the flag, exit 2', async () => {
    for (const bad of ['1.5', '-0.1', 'abc', '']) {
      const r = await svhn(['predict', 'imgs/b.jpg', '--model', 'model', '--backend', 'cpu', '--min-confidence', bad], dir);
      expect(r.code, `${bad}: ${r.stderr}`).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(new RegExp(`^svhn: error: option '--min-confidence <p>' argument '${bad.replace('.', '\\.')}' is invalid\\. expected a number from 0 to 1`));
    }
  });

  it('reads a cache split with --data-dir', async () => {
    // A minimal cache of 3 solid images (format in src/data/cache/cacheFormat.ts).
    const cacheDir = join(dir, 'data', 'cache');
    await mkdir(cacheDir, { recursive: true });
    const digits = [6, 2, 1];
    const imagesU8 = Buffer.concat(digits.map((d) => solidRgb(d, 32, 32)));
    const labels = Buffer.from(digits);
    await writeFile(join(cacheDir, 'test.images.u8'), imagesU8);
    await writeFile(join(cacheDir, 'test.labels.u8'), labels);
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const split = { count: 3, shape: [3, 32, 32, 3], imagesFile: 'test.images.u8', labelsFile: 'test.labels.u8', classCounts: [0, 1, 1, 0, 0, 0, 1, 0, 0, 0], sha256: { images: sha(imagesU8), labels: sha(labels) } };
    const manifest = { format: 'svhn-cache', version: 1, createdAt: new Date().toISOString(), synthetic: true, key: 'test', options: { valFraction: 0.2, seed: 42, limit: null, valLimit: null, extra: false }, sources: {}, splits: { test: split } };
    await writeFile(join(cacheDir, 'manifest.json'), JSON.stringify(manifest));
    const r = await svhn(['predict', 'cache:test', '--data-dir', 'data', '--model', 'model', '--format', 'jsonl', '--backend', 'cpu'], dir);
    expect(r.code, r.stderr).toBe(0);
    const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(rows.map((x) => [x.input, x.predicted, x.label])).toEqual(digits.map((d, i) => [`cache:test#${i}`, d, d]));
  });

  it('verifies a cache split before predicting it: a flipped bit or a label out of 0..9 is one line naming the file', async () => {
    // Uses the cache the test above wrote.
    const imagesPath = join(dir, 'data/cache/test.images.u8');
    const labelsPath = join(dir, 'data/cache/test.labels.u8');
    const [images, labels] = [await readFile(imagesPath), await readFile(labelsPath)];
    try {
      const flipped = Buffer.from(images);
      flipped[5000]! ^= 1;
      await writeFile(imagesPath, flipped);
      const r = await svhn(['predict', 'cache:test', '--data-dir', 'data', '--model', 'model', '--backend', 'cpu'], dir);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/(^|\n)svhn: error: data\/cache\/test\.images\.u8: sha256 differs from manifest\.json \(expected [0-9a-f]{12}\.\.\., got [0-9a-f]{12}\.\.\.\); re-run `svhn preprocess`\n$/);
      await writeFile(imagesPath, images);
      await writeFile(labelsPath, Buffer.from([6, 12, 1]));
      const l = await svhn(['predict', 'cache:test', '--data-dir', 'data', '--model', 'model', '--backend', 'cpu'], dir);
      expect(l.code).toBe(1);
      expect(l.stdout).toBe('');
      expect(l.stderr).toMatch(/(^|\n)svhn: error: data\/cache\/test\.labels\.u8: expected digits 0\.\.9, got label 12 for image 1; re-run `svhn preprocess`\n$/);
    } finally {
      await writeFile(imagesPath, images);
      await writeFile(labelsPath, labels);
    }
  });

  it('writes thousands of rows to --out without piling listeners on the stream', async () => {
    // Each wait for 'drain' used to leave an 'error' listener behind: the 11th warned on stderr.
    const n = 4000; // ~80 bytes a row: some 20 waits on the file stream's 16 KB buffer
    const digits = Uint8Array.from({ length: n }, (_, i) => i % 10);
    const images = Buffer.concat(Array.from(digits, (d) => solidRgb(d, 32, 32)));
    await writeSvhnMat(join(dir, 'many.mat'), { count: n, chunks: [{ images, labels: digits }], level: 1 });
    const r = await svhn(['predict', 'many.mat', '--model', 'model', '--out', 'many.csv', '--backend', 'cpu', '--batch-size', '1000'], dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/MaxListenersExceededWarning/);
    const rows = parseCsv(await readFile(join(dir, 'many.csv'), 'utf8')).slice(1);
    expect(rows).toHaveLength(n);
    expect(rows.every((row) => row[1] === row[9])).toBe(true);
  });

  it('refuses an --out or --grid that is one of the inputs, leaving it untouched', async () => {
    await mkdir(join(dir, 'own'), { recursive: true });
    await copyFile(join(dir, 'imgs', 'b.jpg'), join(dir, 'own', 'v.jpg'));
    await symlink('v.jpg', join(dir, 'own', 'link.jpg'));
    const before = await readFile(join(dir, 'own', 'v.jpg'));
    const cases: [string[], RegExp][] = [
      [['own/v.jpg', '--out', 'own/v.jpg'], /^svhn: error: --out own\/v\.jpg: expected a file that is not an input, got the input own\/v\.jpg/],
      [['own/v.jpg', '--out', './own/../own/link.jpg'], /--out .*link\.jpg: .*got the input own\/v\.jpg/], // the same file by another path
      [['own', '--out', 'own/v.jpg'], /--out own\/v\.jpg: .*got the input own\/link\.jpg/], // found inside a folder input
      [['own/v.jpg', '--grid', 'own/v.jpg'], /--grid own\/v\.jpg: .*got the input own\/v\.jpg/],
      [['own/v.jpg', '--out', 'same.png', '--grid', './same.png'], /--grid \.\/same\.png: expected a file other than --out same\.png/],
    ];
    for (const [args, message] of cases) {
      const r = await svhn(['predict', ...args, '--model', 'model', '--backend', 'cpu'], dir);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stdout).toBe('');
      expect(await readFile(join(dir, 'own', 'v.jpg'))).toEqual(before);
    }
  });

  it('refuses an --out or --grid inside the model directory or the preprocess cache, by any spelling, leaving them untouched', async () => {
    await symlink('model', join(dir, 'model-link'));
    await mkdir(join(dir, 'data/cache'), { recursive: true });
    await writeFile(join(dir, 'data/cache/manifest.json'), '{}');
    const modelFiles = ['model.json', 'weights.bin'];
    const before = await Promise.all(modelFiles.map((f) => readFile(join(dir, 'model', f))));
    const cases: [string[], RegExp][] = [
      [['--out', 'model/weights.bin'], /^svhn: error: --out model\/weights\.bin: expected a file outside the model directory model, which holds svhn's own files; write to another folder$/],
      [['--out', 'model/model.json'], /--out model\/model\.json: expected a file outside the model directory model/],
      [['--out', 'model/new.csv'], /--out model\/new\.csv: expected a file outside the model directory model/],
      [['--grid', 'model/curves.png'], /--grid model\/curves\.png: expected a file outside the model directory model/],
      [['--out', 'model-link/weights.bin'], /--out model-link\/weights\.bin: expected a file outside the model directory model/],
      [['--out', join(dir, 'model/./weights.bin')], /expected a file outside the model directory model/],
      [['--out', 'data/cache/manifest.json'], /--out data\/cache\/manifest\.json: expected a file outside the preprocess cache data\/cache/],
      [['--grid', 'data/cache/grid.png'], /--grid data\/cache\/grid\.png: expected a file outside the preprocess cache data\/cache/],
    ];
    for (const [flags, message] of cases) {
      const r = await svhn(['predict', 'imgs/b.jpg', '--model', 'model', '--backend', 'cpu', ...flags], dir);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim()).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stdout).toBe('');
    }
    expect(await Promise.all(modelFiles.map((f) => readFile(join(dir, 'model', f))))).toEqual(before);
    expect(await readFile(join(dir, 'data/cache/manifest.json'), 'utf8')).toBe('{}');
    // the same model through the link: fine to read, never to write into
    const ok = await svhn(['predict', 'imgs/b.jpg', '--model', 'model-link', '--backend', 'cpu', '--out', 'ok.csv'], dir);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('ends quietly when its reader goes away (`svhn predict ... | head -1`): exit 0, no warning, no error', async () => {
    // A convolution on wasm starts helper threads; each pipes its stdout into ours and adds an
    // 'error' listener to it, so a wait for 'drain' that added one more used to cross ten
    // (MaxListenersExceededWarning) when the write that met the closed pipe returned false.
    await saveColourModel(join(dir, 'model-conv'), { conv: true });
    const n = 3000;
    const digits = Uint8Array.from({ length: n }, (_, i) => i % 10);
    await writeSvhnMat(join(dir, 'pipe.mat'), { count: n, chunks: [{ images: Buffer.concat(Array.from(digits, (d) => solidRgb(d, 32, 32))), labels: digits }], level: 1 });
    const args = ['predict', 'pipe.mat', '--model', 'model-conv', '--backend', 'wasm', '--threads', '2', '--batch-size', '100', '--log-format', 'json'];
    const child = spawn(process.execPath, [SVHN_BIN, ...args], { cwd: dir, env: { ...process.env, NO_COLOR: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
      if (stdout.includes('\n')) child.stdout.destroy(); // like head -1: read one line, close the pipe
    });
    child.stderr.on('data', (d) => (stderr += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const code = await new Promise<number | null>((done) => child.on('close', (c) => done(c)));
    clearTimeout(killer);
    expect(stdout.split('\n')[0]).toBe('input,predicted,confidence,top1,top1_prob,top2,top2_prob,top3,top3_prob,label,error,best,abstained');
    expect(code, stderr).toBe(0);
    expect(stderr).not.toMatch(/MaxListenersExceededWarning|Warning:/);
    expect(stderr).not.toMatch(/svhn: error|^\s+at /m);
  });

  it('fails with one clear line on a missing input, a missing model or a bad flag', async () => {
    const missing = await svhn(['predict', 'nope.png', '--model', 'model'], dir);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr.trim()).toMatch(/^svhn: error: INPUT nope\.png: no such file or directory/);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    const noModel = await svhn(['predict', 'imgs', '--model', 'models/none'], dir);
    expect(noModel.code).not.toBe(0);
    expect(noModel.stderr).toMatch(/--model models\/none: no such model directory/);
    expect(noModel.stdout).toBe('');
    const badK = await svhn(['predict', 'imgs', '--model', 'model', '--top-k', '11'], dir);
    expect(badK.code).toBe(2);
    const cores = availableParallelism();
    const threads = await svhn(['predict', 'imgs', '--model', 'model', '--threads', String(cores + 1)], dir);
    expect(threads.code).toBe(2);
    expect(threads.stderr.trim()).toMatch(new RegExp(`^svhn: error: .*--threads.*expected at most ${cores} \\(the cores here\\), got ${cores + 1}`));
  });

  it('refuses a model whose weights are NaN, in one line naming weights.bin', async () => {
    await cp(join(dir, 'model'), join(dir, 'model-nan'), { recursive: true });
    const size = (await readFile(join(dir, 'model-nan/weights.bin'))).byteLength;
    await writeFile(join(dir, 'model-nan/weights.bin'), Buffer.from(new Float32Array(size / 4).fill(NaN).buffer));
    const r = await svhn(['predict', 'imgs/b.jpg', '--model', 'model-nan', '--backend', 'cpu'], dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/(^|\n)svhn: error: model-nan\/weights\.bin: weight \S+ holds NaN at element 0 of \d+; expected finite numbers; the model is damaged: train it again or restore its files\n$/);
  });

  it('refuses a named input that is not a regular file (a FIFO) up front instead of blocking on it', async () => {
    execFileSync('mkfifo', [join(dir, 'f.png')]);
    try {
      const r = svhnSync(['predict', 'f.png', '--model', 'model'], { cwd: dir, timeoutMs: 20_000 });
      expect(r.code).toBe(1);
      expect(r.stderr.trim()).toMatch(/^svhn: error: INPUT f\.png: expected a regular file or a folder, got a FIFO/);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stdout).toBe('');
    } finally {
      rmSync(join(dir, 'f.png'));
    }
  });
});
