/**
 * `svhn download --synthetic --format full` through the real CLI (bin/svhn.js runs dist/:
 * build first): the small photo sample's test split end to end, and its one-line errors.
 * The sample itself is tested in test/data/synthetic/photoSample.test.ts.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/config.js';
import { parsePhotoLabels } from '../../src/data/images/photoLabels.js';
import { SVHN_BIN, svhnAsync } from '../helpers.js';

const ROOT = resolve(import.meta.dirname, '../..');
const BUILT = existsSync(join(ROOT, 'dist/data/synthetic/photoSample.js'));

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'svhn-cli-photos-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const svhn = (args: string[]) => svhnAsync(args, { cwd: tmp });

describe.skipIf(!BUILT)('svhn download --synthetic --format full', () => {
  it('writes the small sample\'s test photos, their labels and the marker, and says they are synthetic', async () => {
    const dataDir = join(tmp, 'data');
    const r = await svhn(['download', '--synthetic', '--format', 'full', '--size', 'small', '--split', 'test', '--seed', '3', '--data-dir', dataDir, '--json']);
    expect(r.code).toBe(0);
    const count = DEFAULTS.synthetic.photoSizes.small.test;
    const summary = JSON.parse(r.stdout) as { synthetic: boolean; format: string; seed: number; root: string; splits: { split: string; count: number; withNumber: number }[] };
    expect(summary).toMatchObject({ synthetic: true, format: 'full', seed: 3, root: join(dataDir, 'full') });
    expect(summary.splits.map((s) => [s.split, s.count])).toEqual([['test', count]]);
    expect(summary.splits[0]!.withNumber / count).toBeGreaterThan(0.85);
    expect((await readdir(join(dataDir, 'full'))).sort()).toEqual(['SYNTHETIC.json', 'test', 'test.csv']);
    expect(await readdir(join(dataDir, 'full', 'test'))).toHaveLength(count);
    const csv = join(dataDir, 'full', 'test.csv');
    const rows = parsePhotoLabels(await readFile(csv, 'utf8'), csv);
    expect(rows).toHaveLength(count);
    expect(rows[0]!.file).toBe('test/1.png');
    expect(r.stderr).toContain('NOT real SVHN');
    expect(r.stderr).toContain(`test: ${count} photos`);
  });

  it('refuses to write over labels it did not make: one line naming the file, exit 1, the file untouched', async () => {
    const dataDir = join(tmp, 'theirs');
    await mkdir(join(dataDir, 'full'), { recursive: true });
    const csv = join(dataDir, 'full', 'test.csv');
    await writeFile(csv, 'file,number\ntest/1.png,7\n');
    const r = await svhn(['download', '--synthetic', '--format', 'full', '--size', 'small', '--split', 'test', '--data-dir', dataDir]);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('svhn: error'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`${csv}: expected no file or the synthetic photo sample's labels`);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack
    expect(await readFile(csv, 'utf8')).toBe('file,number\ntest/1.png,7\n');
    expect(await readdir(join(dataDir, 'full'))).toEqual(['test.csv']);
  });

  it('shows --format with its choices and default in --help', async () => {
    const r = await svhn(['download', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout.replace(/\s+/g, ' ')).toContain('--format <format> cropped: 32x32 digit crops (.mat); full: whole photos with digit boxes (choices: "cropped", "full", default: "cropped")');
  });

  it('Ctrl-C while photos are being written: exit 130, and neither a folder, labels nor a marker left behind', async () => {
    const dataDir = join(tmp, 'interrupted');
    const root = join(dataDir, 'full');
    const child = spawn(process.execPath, [SVHN_BIN, 'download', '--synthetic', '--format', 'full', '--size', 'small', '--split', 'test', '--data-dir', dataDir], { cwd: tmp, env: { ...process.env, NO_COLOR: '1' } });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.resume();
    // Interrupted once the split's temporary folder holds some photos.
    const writing = async () => {
      const temp = existsSync(root) ? (await readdir(root)).find((n) => n.startsWith('.tmp-test-')) : undefined;
      return temp !== undefined && (await readdir(join(root, temp)).catch(() => [])).length >= 20;
    };
    const deadline = Date.now() + 60_000;
    while (!(await writing()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect(code).toBe(130);
    expect(stderr).toMatch(/svhn: interrupted/);
    expect(await readdir(root)).toEqual([]);
  });

  it.each([
    [['--format', 'photos', '--synthetic'], /--format.*'photos'.*cropped, full/],
    [['--format', 'full', '--sources', 'x.json', '--synthetic'], /--sources does not apply with --synthetic/], // without --synthetic, --format full fetches SVHN's archives: downloadFull.test.ts
  ])('rejects %j with one line and exit 2, writing nothing', async (args, message) => {
    const dataDir = join(tmp, 'bad');
    const r = await svhn(['download', '--data-dir', dataDir, '--base-url', 'http://127.0.0.1:9', ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message);
    expect(existsSync(dataDir)).toBe(false);
  });
});
