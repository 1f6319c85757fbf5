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
  return renderVegaLitePng(historyChartSpec(history, opts));
}

/**
 * A model's curves are titled by its name (the model directory's, metadata.name), not its
 * architecture, so two runs of one architecture are told apart; train's curves.png and the
 * report's both.
 */
export function historyChartTitle(name: string, synthetic: boolean): string {
  return `${name}: training curves${synthetic ? ' (SYNTHETIC data)' : ''}`;
}

/** The vega-lite spec renderHistoryChart draws. */
export function historyChartSpec(history: HistoryRecord[], opts: HistoryChartOptions): TopLevelSpec {
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
  return spec;
}

/** One run's history, named, for the overlay. */
export interface NamedHistory {
  name: string;
  history: HistoryRecord[];
}

/**
 * Several runs' curves on one chart (`svhn report` with two models or more): validation
 * accuracy and validation loss against the epoch, one line per run, coloured by its name, so
 * runs of one architecture with different recipes are compared at a glance.
 */
export async function renderOverlayChart(runs: NamedHistory[], opts: { title: string }): Promise<Buffer> {
  return renderVegaLitePng(overlayChartSpec(runs, opts));
}

export function overlayChartSpec(runs: NamedHistory[], opts: { title: string }): TopLevelSpec {
  const rows = runs.flatMap((r) =>
    r.history.flatMap((h) => [
      { epoch: h.epoch, metric: 'Validation accuracy', run: r.name, value: h.val_acc },
      { epoch: h.epoch, metric: 'Validation loss', run: r.name, value: h.val_loss },
    ]),
  ).filter((row) => Number.isFinite(row.value));
  const maxEpoch = Math.max(2, ...runs.flatMap((r) => r.history.map((h) => h.epoch)));
  const panel = (metric: string) => ({
    title: metric,
    width: 320,
    height: 220,
    transform: [{ filter: { field: 'metric', equal: metric } }],
    mark: { type: 'line' as const, point: { size: 30 }, strokeWidth: 2 },
    encoding: {
      x: { field: 'epoch', type: 'quantitative' as const, title: 'epoch', scale: { domain: [1, maxEpoch] }, axis: { tickMinStep: 1, format: 'd' } },
      y: { field: 'value', type: 'quantitative' as const, title: metric.toLowerCase(), scale: { zero: false } },
      color: { field: 'run', type: 'nominal' as const, title: null, legend: { orient: 'bottom' as const } },
    },
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: opts.title,
    data: { values: rows },
    hconcat: [panel('Validation accuracy'), panel('Validation loss')],
    resolve: { scale: { y: 'independent' } },
  } as TopLevelSpec;
}

export interface MatrixChartOptions {
  title: string;
  /** Axis titles; default "predicted" / "true" (rows are the true digit). */
  xTitle?: string;
  yTitle?: string;
}

/**
 * An annotated confusion-matrix heatmap, like seaborn's heatmap(annot=True, fmt='d',
 * cmap='Blues'): one cell per (true, predicted) pair, its count written in it, dark text on
 * light cells and white text on dark ones.
 */
export async function renderConfusionHeatmap(matrix: number[][], opts: MatrixChartOptions): Promise<Buffer> {
  const k = matrix.length;
  const max = Math.max(1, ...matrix.flat());
  const rows = matrix.flatMap((r, t) => r.map((count, p) => ({ true: String(t), predicted: String(p), count })));
  const order = Array.from({ length: k }, (_, i) => String(i));
  const cell = 44; // px per cell: room for a 4-5 digit count
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: opts.title,
    data: { values: rows },
    width: cell * k,
    height: cell * k,
    encoding: {
      x: { field: 'predicted', type: 'ordinal', sort: order, title: opts.xTitle ?? 'predicted', axis: { labelAngle: 0 } },
      y: { field: 'true', type: 'ordinal', sort: order, title: opts.yTitle ?? 'true' },
    },
    layer: [
      {
        mark: { type: 'rect', stroke: 'white', strokeWidth: 1 },
        encoding: {
          color: {
            field: 'count',
            type: 'quantitative',
            title: 'count',
            scale: { scheme: 'blues', domain: [0, max] },
            legend: { gradientLength: cell * k - 20 },
          },
        },
      },
      {
        mark: { type: 'text', fontSize: 12 },
        encoding: {
          text: { field: 'count', type: 'quantitative', format: 'd' },
          color: { condition: { test: `datum.count > ${max / 2}`, value: 'white' }, value: '#111' },
        },
      },
    ],
  } as TopLevelSpec;
  return renderVegaLitePng(spec);
}

export interface BarChartOptions {
  title: string;
  yTitle?: string;
}

/** Per-class F1 (or any score in [0, 1]) as bars, the value written above each bar. */
export async function renderClassScoreBars(scores: number[], opts: BarChartOptions): Promise<Buffer> {
  const rows = scores.map((v, d) => ({ digit: String(d), value: v }));
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: opts.title,
    data: { values: rows },
    width: 420,
    height: 240,
    encoding: {
      x: { field: 'digit', type: 'ordinal', sort: rows.map((r) => r.digit), title: 'digit', axis: { labelAngle: 0 } },
      y: { field: 'value', type: 'quantitative', title: opts.yTitle ?? 'F1', scale: { domain: [0, 1] } },
    },
    layer: [
      { mark: { type: 'bar', color: '#4c78a8' } },
      {
        mark: { type: 'text', dy: -7, fontSize: 11 },
        encoding: { text: { field: 'value', type: 'quantitative', format: '.2f' } },
      },
    ],
  } as TopLevelSpec;
  return renderVegaLitePng(spec);
}

export interface ReliabilityChartOptions {
  title: string;
  /** Written under the title: the ECE, the temperature. */
  subtitle?: string | string[];
}

/** One reliability bin as the diagram needs it (metrics/calibration.ts ReliabilityBin). */
export interface ReliabilityBarBin {
  lower: number;
  upper: number;
  count: number;
  confidence: number;
  accuracy: number;
}

/**
 * A reliability diagram (Guo et al. 2017, figure 1): per equal-width bin of the top-1
 * confidence, a bar up to the accuracy of its images and, outlined in red, up to their mean
 * confidence (the gap is the miscalibration); the diagonal is perfect calibration; each
 * non-empty bin's image count is written above it. Empty bins draw nothing.
 */
export async function renderReliabilityDiagram(bins: ReliabilityBarBin[], opts: ReliabilityChartOptions): Promise<Buffer> {
  return renderVegaLitePng(reliabilityDiagramSpec(bins, opts));
}

/** The vega-lite spec renderReliabilityDiagram draws. */
export function reliabilityDiagramSpec(bins: ReliabilityBarBin[], opts: ReliabilityChartOptions): TopLevelSpec {
  const rows = bins.filter((b) => b.count > 0).map((b) => ({ ...b, top: Math.max(b.accuracy, b.confidence) }));
  const x = { field: 'lower', type: 'quantitative' as const, title: 'confidence (top-1 probability)', scale: { domain: [0, 1] } };
  const y = { type: 'quantitative' as const, title: 'accuracy', scale: { domain: [0, 1.08] }, axis: { values: [0, 0.2, 0.4, 0.6, 0.8, 1] } };
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: opts.title, ...(opts.subtitle ? { subtitle: opts.subtitle, subtitleFontSize: 12 } : {}) },
    width: 440,
    height: 360,
    layer: [
      {
        data: { values: rows },
        mark: { type: 'bar', color: '#4c78a8', stroke: 'white', strokeWidth: 0.5 },
        encoding: { x, x2: { field: 'upper' }, y: { ...y, field: 'accuracy' }, y2: { datum: 0 } },
      },
      {
        data: { values: rows },
        mark: { type: 'bar', fill: '#e45756', fillOpacity: 0.15, stroke: '#e45756', strokeWidth: 1.2 },
        encoding: { x, x2: { field: 'upper' }, y: { ...y, field: 'confidence' }, y2: { datum: 0 } },
      },
      {
        data: { values: [{ a: 0, b: 0 }, { a: 1, b: 1 }] },
        mark: { type: 'line', color: '#555555', strokeDash: [5, 4], strokeWidth: 1.2 },
        encoding: { x: { ...x, field: 'a' }, y: { ...y, field: 'b' } },
      },
      {
        data: { values: rows.map((r) => ({ ...r, middle: (r.lower + r.upper) / 2 })) },
        mark: { type: 'text', dy: -6, fontSize: 10, color: '#222222' },
        encoding: { x: { ...x, field: 'middle' }, y: { ...y, field: 'top' }, text: { field: 'count', type: 'quantitative', format: 'd' } },
      },
    ],
  } as TopLevelSpec;
  return spec;
}
