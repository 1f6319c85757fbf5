/**
 * `svhn report` through the real CLI (bin/svhn.js runs dist/: build with `npx tsc -p .`),
 * then the page in a real browser: headless Chromium (Debian's package; skipped where absent)
 * loads it, logs no console message, and takes a screenshot that is not blank.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { writeTinyCache, writeTinyModel } from '../evaluate/fixtures.js';
import { CHROMIUM, CHROMIUM_FLAGS, svhnAsync } from '../helpers.js';

const run = promisify(execFile);
let tmp: string;

const svhn = (args: string[]) => svhnAsync(args, { cwd: tmp, env: { CI: '1' } });

/** Loads a page in headless Chromium; returns its console lines and the screenshot. */
async function loadInChromium(htmlFile: string, shot: string): Promise<{ console: string[]; png: Buffer }> {
  const profile = join(tmp, `profile-${Date.now()}`);
  const { stderr } = await run(
    CHROMIUM!,
    [
      '--headless',
      ...CHROMIUM_FLAGS,
      `--user-data-dir=${profile}`,
      '--enable-logging=stderr',
      '--v=0',
      '--window-size=1280,1600',
      `--screenshot=${shot}`,
      `file://${htmlFile}`,
    ],
    { timeout: 60_000 },
  );
  // Chromium logs every console message (errors, uncaught exceptions, CSP violations) as CONSOLE.
  return { console: stderr.split('\n').filter((l) => /:CONSOLE[:(]|Uncaught/.test(l)), png: await readFile(shot) };
}

async function stdev(png: Buffer): Promise<number> {
  const s = await sharp(png).stats();
  return s.channels.slice(0, 3).reduce((a, c) => a + c.stdev, 0) / 3;
}

beforeAll(async () => {
  await initBackend('cpu');
  tmp = await mkdtemp(join(tmpdir(), 'svhn-cli-report-'));
  await writeTinyCache(join(tmp, 'data'), { splits: { test: 60 }, synthetic: true });
  await writeTinyModel(join(tmp, 'models/baseline'), { name: 'baseline', seed: 1 });
  await writeTinyModel(join(tmp, 'models/optimized'), { name: 'optimized', seed: 2, history: false });
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('svhn report', () => {
  it('evaluates what it needs, then reuses it, and writes one self-contained page', async () => {
    const args = ['report', '--model', 'models/baseline', '--model', 'models/optimized', '--data-dir', 'data', '--backend', 'cpu', '--out', 'report.html', '--json'];
    const first = await svhn(args);
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout).evaluated).toEqual(['models/baseline', 'models/optimized']);
    expect(existsSync(join(tmp, 'models/baseline/evaluation/report.json'))).toBe(true);
    const second = await svhn(args);
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout).evaluated).toEqual([]); // fresh evaluations on disk are reused
    await writeTinyModel(join(tmp, 'models/optimized'), { name: 'optimized', seed: 5, history: false }); // new weights
    const third = await svhn(args);
    expect(third.code, third.stderr).toBe(0);
    expect(JSON.parse(third.stdout).evaluated).toEqual(['models/optimized']); // a stale evaluation is redone

    const html = await readFile(join(tmp, 'report.html'), 'utf8');
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/(src|href)\s*=\s*["']?(https?:|\/\/)/i);
    // baseline: curves (from history.json), confusion, f1, samples, errors; optimized: no history
    const imgs = [...html.matchAll(/<img src="data:image\/png;base64,/g)];
    expect(imgs.length).toBeGreaterThanOrEqual(7);
    expect(html).toContain('SYNTHETIC');
    expect(html).toContain('(optimized training curves: not available)');
    // one run with a history: no overlay (it needs two)
    expect(html).not.toContain('Validation curves, all runs');
    expect(html).toMatch(/<pre>\s+precision\s+recall\s+f1-score\s+support/);

    // both with a history: their validation curves on one chart as well
    await writeTinyModel(join(tmp, 'models/optimized'), { name: 'optimized', seed: 5 });
    const fourth = await svhn(args);
    expect(fourth.code, fourth.stderr).toBe(0);
    const both = await readFile(join(tmp, 'report.html'), 'utf8');
    expect(both).toContain('<h3>Validation curves, all runs</h3>');
    expect([...both.matchAll(/<img src="data:image\/png;base64,/g)].length).toBe(imgs.length + 2); // optimized's curves and the overlay
  });

  it('evaluates again, with a warning, when an evaluation on disk is incomplete', async () => {
    const args = ['report', '--model', 'models/baseline', '--data-dir', 'data', '--backend', 'cpu', '--out', 'partial.html', '--json'];
    const first = await svhn(args);
    expect(first.code, first.stderr).toBe(0);
    await rm(join(tmp, 'models/baseline/evaluation/f1.png')); // as an interrupted evaluate (before it wrote whole) left it
    const r = await svhn(args);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/the evaluation in models\/baseline\/evaluation is incomplete \(f1\.png is missing\); evaluating again/);
    expect(JSON.parse(r.stdout).evaluated).toEqual(['models/baseline']);
    expect(existsSync(join(tmp, 'models/baseline/evaluation/f1.png'))).toBe(true);

    // One from before the errors grid showed the most confident mistakes first: evaluated again.
    const json = join(tmp, 'models/baseline/evaluation/report.json');
    const { errorsOrder, ...older } = JSON.parse(await readFile(json, 'utf8'));
    expect(errorsOrder).toBe('confidence');
    await writeFile(json, JSON.stringify(older));
    const again = await svhn(args);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/the evaluation in models\/baseline\/evaluation draws its errors grid in index order \(an older svhn\); evaluating again/);
    expect(JSON.parse(again.stdout).evaluated).toEqual(['models/baseline']);
  });

  it('fails with one line on a missing model', async () => {
    const r = await svhn(['report', '--model', 'models/none', '--data-dir', 'data', '--backend', 'cpu', '--out', 'x.html']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/svhn: error: --model models\/none: no such model directory/);
    expect(existsSync(join(tmp, 'x.html'))).toBe(false);
  });

  it('names a garbage history.json in one line', async () => {
    await writeTinyModel(join(tmp, 'models/garbage'), { name: 'garbage', seed: 3 });
    await writeFile(join(tmp, 'models/garbage/history.json'), Buffer.from('\x00\x01garbage{', 'latin1'));
    const r = await svhn(['report', '--model', 'models/garbage', '--data-dir', 'data', '--backend', 'cpu', '--out', 'garbage.html']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/(^|\n)svhn: error: cannot read models\/garbage\/history.json: expected JSON, got invalid JSON at position 0\n$/);
    expect(existsSync(join(tmp, 'garbage.html'))).toBe(false);
  });

  it.skipIf(!CHROMIUM)('renders in headless Chromium with no console errors and a non-blank screenshot', async () => {
    const page = join(tmp, 'report.html');
    if (!existsSync(page)) {
      const r = await svhn(['report', '--model', 'models/baseline', '--data-dir', 'data', '--backend', 'cpu', '--out', 'report.html']);
      expect(r.code, r.stderr).toBe(0);
    }
    // The check itself must catch errors: a page with a failing script and a blocked image.
    const bad = join(tmp, 'bad.html');
    await writeFile(
      bad,
      `<html><head><meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:"></head><body><script>undefinedFn()</script><img src="http://127.0.0.1:9/x.png"></body></html>`,
    );
    const control = await loadInChromium(bad, join(tmp, 'bad.png'));
    expect(control.console.length).toBeGreaterThan(0);

    const { console: lines, png } = await loadInChromium(page, join(tmp, 'shot.png'));
    expect(lines).toEqual([]);
    const meta = await sharp(png).metadata();
    expect(meta.width).toBe(1280);
    expect(await stdev(png)).toBeGreaterThan(20); // a blank page is ~0
  }, 120_000);
});
