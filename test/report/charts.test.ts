import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { HistoryRecord } from '../../src/models/modelDir.js';
import { historyChartSpec, historyChartTitle, overlayChartSpec, renderHistoryChart, renderOverlayChart, renderVegaLiteSvg } from '../../src/report/charts.js';

const history: HistoryRecord[] = Array.from({ length: 5 }, (_, i) => ({
  epoch: i + 1,
  loss: 2 / (i + 1),
  acc: 1 - 0.8 / (i + 1),
  val_loss: 2.2 / (i + 1),
  val_acc: 1 - 0.9 / (i + 1),
  seconds: 1,
  imagesPerSec: 100,
}));

/** Mean over channels of the per-channel standard deviation: 0 for a blank image. */
async function pixelStdev(png: Buffer): Promise<number> {
  const stats = await sharp(png).stats();
  return stats.channels.slice(0, 3).reduce((s, c) => s + c.stdev, 0) / 3;
}

describe('renderHistoryChart', () => {
  it('draws a two-panel PNG with content', async () => {
    const png = await renderHistoryChart(history, { title: 'curves' });
    const meta = await sharp(png).metadata();
    expect(meta.format).toBe('png');
    expect(meta.width!).toBeGreaterThan(meta.height!); // two panels side by side
    expect(await pixelStdev(png)).toBeGreaterThan(10);
  });

  it('renderVegaLiteSvg keeps the title as text', async () => {
    const svg = await renderVegaLiteSvg({
      data: { values: [{ a: 1, b: 2 }] },
      mark: 'point',
      encoding: { x: { field: 'a', type: 'quantitative' }, y: { field: 'b', type: 'quantitative' } },
      title: 'hello chart',
    });
    expect(svg).toContain('hello chart');
  });

  it('renders one epoch and an empty history without throwing', async () => {
    const one = await renderHistoryChart(history.slice(0, 1), { title: 'one epoch' });
    expect((await sharp(one).metadata()).format).toBe('png');
    const none = await renderHistoryChart([], { title: 'no epochs' });
    expect((await sharp(none).metadata()).format).toBe('png');
  });
});

describe('historyChartTitle', () => {
  it("names the model, not its architecture, and keeps the SYNTHETIC mark", async () => {
    expect(historyChartTitle('optimized-lr3', true)).toBe('optimized-lr3: training curves (SYNTHETIC data)');
    expect(historyChartTitle('optimized-lr3', false)).toBe('optimized-lr3: training curves');
    const spec = historyChartSpec(history, { title: historyChartTitle('run-b', false) });
    expect(spec.title).toBe('run-b: training curves');
    expect(await renderVegaLiteSvg(spec)).toContain('run-b: training curves');
  });
});

describe('renderOverlayChart', () => {
  it('draws every run\'s validation curves, one colour per run named in the legend', async () => {
    const other = history.map((h) => ({ ...h, val_acc: h.val_acc - 0.1, val_loss: h.val_loss + 0.2 }));
    const runs = [{ name: 'opt-lr3', history }, { name: 'opt-lr4', history: other.slice(0, 3) }];
    const spec = overlayChartSpec(runs, { title: 'two runs' }) as { data: { values: Array<{ run: string; metric: string }> } };
    expect(spec.data.values).toHaveLength(2 * 5 + 2 * 3); // accuracy and loss per epoch per run
    expect(new Set(spec.data.values.map((v) => v.run))).toEqual(new Set(['opt-lr3', 'opt-lr4']));
    const svg = await renderVegaLiteSvg(overlayChartSpec(runs, { title: 'two runs' }));
    expect(svg).toContain('opt-lr3');
    expect(svg).toContain('opt-lr4');
    const png = await renderOverlayChart(runs, { title: 'two runs' });
    expect(await pixelStdev(png)).toBeGreaterThan(10);
  });
});
