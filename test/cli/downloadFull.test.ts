/**
 * `svhn download --format full` through the real CLI (bin/svhn.js runs dist/: build first)
 * against a loopback server started here that serves the fixture archives
 * (test/fixtures/full/make_full_fixtures.py), with a `--sources` table of their own sizes and
 * MD5s. A good run and a re-run that is a no-op, resume, a checksum failure, Ctrl-C while
 * fetching and while extracting, bad archives and bad flags. No internet.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { interruptWhen, svhnAsync, type CliRun } from '../helpers.js';

const FIXTURES = resolve(import.meta.dirname, '../fixtures/full');
const SPLITS = ['train', 'test', 'extra'] as const;
const EXPECTED = JSON.parse(await readFile(join(FIXTURES, 'expected.json'), 'utf8')) as Record<string, { rows: { file: string; number: string; boxes: number[][] }[] }>;

interface Fault {
  dropAfter?: number; // send this many body bytes, then (once the client has them) cut the connection
  stallAfter?: number; // send this many body bytes, then go silent
  corrupt?: boolean; // flip a byte: same size, wrong MD5
}

/** What the server holds under each name (tests swap in broken archives). */
let served: Record<string, Buffer> = {};
let faults: Record<string, Fault[]> = {};
let seen: { path: string; range?: string }[] = [];
let server: http.Server;
let baseUrl: string;
let tmp: string;

function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
  const name = decodeURIComponent((req.url ?? '/').split('/').pop() ?? '');
  seen.push({ path: req.url ?? '', range: req.headers.range });
  const body = served[name];
  if (!body) {
    res.writeHead(404).end();
    return;
  }
  const fault = faults[name]?.shift() ?? {};
  let data = body;
  if (fault.corrupt) {
    data = Buffer.from(body);
    data[data.length >> 1]! ^= 0xff;
  }
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const start = m ? Number(m[1]) : 0;
  if (m) res.writeHead(206, { 'Content-Length': data.length - start, 'Content-Range': `bytes ${start}-${data.length - 1}/${data.length}` });
  else res.writeHead(200, { 'Content-Length': data.length });
  const rest = data.subarray(start);
  if (fault.dropAfter !== undefined) res.write(rest.subarray(0, fault.dropAfter), () => setTimeout(() => res.socket?.destroy(), 100));
  else if (fault.stallAfter !== undefined) res.write(rest.subarray(0, fault.stallAfter));
  else res.end(rest);
}

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

/** A --sources table for `files` (split -> archive bytes), SVHN's names, no sha256 (as for the real archives). */
async function writeTable(path: string, files: Record<string, Buffer>): Promise<string> {
  const table = Object.fromEntries(SPLITS.map((s) => [s, { file: `${s}.tar.gz`, size: files[s]!.length, md5: md5(files[s]!) }]));
  await writeFile(path, JSON.stringify(table));
  return path;
}

let archives: Record<string, Buffer>;
let table: string;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'svhn-cli-full-'));
  archives = Object.fromEntries(await Promise.all(SPLITS.map(async (s) => [s, await readFile(join(FIXTURES, `${s}.tar.gz`))] as const)));
  table = await writeTable(join(tmp, 'sources.json'), archives);
  server = http.createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/housenumbers`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await rm(tmp, { recursive: true, force: true });
});

beforeEach(() => {
  served = Object.fromEntries(SPLITS.map((s) => [`${s}.tar.gz`, archives[s]!]));
  faults = {};
  seen = [];
});

const svhn = (args: string[]) => svhnAsync(args, { cwd: tmp });
const fullArgs = (dataDir: string, ...more: string[]) => ['download', '--format', 'full', '--base-url', baseUrl, '--sources', table, '--data-dir', dataDir, ...more];
const errorLines = (r: CliRun) => r.stderr.split('\n').filter((l) => l.startsWith('svhn: error:'));
/** Everything under dir (relative paths, sorted), or [] when it does not exist. */
async function tree(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  return (await readdir(dir, { recursive: true })).map(String).sort();
}
async function mtimes(dir: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const p of await tree(dir)) out[p] = (await stat(join(dir, p))).mtimeMs;
  return out;
}

describe('svhn download --format full', () => {
  it('--help shows --format with its default and --sources', async () => {
    const r = await svhn(['download', '--help']);
    expect(r.code).toBe(0);
    const text = r.stdout.replace(/\s+/g, ' ');
    expect(text).toContain('--format <format> cropped: 32x32 digit crops (.mat); full: whole photos with digit boxes (choices: "cropped", "full", default: "cropped")');
    expect(text).toContain('{train,test,extra}.tar.gz (404 MB, 277 MB, 2 GB)');
    expect(text).toContain('--sources <file.json>');
  });

  it('fetches, verifies and extracts each split; a second run is a no-op', async () => {
    const dataDir = join(tmp, 'good');
    const r = await svhn([...fullArgs(dataDir, '--split', 'train,test'), '--json']);
    expect(r.code).toBe(0);
    expect(await tree(dataDir)).toEqual([
      'full', 'full/test', 'full/test.csv', 'full/test/1.png', 'full/test/2.png',
      'full/train', 'full/train.csv', 'full/train/1.png', 'full/train/2.png', 'full/train/3.png',
      'test.tar.gz', 'train.tar.gz',
    ]);
    for (const split of ['train', 'test']) {
      const csv = await readFile(join(dataDir, 'full', `${split}.csv`), 'utf8');
      const rows = EXPECTED[split]!.rows.map((row) => `${row.file},${row.number},${row.boxes.map((b) => b.join(' ')).join(';')}`);
      expect(csv).toBe(['file,number,boxes', ...rows].join('\n') + '\n');
    }
    expect(r.stderr).toContain('train.tar.gz: verifying size and md5');
    expect(r.stderr).toMatch(/train: 3 photos, 6 digit boxes \(2 boxes clipped to the photo's edge\): .*full\/train\/ and .*full\/train\.csv/);
    const summary = JSON.parse(r.stdout) as { format: string; splits: { split: string; download: { status: string }; extract: { status: string; photos: number } }[] };
    expect(summary.format).toBe('full');
    expect(summary.splits.map((s) => [s.split, s.download.status, s.extract.status, s.extract.photos])).toEqual([['train', 'downloaded', 'extracted', 3], ['test', 'downloaded', 'extracted', 2]]);
    expect(seen.map((s) => s.path)).toEqual(['/housenumbers/train.tar.gz', '/housenumbers/test.tar.gz']);

    seen = [];
    const before = await mtimes(dataDir);
    const again = await svhn(fullArgs(dataDir, '--split', 'train,test'));
    expect(again.code).toBe(0);
    expect(seen).toEqual([]); // no request
    expect(await mtimes(dataDir)).toEqual(before); // no write
    expect(again.stderr).toContain('train.tar.gz: present and verified');
    expect(again.stderr).toMatch(/full\/train\/: complete \(3 photos in .*full\/train\.csv\), skipped/);
  });

  it('resumes a partial archive with a Range request, and a transfer that drops mid-body', async () => {
    const dataDir = join(tmp, 'resume');
    await mkdir(dataDir);
    await writeFile(join(dataDir, 'train.tar.gz.part'), archives['train']!.subarray(0, 1000)); // left by an interrupted run
    faults['test.tar.gz'] = [{ dropAfter: 1500 }];
    const r = await svhn(fullArgs(dataDir, '--split', 'train,test'));
    expect(r.code).toBe(0);
    expect(seen).toEqual([
      { path: '/housenumbers/train.tar.gz', range: 'bytes=1000-' },
      { path: '/housenumbers/test.tar.gz', range: undefined },
      { path: '/housenumbers/test.tar.gz', range: 'bytes=1500-' },
    ]);
    expect(r.stderr).toMatch(/train\.tar\.gz: resuming at 1\.0 kB/);
    expect((await readFile(join(dataDir, 'train.tar.gz'))).equals(archives['train']!)).toBe(true);
    expect((await readFile(join(dataDir, 'full', 'test.csv'), 'utf8')).split('\n')[1]).toBe('test/1.png,5,4 1 11 9');
  });

  it('a checksum failure: one line with expected and got, the download deleted, nothing extracted', async () => {
    const dataDir = join(tmp, 'corrupt');
    faults['train.tar.gz'] = [{ corrupt: true }];
    const r = await svhn(fullArgs(dataDir, '--split', 'train'));
    expect(r.code).toBe(1);
    expect(errorLines(r)).toHaveLength(1);
    expect(errorLines(r)[0]).toMatch(new RegExp(`train\\.tar\\.gz from .*: md5 expected ${md5(archives['train']!)}, got [0-9a-f]{32}; deleted the download`));
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(await tree(dataDir)).toEqual([]);
  });

  it('Ctrl-C while fetching: exit 130, no archive and no photos under their final names; the next run resumes', async () => {
    const dataDir = join(tmp, 'int-fetch');
    faults['train.tar.gz'] = [{ stallAfter: 2000 }];
    const r = await interruptWhen(fullArgs(dataDir, '--split', 'train'), async () => ((await stat(join(dataDir, 'train.tar.gz.part')).catch(() => undefined))?.size ?? 0) >= 2000, { cwd: tmp, pollMs: 10, deadlineMs: 60_000 }); // KBs of archive: ask often, to land mid-way
    expect(r.sent).toBe(true);
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/svhn: interrupted/);
    expect(await tree(dataDir)).toEqual(['train.tar.gz.part']); // the resumable partial download, nothing else
    seen = [];
    const again = await svhn(fullArgs(dataDir, '--split', 'train'));
    expect(again.code).toBe(0);
    expect(seen).toEqual([{ path: '/housenumbers/train.tar.gz', range: 'bytes=2000-' }]);
    expect(await tree(join(dataDir, 'full'))).toEqual(['train', 'train.csv', 'train/1.png', 'train/2.png', 'train/3.png']);
  });

  it('Ctrl-C while extracting: exit 130, no folder, no CSV, no temporary; the next run extracts without a request', async () => {
    const dataDir = join(tmp, 'int-extract');
    const r = await interruptWhen(fullArgs(dataDir, '--split', 'train'), (stderr) => stderr.includes('extracting into'), { cwd: tmp, pollMs: 10, deadlineMs: 60_000 }); // KBs of archive: ask often, to land mid-way
    expect(r.sent).toBe(true);
    expect(r.code).toBe(130);
    expect(await tree(join(dataDir, 'full'))).toEqual([]);
    expect(await tree(dataDir)).toEqual(['full', 'train.tar.gz']); // the verified archive is whole; full/ is empty
    seen = [];
    const again = await svhn(fullArgs(dataDir, '--split', 'train'));
    expect(again.code).toBe(0);
    expect(seen).toEqual([]);
    expect(await tree(join(dataDir, 'full'))).toEqual(['train', 'train.csv', 'train/1.png', 'train/2.png', 'train/3.png']);
  });

  it.each([
    ['not_gzip.tar.gz', /train\.tar\.gz: not a gzip file \(incorrect header check\): expected a \.tar\.gz$/],
    ['traversal.tar.gz', /train\.tar\.gz: entry 'train\/\.\.\/\.\.\/evil\.png' climbs out with '\.\.': refused \(expected paths under train\/\)$/],
    ['symlink.tar.gz', /train\.tar\.gz: entry 'train\/1\.png' is a symlink: refused \(expected only files and folders\)$/],
    ['missing_photo.tar.gz', /train\.tar\.gz: train\/2\.png, photo 2 in train\/digitStruct\.mat, is not in the archive$/],
    ['bad_label.tar.gz', /train\.tar\.gz: train\/digitStruct\.mat: photo 2 \(2\.png\): digit 1 has label 11: expected 1\.\.10 \(10 is the digit 0\)$/],
    ['not_hdf5.tar.gz', /train\.tar\.gz: train\/digitStruct\.mat: not an HDF5 file \(MATLAB v7\.3\): expected the HDF5 signature at byte 0 or 512/],
  ])('a verified archive that is bad (%s): one line naming it, exit 1, nothing extracted', async (fixture, message) => {
    const dataDir = join(tmp, `bad-${fixture}`);
    const bad = await readFile(join(FIXTURES, fixture));
    served['train.tar.gz'] = bad;
    const badTable = await writeTable(join(tmp, `sources-${fixture}.json`), { ...archives, train: bad });
    const r = await svhn(['download', '--format', 'full', '--base-url', baseUrl, '--sources', badTable, '--data-dir', dataDir, '--split', 'train']);
    expect(r.code).toBe(1);
    expect(errorLines(r)).toHaveLength(1);
    expect(errorLines(r)[0]).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(await tree(join(dataDir, 'full'))).toEqual([]);
  });

  it.each([
    [['--format', 'zip'], 2, /--format.*'zip'.*cropped, full/],
    [['--sources', 'nothing.json'], 2, /--sources nothing\.json: cannot read .*no such file/],
    [['--sources', 'sources.json'], 2, /--sources sources\.json: train\.sha256: required for the cropped \.mat files/],
  ])('rejects %j before any request', async (args, code, message) => {
    const r = await svhn(['download', '--base-url', baseUrl, '--data-dir', join(tmp, 'flags'), ...args]);
    expect(r.code).toBe(code);
    expect(r.stderr).toMatch(message);
    expect(seen).toEqual([]);
    expect(existsSync(join(tmp, 'flags'))).toBe(false);
  });
});
