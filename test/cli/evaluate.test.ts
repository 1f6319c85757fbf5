/**
 * `svhn evaluate` through the real CLI (bin/svhn.js runs dist/: build with `npx tsc -p .`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { mcnemarExact, wilsonInterval } from '../../src/metrics/intervals.js';
import { writeTinyCache, writeTinyModel } from '../evaluate/fixtures.js';
import { SVHN_BIN, svhnAsync } from '../helpers.js';

let tmp: string;

const svhn = (args: string[]) => svhnAsync(args, { cwd: tmp, env: { CI: '1' } });

beforeAll(async () => {
  await initBackend('cpu');
  tmp = await mkdtemp(join(tmpdir(), 'svhn-cli-eval-'));
  await writeTinyCache(join(tmp, 'data'), { splits: { test: 120, val: 30 }, synthetic: true });
  await writeTinyCache(join(tmp, 'data-notest'), { splits: { train: 10 } });
  await writeTinyModel(join(tmp, 'models/a'), { name: 'a', seed: 1 });
  await writeTinyModel(join(tmp, 'models/b'), { name: 'b', seed: 2 });
  await writeTinyModel(join(tmp, 'models/gray'), { name: 'gray', inputShape: [28, 28, 1] });
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('svhn evaluate', () => {
  it('compares two models as JSON and writes each one\'s outputs', async () => {
    const r = await svhn(['evaluate', '--model', 'models/a', '--model', 'models/b', '--data-dir', 'data', '--backend', 'cpu', '--json', '--out', 'ev', '--errors', 'wrong.png', '--batch-size', '32']);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.synthetic).toBe(true);
    expect(s.SYNTHETIC).toMatch(/SYNTHETIC/);
    expect(s.models.map((m: { name: string }) => m.name)).toEqual(['a', 'b']);
    const best = s.models[0].accuracy >= s.models[1].accuracy ? 'a' : 'b';
    if (s.models[0].accuracy !== s.models[1].accuracy) expect(s.best).toBe(best);
    for (const m of s.models) {
      const report = JSON.parse(await readFile(join(tmp, 'ev', m.name, 'report.json'), 'utf8'));
      expect(report.accuracy).toBe(m.accuracy);
      expect(report.predictions).toHaveLength(120);
      expect(m.confusionMatrix.flat().reduce((x: number, y: number) => x + y, 0)).toBe(120);
      for (const f of ['confusion.csv', 'confusion.png', 'f1.png']) expect(existsSync(join(tmp, 'ev', m.name, f)), f).toBe(true);
      if (m.accuracy < 1) expect(existsSync(join(tmp, `wrong-${m.name}.png`))).toBe(true);
      const correct = report.predictions.filter((p: { true: number; predicted: number }) => p.true === p.predicted).length;
      expect(report.accuracyInterval).toEqual({ ...wilsonInterval(correct, 120), method: 'wilson', level: 0.95 });
      expect(m.accuracyInterval).toEqual(report.accuracyInterval);
    }
    // McNemar from the two report.json's per-image predictions
    const [pa, pb] = await Promise.all(['a', 'b'].map(async (n) => JSON.parse(await readFile(join(tmp, 'ev', n, 'report.json'), 'utf8')).predictions as { true: number; predicted: number }[]));
    let b = 0;
    let c = 0;
    pa!.forEach((x, i) => {
      const aRight = x.predicted === x.true;
      const bRight = pb![i]!.predicted === pb![i]!.true;
      if (aRight && !bRight) b++;
      if (bRight && !aRight) c++;
    });
    expect(s.mcnemar).toEqual([{ a: 'a', b: 'b', aRightBWrong: b, aWrongBRight: c, p: mcnemarExact(b, c) }]);
  });

  it('prints the comparison with intervals and the McNemar p-value of the pair', async () => {
    const r = await svhn(['evaluate', '--model', 'models/a', '--model', 'models/b', '--data-dir', 'data', '--backend', 'cpu', '--out', 'ev-text']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\naccuracy \d\.\d{4} \(95% CI \d\.\d{3}-\d\.\d{3}, Wilson, n=120\) {2}loss /);
    expect(r.stdout).toMatch(/\nmodel +accuracy \(95% CI\) +macro F1/);
    expect(r.stdout).toMatch(/\na \(SYNTHETIC\) +\d\.\d{4} \(\d\.\d{3}-\d\.\d{3}\)/);
    expect(r.stdout).toMatch(/\na vs b: \d+ only a right, \d+ only b right, McNemar exact p [=<] \S+\n/);
  });

  it('prints the tables for one model and writes to <model>/evaluation by default', async () => {
    const r = await svhn(['evaluate', '--model', 'models/a', '--data-dir', 'data', '--backend', 'cpu', '--split', 'val']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\*\*\* SYNTHETIC/);
    expect(r.stdout).toContain('val split: 30 images');
    expect(r.stdout).toMatch(/true\\pred +0 +1 +2 +3 +4 +5 +6 +7 +8 +9\n/);
    expect(r.stdout).toContain('              precision    recall  f1-score   support\n\n');
    expect(r.stdout).toMatch(/\n    accuracy {27}\d\.\d\d {8}30\n/);
    expect(existsSync(join(tmp, 'models/a/evaluation-val/report.json'))).toBe(true);
  });

  it('fails with one line and a non-zero exit on bad input', async () => {
    const [missing, shape, split, none, badSplit] = await Promise.all([
      svhn(['evaluate', '--model', 'models/nope', '--data-dir', 'data', '--backend', 'cpu']),
      svhn(['evaluate', '--model', 'models/gray', '--data-dir', 'data', '--backend', 'cpu']),
      svhn(['evaluate', '--model', 'models/a', '--data-dir', 'data-notest', '--backend', 'cpu']),
      svhn(['evaluate', '--data-dir', 'data']),
      svhn(['evaluate', '--model', 'models/a', '--split', 'train']),
    ]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/^svhn: error: --model models\/nope: no such model directory/m);
    expect(shape.code).not.toBe(0);
    expect(shape.stderr).toMatch(/svhn: error: model in models\/gray takes input \[28, 28, 1\], expected \[32, 32, 3\]/);
    expect(split.code).not.toBe(0);
    expect(split.stderr).toMatch(/svhn: error: --split test: .* has no 'test' split/);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/--model: expected at least one model directory/);
    expect(badSplit.code).toBe(2);
    expect(badSplit.stderr).toMatch(/expected one of test, val, got 'train'/);
    for (const r of [missing, shape, split, none]) expect(r.stdout).toBe('');
  });

  it('names a garbage model.json or metadata.json in one line, without echoing its bytes', async () => {
    for (const file of ['model.json', 'metadata.json']) {
      const dir = `models/garbage-${file.split('.')[0]}`;
      await writeTinyModel(join(tmp, dir), { name: 'g' });
      await writeFile(join(tmp, dir, file), Buffer.from('\x00\x01garbage{', 'latin1'));
      const r = await svhn(['evaluate', '--model', dir, '--data-dir', 'data', '--backend', 'cpu', '--out', `ev-${file}`]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(new RegExp(`(^|\\n)svhn: error: cannot read ${dir}/${file}: expected JSON, got invalid JSON at position 0\\n$`));
      expect(r.stderr).not.toMatch(/garbage\{|\x00/); // the file's bytes are not echoed
      expect(existsSync(join(tmp, `ev-${file}`))).toBe(false);
    }
  });

  it('verifies the split it reads: a flipped bit or a label out of 0..9 is one line naming the file', async () => {
    await writeTinyCache(join(tmp, 'data-damaged'), { splits: { test: 20 } });
    const imagesPath = join(tmp, 'data-damaged/cache/test.images.u8');
    const images = await readFile(imagesPath);
    images[777]! ^= 1;
    await writeFile(imagesPath, images);
    const r = await svhn(['evaluate', '--model', 'models/a', '--data-dir', 'data-damaged', '--backend', 'cpu', '--out', 'ev-damaged']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/(^|\n)svhn: error: data-damaged\/cache\/test\.images\.u8: sha256 differs from manifest\.json .*; re-run `svhn preprocess`\n$/);
    await writeTinyCache(join(tmp, 'data-damaged'), { splits: { test: 20 } });
    await writeFile(join(tmp, 'data-damaged/cache/test.labels.u8'), Buffer.from([...Array(19).fill(1), 12]));
    const l = await svhn(['evaluate', '--model', 'models/a', '--data-dir', 'data-damaged', '--backend', 'cpu', '--out', 'ev-damaged']);
    expect(l.code).toBe(1);
    expect(l.stderr).toMatch(/(^|\n)svhn: error: data-damaged\/cache\/test\.labels\.u8: expected digits 0\.\.9, got label 12 for image 19; re-run `svhn preprocess`\n$/);
    expect(existsSync(join(tmp, 'ev-damaged'))).toBe(false);
  });

  it('refuses an --out directory holding other files, and leaves them alone', async () => {
    await mkdir(join(tmp, 'results'));
    await writeFile(join(tmp, 'results/notes.txt'), 'keep me');
    const r = await svhn(['evaluate', '--model', 'models/a', '--data-dir', 'data', '--backend', 'cpu', '--out', 'results']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/(^|\n)svhn: error: --out results: expected a new directory or an earlier evaluation \(it is replaced whole\), got one holding notes\.txt; pass another --out\n$/);
    expect(await readFile(join(tmp, 'results/notes.txt'), 'utf8')).toBe('keep me');
  });

  // A read-only mount needs a user + mount namespace (unshare -rm); skipped where there is none.
  it.skipIf(!canMountReadOnly())('says the file system is read-only, not that a directory is missing', async () => {
    await mkdir(join(tmp, 'ro'));
    const args = ['evaluate', '--model', 'models/a', '--data-dir', 'data', '--backend', 'cpu', '--out', 'ro/ev'];
    const r = spawnSync('unshare', ['-rm', 'sh', '-c', 'mount -t tmpfs -o ro tmpfs ro && exec "$0" "$@"', process.execPath, SVHN_BIN, ...args], {
      cwd: tmp,
      encoding: 'utf8',
      env: { ...process.env, NO_COLOR: '1', CI: '1' },
      timeout: 60_000,
      killSignal: 'SIGKILL',
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/(^|\n)svhn: error: cannot create a directory in ro: read-only file system\n$/);
  });
});

function canMountReadOnly(): boolean {
  const dir = mkdtempSync(join(tmpdir(), 'svhn-ro-probe-'));
  try {
    return spawnSync('unshare', ['-rm', 'sh', '-c', 'mount -t tmpfs -o ro tmpfs "$0"', dir], { timeout: 10_000 }).status === 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

