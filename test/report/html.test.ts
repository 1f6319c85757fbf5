import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { compareModels } from '../../src/metrics/comparison.js';
import { accuracyInterval } from '../../src/metrics/intervals.js';
import { curvesFor, escapeHtml, renderReportHtml, type ModelSection } from '../../src/report/html.js';
import { CHROMIUM, CHROMIUM_FLAGS } from '../helpers.js';

async function png(color: string): Promise<Buffer> {
  return sharp({ create: { width: 40, height: 20, channels: 3, background: color } }).png().toBuffer();
}

function section(name: string, accuracy: number, synthetic: boolean, images: Partial<ModelSection>): ModelSection {
  return {
    name,
    dir: `models/${name}`,
    evaluation: {
      synthetic,
      model: { name, dir: `/abs/models/${name}`, architecture: 'cnn', params: 1234, fingerprint: 'f' },
      data: { dataDir: 'data', split: 'test', count: 100, synthetic, manifestSha256: 'm' },
      backend: 'cpu',
      accuracy,
      accuracyInterval: accuracyInterval(Math.round(accuracy * 100), 100),
      loss: 0.5,
      macroF1: accuracy - 0.01,
      weightedF1: accuracy,
      imagesPerSec: 1000,
      classificationReportText: '              precision    recall  f1-score   support\n',
      warnings: [],
      createdAt: 'now',
    },
    ...images,
  };
}

describe('renderReportHtml', () => {
  it('inlines every image, has no script or external reference, and marks the best model', async () => {
    const a = section('baseline', 0.8, false, { curves: await png('red'), confusion: await png('blue'), f1: await png('green'), samples: await png('gray') });
    const b = section('opt<imized>', 0.9, false, { curves: await png('red') });
    const html = renderReportHtml({
      title: 'T',
      createdAt: 'now',
      split: 'test',
      models: [a, b],
      comparison: compareModels([a, b].map((s) => ({ ...s.evaluation, name: s.name, params: 1234, synthetic: false }))),
    });
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/(src|href)\s*=\s*["']?(https?:|\/\/)/i);
    const imgs = [...html.matchAll(/<img src="([^"]+)"/g)].map((m) => m[1]!);
    expect(imgs).toHaveLength(5);
    for (const src of imgs) expect(src).toMatch(/^data:image\/png;base64,[A-Za-z0-9+/=]+$/);
    expect(html).toContain('width="20"'); // a 40 px chart at density 2 shows 20 CSS px wide
    expect(html).toContain('opt&lt;imized&gt;'); // names are escaped
    expect(html).not.toContain('opt<imized>');
    expect(html).toMatch(/<tr class="winner"><td>opt&lt;imized&gt;<\/td>/); // best accuracy
    expect(html).toContain('(baseline confusion matrix: not available)'.replace('baseline', 'opt&lt;imized&gt;'));
    expect(html).not.toContain('SYNTHETIC');
    // each accuracy with its Wilson interval, small under the value
    expect(html).toMatch(/<td class="num">0\.8000<span class="ci" title="95% Wilson interval">0\.711-0\.867<\/span><\/td>/);
    expect(html).toContain('Under each accuracy: its 95% Wilson interval.');
    expect(html).toContain('<td>0.8000 (95% CI 0.711-0.867, Wilson)</td>'); // the model's own facts
  });

  it('says SYNTHETIC in a banner and on each synthetic model', () => {
    const s = section('tiny', 0.5, true, {});
    const html = renderReportHtml({ title: 'T', createdAt: 'now', split: 'val', models: [s], comparison: compareModels([{ ...s.evaluation, name: 'tiny', params: 1, synthetic: true }]) });
    expect(html).toMatch(/class="banner">SYNTHETIC/);
    expect(html).toContain('<span class="badge">SYNTHETIC</span>');
    expect(html).toContain('tiny (SYNTHETIC)');
  });

  it('marks a model trained on the sample but evaluated on real data as such, with no SYNTHETIC banner', () => {
    const s = section('offline', 0.7, false, {});
    s.evaluation.model.synthetic = true;
    const html = renderReportHtml({
      title: 'T', createdAt: 'now', split: 'test', models: [s],
      comparison: compareModels([{ ...s.evaluation, name: 'offline', params: 1, synthetic: false, modelSynthetic: true }]),
    });
    expect(html).not.toContain('class="banner"');
    expect(html).toContain('<span class="badge">trained on SYNTHETIC data</span>');
    expect(html).toContain('offline (trained on SYNTHETIC)');
  });

  it('escapes HTML', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });

  it.skipIf(!CHROMIUM)('fits a 420 px wide phone screen: the comparison table scrolls sideways in its own box, the page does not', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'svhn-report-narrow-'));
    const shots = process.env.SVHN_TEST_SHOTS ?? dir; // set it to look at the screenshot
    const puppeteer = (await import('puppeteer-core')).default;
    const browser = await puppeteer.launch({ executablePath: CHROMIUM!, headless: true, userDataDir: join(dir, 'profile'), args: CHROMIUM_FLAGS });
    try {
      const models = [section('optimized-finetuned-on-my-house-numbers', 0.91, false, { f1: await png('green') }), section('baseline', 0.8, false, {})];
      const file = join(dir, 'report.html');
      await writeFile(
        file,
        renderReportHtml({
          title: `SVHN digit classifiers: ${models.map((m) => m.name).join(' vs ')}`,
          createdAt: 'now',
          split: 'test',
          models,
          comparison: compareModels(models.map((s) => ({ ...s.evaluation, name: s.name, params: 1_234_567, synthetic: false }))),
        }),
      );
      const page = await browser.newPage();
      await page.setViewport({ width: 420, height: 900 });
      await page.goto(`file://${file}`);
      const before = await page.evaluate(() => {
        const table = document.querySelector('table.comparison')!;
        const box = table.parentElement!;
        return {
          pageWidth: document.documentElement.scrollWidth,
          viewport: window.innerWidth,
          boxOverflow: getComputedStyle(box).overflowX,
          boxRight: box.getBoundingClientRect().right,
          tableWider: table.scrollWidth > box.clientWidth,
          accuracyCellWidth: table.querySelector('tr:last-child td:nth-child(2)')!.getBoundingClientRect().width,
          intervalShown: table.querySelectorAll('span.ci').length,
        };
      });
      await page.screenshot({ path: join(shots, 'report-420px.png') });
      expect(before.viewport).toBe(420);
      expect(before.pageWidth).toBeLessThanOrEqual(420); // no sideways scrolling of the page
      expect(before.boxOverflow).toBe('auto');
      expect(before.boxRight).toBeLessThanOrEqual(420);
      expect(before.tableWider).toBe(true); // this table does not fit: the box scrolls
      expect(before.intervalShown).toBe(2);
      expect(before.accuracyCellWidth).toBeLessThanOrEqual(110); // the interval sits under the value, not beside it
      // Scrolled to its end, the table's right edge (the images/s column) is on screen.
      const after = await page.evaluate(() => {
        const table = document.querySelector('table.comparison')!;
        const box = table.parentElement!;
        box.scrollLeft = box.scrollWidth;
        const lastCell = table.querySelector('tr:last-child td:last-child')!.getBoundingClientRect();
        return { tableRight: table.getBoundingClientRect().right, lastCellRight: lastCell.right, lastCellLeft: lastCell.left };
      });
      await page.screenshot({ path: join(shots, 'report-420px-scrolled.png') });
      expect(after.tableRight).toBeLessThanOrEqual(420);
      expect(after.lastCellLeft).toBeGreaterThanOrEqual(0);
    } finally {
      await browser.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('curvesFor', () => {
  it("draws an older model's history.json (no lr) titled by its name, not its curves.png; curves.png where there is no history", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'svhn-curves-'));
    try {
      const red = await png('red');
      await writeFile(join(dir, 'curves.png'), red); // as an older train wrote it, titled by the architecture
      const older = [1, 2].map((epoch) => ({ epoch, loss: 1 / epoch, acc: 0.5 * epoch, val_loss: 1.2 / epoch, val_acc: 0.4 * epoch, seconds: 1, imagesPerSec: 10 }));
      await writeFile(join(dir, 'history.json'), JSON.stringify(older));
      const drawn = await curvesFor(dir, 'run-a', true);
      expect(drawn).toBeDefined();
      expect(drawn!.equals(red)).toBe(false);
      const meta = await sharp(drawn!).metadata();
      expect(meta.format).toBe('png');
      expect(meta.width!).toBeGreaterThan(meta.height!);
      await rm(join(dir, 'history.json'));
      expect((await curvesFor(dir, 'run-a', true))!.equals(red)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
