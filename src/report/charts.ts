/**
 * Charts as PNGs: a vega-lite spec is compiled to vega, rendered headless to SVG (View with
 * renderer 'none': no canvas, no browser), and sharp (librsvg) turns the SVG into a PNG.
 * Text is set in DejaVu Sans, which Debian ships and librsvg finds through fontconfig.
 */
import sharp from 'sharp';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { HistoryRecord } from '../models/modelDir.js';

const FONT = 'DejaVu Sans, Liberation Sans, Arial, sans-serif';

/** Shared look: white background, readable fonts (vega's defaults are 10-11 px). */
const CHART_CONFIG = {
  font: FONT,
  background: 'white',
  padding: 12,
  title: { fontSize: 15, anchor: 'start' as const, offset: 10 },
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#e6e6e6' },
  legend: { labelFontSize: 11, titleFontSize: 12 },
  header: { labelFontSize: 12, titleFontSize: 12 },
  view: { stroke: '#cccccc' },
};

export interface RenderOptions {
  /** Pixel density of the PNG relative to the SVG's CSS pixels (2 = crisp on hi-dpi). */
  scale?: number;
}

/** Renders a vega-lite spec to SVG text. */
export async function renderVegaLiteSvg(spec: TopLevelSpec): Promise<string> {
  const withConfig = { ...spec, config: { ...CHART_CONFIG, ...(spec.config ?? {}) } } as TopLevelSpec;
  const vgSpec = compile(withConfig).spec;
  const view = new vega.View(vega.parse(vgSpec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize(); // releases the dataflow's timers and listeners
  }
}

/** Renders a vega-lite spec to a PNG buffer. */
export async function renderVegaLitePng(spec: TopLevelSpec, opts: RenderOptions = {}): Promise<Buffer> {
  const svg = await renderVegaLiteSvg(spec);
  const density = 72 * (opts.scale ?? 2); // librsvg's 72 dpi = 1 CSS px per PNG px
  return sharp(Buffer.from(svg), { density }).png().toBuffer();
}

export interface HistoryChartOptions {
  title: string;
}

/**
 * Training curves: accuracy (left) and loss (right) per epoch, training and validation as
 * two colored series, like the notebook's two-panel matplotlib figure.
 */
export async function renderHistoryChart(history: HistoryRecord[], opts: HistoryChartOptions): Promise<Buffer> {
  // Long format: one row per (epoch, metric, series) so one spec draws both panels.
  const rows = history.flatMap((h) => [
    { epoch: h.epoch, metric: 'Accuracy', series: 'training', value: h.acc },
    { epoch: h.epoch, metric: 'Accuracy', series: 'validation', value: h.val_acc },
    { epoch: h.epoch, metric: 'Loss', series: 'training', value: h.loss },
    { epoch: h.epoch, metric: 'Loss', series: 'validation', value: h.val_loss },
  ]).filter((r) => Number.isFinite(r.value));
  const maxEpoch = Math.max(1, ...history.map((h) => h.epoch));
  const panel = (metric: 'Accuracy' | 'Loss') => ({
    title: metric,
    width: 320,
    height: 220,
    transform: [{ filter: { field: 'metric', equal: metric } }],
    mark: { type: 'line' as const, point: { size: 40 }, strokeWidth: 2 },
    encoding: {
      x: {
        field: 'epoch',
        type: 'quantitative' as const,
        title: 'epoch',
        scale: { domain: [1, Math.max(2, maxEpoch)] },
        axis: { tickMinStep: 1, format: 'd' },
      },
      y: { field: 'value', type: 'quantitative' as const, title: metric.toLowerCase(), scale: { zero: false } },
      color: {
        field: 'series',
        type: 'nominal' as const,
        title: null,
        scale: { domain: ['training', 'validation'], range: ['#1f77b4', '#ff7f0e'] },
        legend: { orient: 'bottom' as const },
      },
    },
  });
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: opts.title,
    data: { values: rows },
    hconcat: [panel('Accuracy'), panel('Loss')],
    resolve: { scale: { y: 'independent' } },
  } as TopLevelSpec;
  return renderVegaLitePng(spec);
}
