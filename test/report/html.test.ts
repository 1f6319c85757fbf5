import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { compareModels } from '../../src/metrics/comparison.js';
import { escapeHtml, renderReportHtml, type ModelSection } from '../../src/report/html.js';

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
});
