/**
 * `svhn report --tune DIR`: a study folder written by hand (trials.json as tune/run.ts writes
 * it), its page drawn by the stage and through the real CLI (bin/svhn.js runs dist/: build with
 * `npx tsc -p .`). The fixture's value is driven by lr alone, so the importance must rank lr first.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTuneReport, curvesSpec, paramImportance, rankTrials } from '../../src/report/tune.js';
import type { ParamValue, StudySpec, TrialRecord, TrialState } from '../../src/tune/types.js';
import { CHROMIUM, CHROMIUM_FLAGS, svhnAsync } from '../helpers.js';

const SPACE: StudySpec['space'] = [
  { name: 'lr', kind: 'log-float', low: 1e-4, high: 1e-1 },
  { name: 'batch-size', kind: 'choice', choices: [32, 64, 128] },
  { name: 'weight-decay', kind: 'float', low: 0, high: 0.01 },
  { name: 'warmup-epochs', kind: 'int', low: 0, high: 3 },
];

/** One trial; a complete one climbs to its value over 3 epochs. */
function trial(number: number, state: TrialState, [lr, bs, wd, wu]: [number, number, number, number], value: number | null, intermediates?: Array<[number, number]>): TrialRecord {
  const params: Record<string, ParamValue> = { lr, 'batch-size': bs, 'weight-decay': wd, 'warmup-epochs': wu };
  const curve: Array<[number, number]> = intermediates ?? (state === 'complete' && value !== null ? [[1, value - 0.1], [2, value - 0.03], [3, value]] : []);
  return { number, state, params, value, intermediates: curve };
}

// value ~ log(lr) (0.31 at 1e-4 up to 0.88 at 3e-2); batch size, weight decay and warmup spread across both halves
const TRIALS: TrialRecord[] = [
  trial(0, 'complete', [1e-4, 64, 0.001, 1], 0.31),
  trial(1, 'complete', [3e-2, 32, 0.005, 2], 0.88),
  trial(2, 'pruned', [2e-4, 128, 0.009, 0], 0.25, [[1, 0.2], [2, 0.25]]),
  trial(3, 'complete', [1e-2, 128, 0.002, 0], 0.8),
  trial(4, 'failed', [5e-2, 64, 0.007, 1], null),
  trial(5, 'complete', [5e-4, 32, 0.008, 3], 0.45),
  trial(6, 'pruned', [3e-4, 64, 0.0, 1], 0.22, [[1, 0.22]]),
  trial(7, 'complete', [5e-3, 64, 0.006, 2], 0.7),
  trial(8, 'complete', [2e-3, 128, 0.003, 3], 0.6),
  trial(9, 'running', [1e-3, 32, 0.004, 0], null, [[1, 0.4]]),
];

const STUDY: StudySpec = { name: 'lr-study', model: 'optimized', space: SPACE, sampler: 'tpe', pruner: 'asha', seed: 42, trials: 10, fixed: { 'data-dir': 'data', epochs: 3 } };

let tmp: string;

/** A study folder as `svhn tune` leaves it: trials.json, best.json, and trial model dirs with metadata.json. */
async function writeStudy(dir: string, trials: TrialRecord[], opts: { synthetic: boolean }): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'trials.json'), JSON.stringify({ study: STUDY, trials }, null, 2));
  await writeFile(join(dir, 'best.json'), JSON.stringify({ model: 'optimized', lr: 3e-2 }));
  for (const t of trials.filter((t) => t.state === 'complete' || t.state === 'pruned')) {
    const trialDir = join(dir, 'trials', String(t.number).padStart(4, '0'));
    await mkdir(trialDir, { recursive: true });
    await writeFile(join(trialDir, 'metadata.json'), JSON.stringify({ name: String(t.number).padStart(4, '0'), synthetic: opts.synthetic }));
  }
}

const svhn = (args: string[]) => svhnAsync(args, { cwd: tmp, env: { CI: '1' } });

/** The trial numbers of the page's table, top to bottom. */
const tableOrder = (html: string) => [...html.matchAll(/<tr class="trial-\w+[^"]*"><td class="num">(\d+)<\/td>/g)].map((m) => Number(m[1]));

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'svhn-report-tune-'));
  await writeStudy(join(tmp, 'study'), TRIALS, { synthetic: true });
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('paramImportance', () => {
  it('ranks the parameter that drives the value first, and the shares sum to 1', () => {
    const r = paramImportance(SPACE, TRIALS);
    expect(r.status).toBe('ok');
    if (r.status !== 'ok') return;
    expect(r.trials).toBe(6); // complete trials only: pruned values are earlier epochs'
    expect(r.params.map((p) => p.name)[0]).toBe('lr');
    expect(r.params.reduce((s, p) => s + p.importance, 0)).toBeCloseTo(1, 12);
    expect(r.params[0]!.importance).toBeGreaterThan(0.5);
    for (const p of r.params) expect(p.importance).toBeGreaterThanOrEqual(0);
  });

  it('matches epsilon squared worked by hand for a choice parameter', () => {
    // two groups: {0.2, 0.4} and {0.6, 0.8}: SS_total 0.2, SS_between 0.16, SS_within 0.04, n 4, g 2
    // eps2 = (0.16 - 1 * 0.04 / 2) / 0.2 = 0.7
    const space: StudySpec['space'] = [
      { name: 'a', kind: 'choice', choices: ['x', 'y'] },
      { name: 'b', kind: 'choice', choices: ['u', 'v'] },
    ];
    const t = (n: number, a: string, b: string, v: number): TrialRecord => ({ number: n, state: 'complete', params: { a, b }, value: v, intermediates: [] });
    const r = paramImportance(space, [t(0, 'x', 'u', 0.2), t(1, 'x', 'v', 0.4), t(2, 'y', 'u', 0.6), t(3, 'y', 'v', 0.8)]);
    expect(r.status).toBe('ok');
    if (r.status !== 'ok') return;
    const a = r.params.find((p) => p.name === 'a')!;
    const b = r.params.find((p) => p.name === 'b')!;
    expect(a.explained).toBeCloseTo(0.7, 12);
    // b: groups {0.2, 0.6} and {0.4, 0.8}: SS_between 0.04, SS_within 0.16: below chance, 0
    expect(b.explained).toBe(0);
    expect(a.importance).toBe(1);
  });

  it('says there are too few with fewer than 4 complete trials', () => {
    const r = paramImportance(SPACE, TRIALS.filter((t) => t.state !== 'complete' || t.number < 4));
    expect(r).toEqual({ status: 'too-few', trials: 3 });
  });
});

describe('rankTrials and curves', () => {
  it('orders complete trials by value, then pruned, running, failed', () => {
    expect(rankTrials(TRIALS).map((t) => t.number)).toEqual([1, 3, 7, 8, 5, 0, 2, 6, 9, 4]);
  });

  it('marks each pruned trial at the epoch it was stopped after', () => {
    const spec = curvesSpec(TRIALS, { text: 'curves', subtitle: [] }) as unknown as { layer: { data: { values: { trial?: number; epoch: number; state?: string }[] }; mark: { shape?: string } }[] };
    const crosses = spec.layer.find((l) => l.mark.shape === 'cross')!.data.values;
    expect(crosses.map((c) => [c.trial, c.epoch])).toEqual([[2, 2], [6, 1]]);
  });
});

describe('buildTuneReport', () => {
  it('writes one self-contained page with every chart, the table best first and the best trial\'s train line', async () => {
    const dir = join(tmp, 'study');
    const r = await buildTuneReport({ studyDir: dir, outFile: join(dir, 'report.html') });
    expect(r.best).toEqual({ number: 1, value: 0.88 });
    expect(r.synthetic).toBe(true);
    const html = await readFile(join(dir, 'report.html'), 'utf8');
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/(src|href)\s*=\s*["']?(https?:|\/\/)/i);
    for (const id of ['history', 'parallel', 'importance', 'curves', 'trials']) expect(html).toContain(`<h2 id="${id}">`);
    const imgs = [...html.matchAll(/<img src="data:image\/png;base64,([^"]+)" width="(\d+)" alt="([^"]+)"/g)];
    expect(imgs.map((m) => m[3])).toEqual(['optimisation history', 'parallel coordinates of the complete trials', 'parameter importance', 'validation accuracy by epoch of every trial']);
    for (const m of imgs) {
      const png = Buffer.from(m[1]!, 'base64');
      const stats = await sharp(png).stats();
      expect(stats.channels.slice(0, 3).reduce((s, c) => s + c.stdev, 0) / 3).toBeGreaterThan(10); // drawn, not blank
      expect(Number(m[2])).toBe(Math.round((await sharp(png).metadata()).width! / 2)); // 2x PNGs shown at half their width, as the model report's
    }
    expect(html).toContain("svhn tune study &#39;lr-study&#39; (model optimized)");
    expect(html).toContain('<span class="badge">SYNTHETIC</span>');
    expect(html).toContain('epsilon squared');
    expect(tableOrder(html)).toEqual([1, 3, 7, 8, 5, 0, 2, 6, 9, 4]);
    expect(html).toMatch(/<tr class="trial-complete winner"><td class="num">1<\/td>/);
    expect(html).toContain('<td class="state pruned">pruned</td><td class="num">0.2500<span class="ci">at epoch 2</span></td>');
    expect(html).toContain(`<pre>svhn train --config ${join(dir, 'best.json')}</pre>`);
  });

  it('says there are too few trials instead of drawing the importance, and no SYNTHETIC mark for real data', async () => {
    const dir = join(tmp, 'few');
    await writeStudy(dir, TRIALS.filter((t) => t.state !== 'complete' || t.number < 4), { synthetic: false });
    const r = await buildTuneReport({ studyDir: dir, outFile: join(dir, 'report.html') });
    expect(r.importance).toEqual({ status: 'too-few', trials: 3 });
    const html = await readFile(join(dir, 'report.html'), 'utf8');
    expect(html).toContain('Too few complete trials to rank the parameters (3; at least 4 are needed)');
    expect(html).not.toContain('alt="parameter importance"');
    expect(html).not.toContain('SYNTHETIC');
    expect([...html.matchAll(/<img /g)].length).toBe(3);
  });
});

describe('the page in a browser', () => {
  it.skipIf(!CHROMIUM)('fits a 420 px wide phone screen with nothing fetched and no console message: the charts shrink, the trials table scrolls in its own box', async () => {
    const page = join(tmp, 'study/narrow.html');
    await buildTuneReport({ studyDir: join(tmp, 'study'), outFile: page });
    const shots = process.env.SVHN_TEST_SHOTS ?? tmp; // set it to look at the screenshot
    const puppeteer = (await import('puppeteer-core')).default;
    const browser = await puppeteer.launch({ executablePath: CHROMIUM!, headless: true, userDataDir: join(tmp, 'profile'), args: CHROMIUM_FLAGS });
    try {
      const tab = await browser.newPage();
      const messages: string[] = [];
      const fetched: string[] = [];
      tab.on('console', (m) => messages.push(m.text()));
      tab.on('request', (r) => {
        if (!/^(file|data):/.test(r.url())) fetched.push(r.url()); // the page and its data: images only
      });
      await tab.setViewport({ width: 420, height: 900 });
      await tab.goto(`file://${page}`);
      const seen = await tab.evaluate(() => {
        const table = document.querySelector('table.trials')!;
        return {
          pageWidth: document.documentElement.scrollWidth,
          imgRights: [...document.querySelectorAll('img')].map((i) => i.getBoundingClientRect().right),
          imgsLoaded: [...document.querySelectorAll('img')].every((i) => i.complete && i.naturalWidth > 0),
          boxOverflow: getComputedStyle(table.parentElement!).overflowX,
          boxRight: table.parentElement!.getBoundingClientRect().right,
        };
      });
      await tab.screenshot({ path: join(shots, 'tune-report-420px.png'), fullPage: true });
      expect(messages).toEqual([]);
      expect(fetched).toEqual([]);
      expect(seen.pageWidth).toBeLessThanOrEqual(420); // no sideways scrolling of the page
      expect(seen.imgRights).toHaveLength(4);
      for (const right of seen.imgRights) expect(right).toBeLessThanOrEqual(420);
      expect(seen.imgsLoaded).toBe(true);
      expect(seen.boxOverflow).toBe('auto');
      expect(seen.boxRight).toBeLessThanOrEqual(420);
    } finally {
      await browser.close();
    }
  }, 60_000);
});

describe('svhn report --tune', () => {
  it('writes <DIR>/report.html by default, or --out', async () => {
    await rm(join(tmp, 'study/report.html'), { force: true });
    const r = await svhn(['report', '--tune', 'study']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^wrote study\/report\.html \(\d+ kB, study 'lr-study', 10 trials\) SYNTHETIC data\n$/);
    expect(existsSync(join(tmp, 'study/report.html'))).toBe(true);
    const json = await svhn(['report', '--tune', 'study', '--out', 'tune.html', '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ outFile: 'tune.html', study: 'lr-study', model: 'optimized', best: { number: 1 } });
    expect(existsSync(join(tmp, 'tune.html'))).toBe(true);
  });

  it('refuses a folder without trials.json, and --tune with --model, in one line with exit 2', async () => {
    await mkdir(join(tmp, 'empty'), { recursive: true });
    const none = await svhn(['report', '--tune', 'empty']);
    expect(none.code).toBe(2);
    expect(none.stderr).toBe('svhn: error: --tune empty: expected a study folder written by svhn tune (no trials.json)\n');
    expect(existsSync(join(tmp, 'empty/report.html'))).toBe(false);

    const both = await svhn(['report', '--tune', 'study', '--model', 'models/x']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/^svhn: error: --tune and --model: expected one of them [^\n]*\n$/);
  });

  it('names a damaged trials.json in one line', async () => {
    await mkdir(join(tmp, 'damaged'), { recursive: true });
    await writeFile(join(tmp, 'damaged/trials.json'), JSON.stringify({ study: STUDY, trials: [{ ...TRIALS[0], state: 'done' }] }));
    const r = await svhn(['report', '--tune', 'damaged']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^svhn: error: cannot read damaged\/trials\.json: expected trials\[0\]\.state to be one of complete, pruned, running, failed, got "done"; [^\n]*\n$/);
    await writeFile(join(tmp, 'damaged/trials.json'), '{"study": ');
    const cut = await svhn(['report', '--tune', 'damaged']);
    expect(cut.code).not.toBe(0);
    expect(cut.stderr).toBe('svhn: error: cannot read damaged/trials.json: expected JSON, got JSON cut short at the end of the file\n');
  });
});
