/**
 * What train and demo may replace at --out (src/train/outDir.ts), on folders made by hand:
 * the policy without a training run. test/cli/train.test.ts drives the same through the CLI.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertModelOutReplaceable } from '../../src/train/outDir.js';
import { rejection, svhnSync } from '../helpers.js';

let tmp: string;

/** A model directory's files (contents do not matter here), made by `madeBy` (absent: a model older than the field). */
async function fakeModel(dir: string, madeBy?: string): Promise<string> {
  const path = join(tmp, dir);
  await mkdir(join(path, 'evaluation'), { recursive: true });
  for (const f of ['model.json', 'weights.bin', 'history.json', 'history.csv', 'curves.png', 'evaluation/report.json']) await writeFile(join(path, f), '');
  await writeFile(join(path, 'metadata.json'), JSON.stringify(madeBy ? { name: dir, madeBy } : { name: dir }));
  return path;
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'svhn-outdir-'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('assertModelOutReplaceable', () => {
  it('takes a missing or empty folder from either command', async () => {
    await mkdir(join(tmp, 'empty'));
    for (const madeBy of ['train', 'demo'] as const) {
      await assertModelOutReplaceable(join(tmp, 'nothing-here'), { force: false, madeBy });
      await assertModelOutReplaceable(join(tmp, 'empty'), { force: false, madeBy });
    }
  });

  it("lets demo replace an earlier demo's model, and nothing else without --force", async () => {
    const demo = await fakeModel('demo-made', 'demo');
    const trained = await fakeModel('train-made', 'train');
    const older = await fakeModel('older');
    await assertModelOutReplaceable(demo, { force: false, madeBy: 'demo' });
    for (const dir of [trained, older]) {
      const e = await rejection(assertModelOutReplaceable(dir, { force: false, madeBy: 'demo' }));
      expect(e.message).toBe(`--out ${dir}: holds a trained model, which this run would replace`);
      expect(e.suggestion).toBe('pass --force to replace it, or another --out');
      await assertModelOutReplaceable(dir, { force: true, madeBy: 'demo' });
    }
    // train asks for --force even over a demo's model
    await rejection(assertModelOutReplaceable(demo, { force: false, madeBy: 'train' }));
    await assertModelOutReplaceable(demo, { force: true, madeBy: 'train' });
  });

  it('calls a folder with only some of a model\'s files part of a model, and refuses what is not a model\'s, --force or not', async () => {
    await mkdir(join(tmp, 'part'));
    await writeFile(join(tmp, 'part/history.json'), '[]');
    expect((await rejection(assertModelOutReplaceable(join(tmp, 'part'), { force: false, madeBy: 'demo' }))).message).toMatch(/holds part of a model/);
    const m = await fakeModel('with-notes', 'demo');
    await writeFile(join(m, 'notes.txt'), 'mine');
    await writeFile(join(m, 'evaluation/keep.png'), 'mine');
    for (const force of [false, true]) {
      const e = await rejection(assertModelOutReplaceable(m, { force, madeBy: 'demo' }));
      expect(e.message).toBe(`--out ${m}: expected a new directory or an earlier model (it is replaced whole), got one holding evaluation/keep.png and 1 more`);
    }
  });

  it('svhn demo refuses a folder of the user\'s before it does any work', () => {
    const r = svhnSync(['demo', '--out', 'with-notes', '--data-dir', 'no-data-yet'], { cwd: tmp, timeoutMs: 30_000 });
    expect(r.stderr).toMatch(/^svhn: error: --out with-notes: expected a new directory or an earlier model \(it is replaced whole\), got one holding evaluation\/keep\.png and 1 more; pass another --out, or move those files out first\n$/);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(existsSync(join(tmp, 'no-data-yet'))).toBe(false); // no synthetic sample generated first
  });
});
