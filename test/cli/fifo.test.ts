/**
 * A FIFO where svhn reads a file (a model's, the cache's, a checkpoint's, a lock, a source):
 * every command refuses it at once with one line naming the file, instead of blocking in
 * open() or read() on libuv's thread pool, where not even Ctrl-C ends the process
 * (util/files.ts readRegularFile / openRegularFile). Each command runs against a fresh copy
 * of a small fixture with one file swapped for a FIFO; a hang is killed by the timeout and
 * fails the case.
 */
import { execFileSync } from 'node:child_process';
import { copyFile, cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SVHN_SOURCES } from '../../src/data/sources/sources.js';
import { CHECKPOINT_FORMAT, CHECKPOINT_VERSION } from '../../src/train/checkpoint.js';
import { writeTinyCache } from '../evaluate/fixtures.js';
import { svhnAsync, svhnSync } from '../helpers.js';

const MAT = fileURLToPath(new URL('../fixtures/mat/small_c_u8.mat', import.meta.url));

let root: string;
let fixture: string;
/** Answers as if it held test_32x32.mat (its first bytes, then nothing): the download gets as far as opening its .part. */
let server: http.Server;
let baseUrl: string;

/**
 * The fixture every case copies: M, a baseline model trained by the CLI (with its evaluation
 * of the test split, which report reads); data/cache, a tiny preprocess cache; src/, two MAT
 * files to preprocess; x.png, an image to predict.
 */
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'svhn-cli-fifo-'));
  fixture = join(root, 'fixture');
  await writeTinyCache(join(fixture, 'data'), { splits: { train: 20, val: 10, test: 20 }, synthetic: true });
  const opts = { cwd: fixture, timeoutMs: 120_000 };
  const trained = svhnSync(['train', '--model', 'baseline', '--data-dir', 'data', '--epochs', '1', '--batch-size', '10', '--backend', 'wasm', '--out', 'M'], opts);
  expect(trained.code, trained.stderr).toBe(0);
  const evaluated = svhnSync(['evaluate', '--model', 'M', '--data-dir', 'data', '--backend', 'cpu'], opts);
  expect(evaluated.code, evaluated.stderr).toBe(0);
  await mkdir(join(fixture, 'src'));
  await copyFile(MAT, join(fixture, 'src', 'train_32x32.mat'));
  await copyFile(MAT, join(fixture, 'src', 'test_32x32.mat'));
  await sharp(Buffer.alloc(32 * 32 * 3, 90), { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(join(fixture, 'x.png'));
  server = http.createServer((_req, res) => res.writeHead(200, { 'content-length': SVHN_SOURCES.test!.size }).write(Buffer.alloc(1000)));
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((done) => server.close(done));
  await rm(root, { recursive: true, force: true });
});

interface FifoCase {
  args: string[]; // BASE_URL stands for the loopback server's
  /** Relative to the case's folder: made a FIFO before the run. */
  fifo: string;
  /** Prepares the case's folder first (e.g. a checkpoint to resume). */
  setup?: (dir: string) => Promise<void>;
}

const BASE_URL = '<base-url>';
const PREDICT = ['predict', 'x.png', '--model', 'M', '--backend', 'cpu'];
const PREDICT_CACHE = ['predict', 'cache:test', '--model', 'M', '--data-dir', 'data', '--backend', 'cpu'];
const EVALUATE = ['evaluate', '--model', 'M', '--data-dir', 'data', '--backend', 'cpu', '--out', 'ev'];
const SERVE = ['serve', '--model', 'M', '--port', '0', '--backend', 'cpu'];
const TRAIN = ['train', '--model', 'baseline', '--data-dir', 'data', '--epochs', '1', '--batch-size', '10', '--backend', 'cpu', '--out', 'out'];
const INIT = ['train', '--init', 'M', '--data-dir', 'data', '--epochs', '1', '--batch-size', '10', '--backend', 'cpu', '--out', 'out'];
const RESUME = [...TRAIN, '--resume'];
const PREPROCESS = ['preprocess', '--data-dir', 'src'];
const REPORT = ['report', '--model', 'M', '--data-dir', 'data', '--backend', 'cpu', '--out', 'r.html'];
const SYNTHETIC = ['download', '--synthetic', '--size', 'small', '--split', 'test', '--data-dir', 'src'];

/** A checkpoint whose state file points at tensors-1.bin (enough to be read; the FIFO is met first). */
async function checkpoint(dir: string): Promise<void> {
  await mkdir(join(dir, 'out.checkpoint'));
  await writeFile(join(dir, 'out.checkpoint', 'state.json'), JSON.stringify({ format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, tensorsFile: 'tensors-1.bin', tensors: [] }));
}

const CASES: FifoCase[] = [
  ...['M/model.json', 'M/metadata.json', 'M/weights.bin'].flatMap((fifo) => [
    { args: PREDICT, fifo },
    { args: EVALUATE, fifo },
    { args: SERVE, fifo },
    { args: INIT, fifo },
    { args: REPORT, fifo },
  ]),
  ...['manifest.json', 'test.images.u8', 'test.labels.u8'].flatMap((f) => [
    { args: PREDICT_CACHE, fifo: `data/cache/${f}` },
    { args: EVALUATE, fifo: `data/cache/${f}` },
  ]),
  ...['manifest.json', 'train.images.u8', 'train.labels.u8', 'val.images.u8', 'val.labels.u8'].map((f) => ({ args: TRAIN, fifo: `data/cache/${f}` })),
  { args: TRAIN, fifo: 'out.lock' },
  { args: RESUME, fifo: 'out.checkpoint/state.json', setup: async (dir) => mkdir(join(dir, 'out.checkpoint')).then(() => undefined) },
  { args: RESUME, fifo: 'out.checkpoint/tensors-1.bin', setup: checkpoint },
  { args: PREPROCESS, fifo: 'src/train_32x32.mat' },
  { args: PREPROCESS, fifo: 'src/test_32x32.mat' },
  { args: PREPROCESS, fifo: 'src/SYNTHETIC.json' },
  { args: PREPROCESS, fifo: 'src/cache/manifest.json', setup: async (dir) => mkdir(join(dir, 'src', 'cache')).then(() => undefined) },
  { args: PREPROCESS, fifo: 'src/cache.lock' },
  { args: ['predict', 'src/test_32x32.mat', '--model', 'M', '--backend', 'cpu'], fifo: 'src/test_32x32.mat' },
  { args: REPORT, fifo: 'M/evaluation/report.json' },
  { args: REPORT, fifo: 'M/evaluation/confusion.png' },
  { args: REPORT, fifo: 'M/history.json' }, // the curves are drawn from it
  { args: REPORT, fifo: 'M/curves.png', setup: async (dir) => rm(join(dir, 'M', 'history.json')) }, // read only where there is no history
  { args: SYNTHETIC, fifo: 'src/SYNTHETIC.json' },
  { args: ['download', '--split', 'test', '--data-dir', 'src', '--base-url', BASE_URL], fifo: 'src/test_32x32.mat.part', setup: async (dir) => rm(join(dir, 'src', 'test_32x32.mat')) },
];

const nameOf = ({ args }: FifoCase) => `${args[0]}${args.includes('--init') ? ' --init' : args.includes('--resume') ? ' --resume' : ''}`;

let seq = 0;

/** A fresh copy of the fixture with `c.fifo` a FIFO. */
async function caseDir(c: FifoCase): Promise<string> {
  const dir = join(root, `case-${++seq}`);
  await cp(fixture, dir, { recursive: true });
  await c.setup?.(dir);
  await rm(join(dir, c.fifo), { force: true });
  execFileSync('mkfifo', [join(dir, c.fifo)]);
  return dir;
}

describe('a FIFO in place of a file svhn reads', () => {
  it.each(CASES.map((c) => [nameOf(c), c.fifo, c] as const))(
    '%s: %s is refused with one line, at once',
    async (_name, fifo, c) => {
      const dir = await caseDir(c);
      const r = await svhnAsync([...c.args.map((a) => (a === BASE_URL ? baseUrl : a)), '--log-format', 'json'], { cwd: dir, timeoutMs: 30_000 });
      const said = r.stderr.split('\n').filter((l) => l.startsWith('svhn:'));
      expect(r.code, `killed after the timeout: ${r.stderr}`).not.toBeNull();
      expect(r.code, r.stderr).not.toBe(0);
      expect(said, r.stderr).toHaveLength(1);
      expect(said[0]).toMatch(/^svhn: error: /);
      expect(said[0]).toContain(fifo);
      expect(said[0]).toMatch(/expected a regular file( or a folder)?, got a FIFO/); // (or a folder: predict's INPUT)
      expect(r.stderr).not.toMatch(/^\s+at /m); // no stack
    },
  );
});
