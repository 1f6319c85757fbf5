import { chmod, copyFile, mkdtemp, mkdir, readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCache } from '../../src/data/cache/cache.js';
import type { DatasetManifest } from '../../src/data/cache/cacheFormat.js';
import { SVHN_BIN, svhnSync } from '../helpers.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/mat/small_c_u8.mat', import.meta.url));

const svhn = (cwd: string, ...args: string[]) => svhnSync(args, { cwd, timeoutMs: 60_000 });

/**
 * `svhn ARGS` where every write past 0 bytes fails, as on a full disk: the file-size limit at 0
 * with SIGXFSZ ignored makes write() fail with EFBIG after open() created the file.
 */
function svhnNoSpace(cwd: string, ...args: string[]): { code: number | null; stderr: string } {
  const r = spawnSync('sh', ['-c', 'trap "" XFSZ; ulimit -f 0; exec "$0" "$@"', process.execPath, SVHN_BIN, ...args], { cwd, encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' });
  return { code: r.status, stderr: r.stderr };
}

/**
 * Whether a folder can be made read-only even for root (chmod does not stop root's writes): a
 * read-only bind mount in a private mount namespace (`unshare -m`), gone when the run exits.
 */
const ROOT_READ_ONLY = process.getuid?.() === 0 && spawnSync('unshare', ['-m', 'sh', '-c', 'mount --bind -o ro "$0" "$0"', tmpdir()]).status === 0;
const CAN_READ_ONLY = process.getuid?.() !== 0 || ROOT_READ_ONLY;

/** `svhn ARGS` with `dir` read-only: as root a read-only bind mount (above), otherwise chmod a-w for the run. */
async function svhnReadOnly(cwd: string, dir: string, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  if (ROOT_READ_ONLY) {
    const r = spawnSync('unshare', ['-m', 'sh', '-c', 'mount --bind -o ro "$0" "$0" && exec "$@"', dir, process.execPath, SVHN_BIN, ...args], { cwd, encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  }
  await chmod(dir, 0o555);
  try {
    return svhn(cwd, ...args);
  } finally {
    await chmod(dir, 0o755);
  }
}

describe('svhn preprocess (CLI)', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'svhn-cli-pre-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function fixtureDir(name: string): Promise<string> {
    const dir = join(root, name);
    await mkdir(join(dir, 'data'), { recursive: true });
    await copyFile(FIXTURE, join(dir, 'data', 'train_32x32.mat'));
    await copyFile(FIXTURE, join(dir, 'data', 'test_32x32.mat'));
    return dir;
  }

  it('refuses to build a cache that another live run is building, naming its pid, and leaves it alone', async () => {
    const cwd = await fixtureDir('locked');
    // A live process on this host holds the data directory's lock, as a concurrent preprocess would.
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      const lock = join(cwd, 'data', 'cache.lock');
      await writeFile(lock, JSON.stringify({ pid: holder.pid, host: hostname(), startedAt: new Date().toISOString() }));
      const r = svhn(cwd, 'preprocess');
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(new RegExp(`the cache data/cache: another svhn run \\(pid ${holder.pid}, .*\\) is writing it.*another --data-dir`));
      expect(existsSync(join(cwd, 'data', 'cache'))).toBe(false);
      expect(existsSync(lock)).toBe(true); // not ours to remove
    } finally {
      const exited = new Promise((done) => holder.once('exit', done));
      holder.kill();
      await exited;
    }
    // Its owner gone, the lock is stale: the next run takes it over, builds, and removes it.
    const again = svhn(cwd, 'preprocess');
    expect(again.code, again.stderr).toBe(0);
    expect(existsSync(join(cwd, 'data', 'cache.lock'))).toBe(false);
  });

  it('checks --data-dir first: a file there is one line naming the flag, and nothing is written', async () => {
    const cwd = await fixtureDir('data-dir-file');
    await writeFile(join(cwd, 'notes.md'), '# notes\n');
    for (const extra of [[], ['--images', 'data']]) {
      const r = svhn(cwd, 'preprocess', '--data-dir', 'notes.md', ...extra);
      expect(r.code, extra.join(' ')).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^svhn: error: --data-dir notes\.md: expected a folder (holding train_32x32\.mat and test_32x32\.mat|for the cache), got a file\n$/);
    }
    expect((await readdir(cwd)).sort()).toEqual(['data', 'notes.md']);
  });

  it.skipIf(!CAN_READ_ONLY)('on a read-only data folder: an up-to-date cache is reported, with no lock to take; a stale one is one line', async () => {
    const cwd = await fixtureDir('read-only');
    const dataDir = join(cwd, 'data');
    expect(svhn(cwd, 'preprocess').code).toBe(0);
    const r = await svhnReadOnly(cwd, dataDir, 'preprocess');
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Cache is up to date: data\/cache$/m);

    const stale = await svhnReadOnly(cwd, dataDir, 'preprocess', '--limit', '20');
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(/^svhn: error: cannot create data\/cache\.lock: (read-only file system|permission denied)\n$/m);
    expect((await readdir(dataDir)).sort()).toEqual(['cache', 'test_32x32.mat', 'train_32x32.mat']);
  });

  it('writes cache.lock whole or not at all: a write that fails (full disk) leaves no lock, and the next run builds', async () => {
    const cwd = await fixtureDir('nospace');
    const r = svhnNoSpace(cwd, 'preprocess');
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^svhn: error: cannot create data\/cache\.lock: .*EFBIG/);
    expect((await readdir(join(cwd, 'data'))).sort()).toEqual(['test_32x32.mat', 'train_32x32.mat']);
    const again = svhn(cwd, 'preprocess');
    expect(again.code, again.stderr).toBe(0);
  });

  it('writes the cache, manifest and samples.png, prints the EDA summary, and reuses on a second run', async () => {
    const cwd = await fixtureDir('ok');
    const first = svhn(cwd, 'preprocess', '--log-format', 'json');
    expect(first.stderr).not.toMatch(/error/i);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^train\s+51\s+\(51, 32, 32, 3\)/m);
    expect(first.stdout).toMatch(/Class distribution/);

    const cacheDir = join(cwd, 'data', 'cache');
    const m = JSON.parse(await readFile(join(cacheDir, 'manifest.json'), 'utf8')) as DatasetManifest;
    expect(m.splits.train!.count + m.splits.val!.count).toBe(64);
    expect(m.splits.test!.count).toBe(64);
    for (const s of ['train', 'val', 'test'] as const) {
      expect(m.splits[s]!.classCounts.reduce((a, b) => a + b, 0)).toBe(m.splits[s]!.count);
    }
    for (const f of ['train.images.u8', 'train.labels.u8', 'val.images.u8', 'val.labels.u8', 'test.images.u8', 'test.labels.u8', 'samples.png']) {
      expect(existsSync(join(cacheDir, f)), f).toBe(true);
    }
    expect((await readFile(join(cacheDir, 'samples.png'))).subarray(1, 4).toString()).toBe('PNG');

    // A SIGKILLed run's temporary cache (its pid gone, its lock left too) goes even when the cache is up to date.
    const dead = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
    const killed = join(cwd, 'data', `.tmp-cache-${dead}-lz1x2`);
    await mkdir(killed);
    await copyFile(join(cacheDir, 'train.images.u8'), join(killed, 'train.images.u8'));
    await writeFile(join(cwd, 'data', 'cache.lock'), JSON.stringify({ pid: dead, host: hostname(), startedAt: new Date().toISOString() }));
    const second = svhn(cwd, 'preprocess', '--json', '--log-format', 'json');
    expect(second.code).toBe(0);
    expect(second.stderr).toMatch(/cache is up to date/);
    expect(existsSync(killed)).toBe(false);
    const summary = JSON.parse(second.stdout);
    expect(summary).toMatchObject({ reused: true, synthetic: false, key: m.key });
    expect(summary.splits.test.count).toBe(64);

    // Different flags: rebuilt, downsampled.
    const third = svhn(cwd, 'preprocess', '--json', '--limit', '20', '--val-limit', '6', '--val-fraction', '0.25', '--log-format', 'json');
    expect(third.code).toBe(0);
    expect(JSON.parse(third.stdout)).toMatchObject({ reused: false, splits: { train: { count: 20 }, val: { count: 6 }, test: { count: 64 } } });
  });

  it('replaces only a cache of its own: a folder holding another file is refused with one line naming it, and left as it was', async () => {
    const cwd = await fixtureDir('foreign');
    const cacheDir = join(cwd, 'data', 'cache');
    expect(svhn(cwd, 'preprocess').code).toBe(0);
    await writeFile(join(cacheDir, 'notes.txt'), 'mine\n');
    // Up to date: nothing is replaced, so nothing to refuse.
    expect(svhn(cwd, 'preprocess').code).toBe(0);
    const before = (await readdir(cacheDir)).sort();
    const r = svhn(cwd, 'preprocess', '--limit', '20');
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toBe('svhn: error: data/cache: expected a new folder or an earlier cache (it is replaced whole), got one holding notes.txt; move it, or pass another --data-dir\n');
    await writeFile(join(cacheDir, 'more.txt'), 'mine too\n');
    expect(svhn(cwd, 'preprocess', '--limit', '20').stderr).toMatch(/got one holding more\.txt and 1 more; move them, or pass another --data-dir\n$/);
    expect((await readdir(cacheDir)).sort()).toEqual([...before, 'more.txt'].sort());
    expect((await readdir(join(cwd, 'data'))).sort()).toEqual(['cache', 'test_32x32.mat', 'train_32x32.mat']);

    // A file where the cache goes, likewise.
    await rm(cacheDir, { recursive: true });
    await writeFile(cacheDir, 'not a folder\n');
    const file = svhn(cwd, 'preprocess');
    expect(file.code).toBe(1);
    expect(file.stderr).toBe('svhn: error: data/cache: expected a new folder or an earlier cache (it is replaced whole), got a file; move it, or pass another --data-dir\n');
    expect(await readFile(cacheDir, 'utf8')).toBe('not a folder\n');
  });

  it('detects a corrupted cache file with openCache verify, and rebuilds a truncated one', async () => {
    const cwd = await fixtureDir('corrupt');
    expect(svhn(cwd, 'preprocess', '--log-format', 'json').code).toBe(0);
    const dataDir = join(cwd, 'data');
    const imagesPath = join(dataDir, 'cache', 'val.images.u8');
    const bytes = await readFile(imagesPath);
    bytes[1234] = bytes[1234]! ^ 0xff;
    await writeFile(imagesPath, bytes);
    await expect(openCache(dataDir, { verify: true })).rejects.toThrow(/val\.images\.u8: sha256 differs from manifest\.json/);

    await truncate(imagesPath, 100);
    const again = svhn(cwd, 'preprocess', '--log-format', 'json');
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/damaged; rebuilding/);
    await expect(openCache(dataDir, { verify: true })).resolves.toBeTruthy();
  });

  it('says to run `svhn download` when the .mat files are missing', async () => {
    const cwd = join(root, 'missing');
    await mkdir(cwd);
    const r = svhn(cwd, 'preprocess');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('data/train_32x32.mat not found');
    expect(r.stderr).toContain('run `svhn download` first');
    expect(r.stdout).toBe('');
  });

  it('passes on the reader\'s error for a corrupt .mat, exit 1, and writes no cache', async () => {
    const cwd = await fixtureDir('corrupt-mat');
    await copyFile(fileURLToPath(new URL('../fixtures/mat/bad_corrupt_zlib.mat', import.meta.url)), join(cwd, 'data', 'train_32x32.mat'));
    const r = svhn(cwd, 'preprocess', '--log-format', 'json');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/svhn: error: data\/train_32x32\.mat: .*corrupt/);
    expect((await readdir(join(cwd, 'data'))).sort()).toEqual(['test_32x32.mat', 'train_32x32.mat']);
  });

  it('rejects invalid flags with exit 2 and writes nothing', async () => {
    const cwd = await fixtureDir('flags');
    for (const args of [['--val-fraction', '1.5'], ['--limit', '0'], ['--chunk', 'x'], ['--seed', '-1']]) {
      const r = svhn(cwd, 'preprocess', ...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toContain(args[0]!);
    }
    expect((await readdir(join(cwd, 'data'))).sort()).toEqual(['test_32x32.mat', 'train_32x32.mat']);
  });
});
