/**
 * `svhn report`: one self-contained HTML page about one or more trained models: training
 * curves, the comparison table, confusion matrices, classification reports, sample
 * predictions and errors. Every image is inlined as a data: URI and the page has no script
 * and no external reference, so it opens offline, from e-mail, anywhere.
 *
 * Inputs are the files earlier stages wrote: <model>/history.json (drawn, titled by the model's
 * name; curves.png where there is none),
 * <model>/metadata.json, and `svhn evaluate`'s output directory. An evaluation that is missing,
 * stale (other weights, other data, other split) or incomplete (a file its report.json lists is
 * missing or differs) is run again first.
 */
import { escapeHtml } from '../util/text.js';
import { join } from 'node:path';
import type { EvalSplit } from '../evaluate/evaluate.js';
import {
  ERRORS_ORDER,
  SYNTHETIC_NOTE,
  defaultEvaluationDir,
  evaluationDirProblem,
  modelFingerprint,
  type EvaluationFileList,
} from '../evaluate/outputs.js';
import { SvhnError } from '../errors.js';
import { getLogger } from '../log.js';
import { formatFixed } from '../metrics/classification.js';
import { compareModels, comparisonCells, type Comparison, type ModelSummary } from '../metrics/comparison.js';
import { accuracyInterval, formatInterval, type AccuracyInterval } from '../metrics/intervals.js';
import { CONFUSION_PNG, CURVES_PNG, ERRORS_PNG, F1_PNG, HISTORY_JSON, REPORT_JSON, SAMPLES_PNG, type HistoryRecord, type ModelMetadata } from '../models/modelDir.js';
import { readModelMetadata } from '../models/io.js';
import { writeFileAtomic } from '../util/atomic.js';
import { readRegularFileIfReadable } from '../util/files.js';
import { parseJsonFile, readJsonFile } from '../util/json.js';
import { historyChartTitle, renderHistoryChart, renderOverlayChart, type NamedHistory } from './charts.js';

/** The parts of report.json (evaluate/outputs.ts evaluationJson) the page uses. */
export interface EvaluationJson {
  synthetic: boolean; // the data evaluated (before issue 24: the data or the model)
  model: { name: string; dir: string; architecture: string; params: number; fingerprint: string; synthetic?: boolean };
  data: { dataDir: string; split: EvalSplit; count: number; synthetic: boolean; manifestSha256: string };
  backend: string;
  accuracy: number;
  /** Wilson 95% interval (absent before issue 24: worked out from accuracy and count). */
  accuracyInterval?: AccuracyInterval;
  loss: number;
  macroF1: number;
  weightedF1: number;
  imagesPerSec: number;
  classificationReportText: string;
  warnings: string[];
  /** 'confidence': errors.png shows the most confident mistakes first (absent: index order, an older svhn). */
  errorsOrder?: string;
  createdAt: string;
  /** The other files of the directory (absent in evaluations from before it was written whole). */
  files?: EvaluationFileList;
}

/** Everything the page shows about one model; PNGs as bytes. */
export interface ModelSection {
  name: string;
  dir: string;
  metadata?: ModelMetadata;
  evaluation: EvaluationJson;
  curves?: Buffer;
  confusion?: Buffer;
  f1?: Buffer;
  samples?: Buffer;
  errors?: Buffer;
}

export interface ReportData {
  title: string;
  createdAt: string;
  split: EvalSplit;
  models: ModelSection[];
  comparison: Comparison;
  /** Two runs or more: their validation curves on one chart (charts.ts overlayChartSpec). */
  overlay?: Buffer;
}

export interface BuildReportOptions {
  modelDirs: string[];
  dataDir: string;
  split: EvalSplit;
  batchSize: number;
  outFile: string;
  /** Evaluate again even when a fresh evaluation is on disk. */
  fresh?: boolean;
  /** Called once before the first evaluation that has to run (the CLI sets the backend there). */
  beforeEvaluate?: () => Promise<void>;
  progress?: 'bar' | 'plain' | 'silent';
}

export interface BuildReportResult {
  outFile: string;
  bytes: number;
  evaluated: string[]; // model dirs evaluated now (the others reused their evaluation)
  synthetic: boolean;
}

/** The on-disk evaluation of modelDir if it matches the model's weights, the data and the split. */
async function freshEvaluation(modelDir: string, dataDir: string, split: EvalSplit): Promise<EvaluationJson | undefined> {
  const evalDir = defaultEvaluationDir(modelDir, split);
  const text = await readRegularFileIfReadable(join(evalDir, REPORT_JSON));
  if (!text) return undefined;
  let ev: EvaluationJson;
  try {
    ev = JSON.parse(text.toString('utf8')) as EvaluationJson;
  } catch {
    return undefined;
  }
  if (ev.data?.split !== split || ev.model?.fingerprint !== (await modelFingerprint(modelDir))) return undefined;
  try {
    const { openCache } = await import('../data/cache/cache.js');
    const cache = await openCache(dataDir);
    if (cache.manifestSha256 !== ev.data.manifestSha256) return undefined;
  } catch (e) {
    // No cache to compare with: the evaluation on disk is the best there is.
    if (!(e instanceof SvhnError && e.code === 'MISSING_DATA')) throw e;
  }
  if (ev.errorsOrder !== ERRORS_ORDER) {
    getLogger().info({ model: modelDir }, `the evaluation in ${evalDir} draws its errors grid in index order (an older svhn); evaluating again`);
    return undefined;
  }
  const problem = await evaluationDirProblem(evalDir, ev.files);
  if (problem) {
    getLogger().warn({ model: modelDir }, `the evaluation in ${evalDir} is incomplete (${problem}); evaluating again`);
    return undefined;
  }
  return ev;
}

/**
 * A model's curves, drawn from its history.json and titled by its name (older models' curves.png
 * carry their architecture's, which two runs of one architecture share); curves.png as it is
 * where there is no history.json. Older history.json (without lr) draw the same.
 */
export async function curvesFor(modelDir: string, name: string, synthetic: boolean): Promise<Buffer | undefined> {
  const history = await readRegularFileIfReadable(join(modelDir, HISTORY_JSON));
  if (!history) return readRegularFileIfReadable(join(modelDir, CURVES_PNG));
  const historyPath = join(modelDir, HISTORY_JSON);
  const records = parseJsonFile(history, historyPath, { code: 'BAD_MODEL' });
  if (!Array.isArray(records)) throw new SvhnError('BAD_MODEL', `cannot read ${historyPath}: expected a JSON array of epoch records`);
  return renderHistoryChart(records as HistoryRecord[], { title: historyChartTitle(name, synthetic) });
}

/** The runs' validation curves on one chart, for two runs or more with a history.json. */
async function overlayOf(sections: ModelSection[]): Promise<Buffer | undefined> {
  const runs: NamedHistory[] = [];
  for (const s of sections) {
    const bytes = await readRegularFileIfReadable(join(s.dir, HISTORY_JSON));
    const records = bytes ? parseJsonFile(bytes, join(s.dir, HISTORY_JSON), { code: 'BAD_MODEL' }) : undefined;
    if (Array.isArray(records)) runs.push({ name: s.name, history: records as HistoryRecord[] });
  }
  if (runs.length < 2) return undefined;
  const synthetic = sections.some((s) => Boolean(s.metadata?.synthetic));
  return renderOverlayChart(runs, { title: `Validation curves: ${runs.map((r) => r.name).join(' vs ')}${synthetic ? ' (SYNTHETIC data)' : ''}` });
}

/** Gathers (evaluating where needed), renders and writes the report. */
export async function buildReport(opts: BuildReportOptions): Promise<BuildReportResult> {
  const log = getLogger();
  const sections: ModelSection[] = [];
  const evaluated: string[] = [];
  let backendReady = false;
  for (const modelDir of opts.modelDirs) {
    let ev = opts.fresh ? undefined : await freshEvaluation(modelDir, opts.dataDir, opts.split);
    if (!ev) {
      if (!backendReady) {
        await opts.beforeEvaluate?.();
        backendReady = true;
      }
      log.info({ model: modelDir, split: opts.split }, `evaluating ${modelDir} on the ${opts.split} split`);
      const { runEvaluate } = await import('../evaluate/run.js');
      await runEvaluate({ modelDirs: [modelDir], dataDir: opts.dataDir, split: opts.split, batchSize: opts.batchSize, progress: opts.progress });
      evaluated.push(modelDir);
      ev = (await readJsonFile(join(defaultEvaluationDir(modelDir, opts.split), REPORT_JSON), { code: 'BAD_INPUT' })) as EvaluationJson;
    } else {
      log.info({ model: modelDir }, `using the evaluation in ${defaultEvaluationDir(modelDir, opts.split)}`);
    }
    const evalDir = defaultEvaluationDir(modelDir, opts.split);
    const metadata = await readModelMetadata(modelDir);
    sections.push({
      name: ev.model.name,
      dir: modelDir,
      metadata,
      evaluation: ev,
      curves: await curvesFor(modelDir, ev.model.name, Boolean(metadata.synthetic)), // the training data's mark
      confusion: await readRegularFileIfReadable(join(evalDir, CONFUSION_PNG)),
      f1: await readRegularFileIfReadable(join(evalDir, F1_PNG)),
      samples: await readRegularFileIfReadable(join(evalDir, SAMPLES_PNG)),
      errors: await readRegularFileIfReadable(join(evalDir, ERRORS_PNG)),
    });
  }
  const summaries: ModelSummary[] = sections.map((s) => ({
    name: s.name,
    accuracy: s.evaluation.accuracy,
    accuracyInterval: intervalOf(s.evaluation),
    macroF1: s.evaluation.macroF1,
    weightedF1: s.evaluation.weightedF1,
    loss: s.evaluation.loss,
    params: s.evaluation.model.params,
    imagesPerSec: s.evaluation.imagesPerSec,
    synthetic: s.evaluation.synthetic,
    modelSynthetic: Boolean(s.evaluation.model.synthetic),
  }));
  const html = renderReportHtml({
    title: `SVHN digit classifiers: ${sections.map((s) => s.name).join(' vs ')}`,
    createdAt: new Date().toISOString(),
    split: opts.split,
    models: sections,
    comparison: compareModels(summaries),
    overlay: await overlayOf(sections),
  });
  await writeFileAtomic(opts.outFile, html);
  return { outFile: opts.outFile, bytes: Buffer.byteLength(html), evaluated, synthetic: summaries.some((s) => s.synthetic) };
}

/** The Wilson interval report.json records, or (older report.json) one worked out from accuracy and count. */
function intervalOf(ev: EvaluationJson): AccuracyInterval {
  return ev.accuracyInterval ?? accuracyInterval(Math.round(ev.accuracy * ev.data.count), ev.data.count);
}

export { escapeHtml }; // util/text.ts: the report, serve's /docs and others share it

/**
 * An inlined PNG. `density` is its pixels per CSS pixel: charts are rendered at 2x, so they
 * are shown at half their pixel width (sharp on hi-dpi screens, normal size elsewhere).
 */
export function img(png: Buffer | undefined, alt: string, density = 1): string {
  if (!png) return `<p class="missing">(${escapeHtml(alt)}: not available)</p>`;
  const isPng = png.length > 24 && png.readUInt32BE(0) === 0x89504e47;
  const width = isPng ? Math.round(png.readUInt32BE(16) / density) : undefined; // IHDR width
  return `<img src="data:image/png;base64,${png.toString('base64')}"${width ? ` width="${width}"` : ''} alt="${escapeHtml(alt)}">`;
}

function comparisonTable(c: Comparison): string {
  const { headers, cells, intervals } = comparisonCells(c);
  const cols = ['accuracy', 'macroF1', 'weightedF1', 'loss', 'params', 'imagesPerSec'] as const;
  const several = c.rows.length > 1;
  const head = `<tr>${headers.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr>`;
  const body = cells
    .map((row, i) => {
      const tds = row.map((cell, j) => {
        const best = several && j > 0 && c.bestByColumn[cols[j - 1]!] === i;
        // The interval goes under the accuracy, small, so the table grows no wider.
        const ci = j === 1 && intervals[i] ? `<span class="ci" title="95% Wilson interval">${escapeHtml(intervals[i]!)}</span>` : '';
        return `<td${j > 0 ? ' class="num' + (best ? ' best' : '') + '"' : ''}>${escapeHtml(cell)}${ci}</td>`;
      });
      const mark = several && i === c.best ? ' class="winner"' : '';
      return `<tr${mark}>${tds.join('')}</tr>`;
    })
    .join('\n');
  const ciNote = intervals.some((x) => x) ? ' Under each accuracy: its 95% Wilson interval.' : '';
  const note = several ? `<p class="note">Bold: best in its column (lowest for loss and parameters). Highlighted row: best accuracy.${ciNote}</p>` : ciNote ? `<p class="note">${ciNote.trim()}</p>` : '';
  // In a box of its own that scrolls sideways: on a phone the table is wider than the screen,
  // and the page itself must not scroll sideways.
  return `<div class="table-scroll">\n<table class="comparison">\n${head}\n${body}\n</table>\n</div>\n${note}`;
}

function modelSection(s: ModelSection): string {
  const ev = s.evaluation;
  const md = s.metadata;
  const facts: [string, string][] = [
    ['architecture', ev.model.architecture],
    ['parameters', ev.model.params.toLocaleString('en-US')],
    // metadata.json fields are shown when present (a hand-made or older model may lack some).
    ...(md?.epochsRun !== undefined ? ([['epochs', `${md.epochsRun} run, best ${md.bestEpoch}${md.stoppedEarly ? ' (stopped early)' : ''}`]] as [string, string][]) : []),
    ...(md?.wallTimeSec !== undefined
      ? ([['training', `${formatFixed(md.wallTimeSec, 0)} s on ${md.backend}, ${formatFixed(md.trainImagesPerSec ?? 0, 0)} images/s`]] as [string, string][])
      : []),
    ...(md?.validation ? ([['validation', `accuracy ${formatFixed(md.validation.acc, 4)}, loss ${formatFixed(md.validation.loss, 4)}`]] as [string, string][]) : []),
    ['evaluated on', `${ev.data.split} split, ${ev.data.count.toLocaleString('en-US')} images (${ev.backend}, ${formatFixed(ev.imagesPerSec, 0)} images/s)`],
    ['accuracy', `${formatFixed(ev.accuracy, 4)} (95% CI ${formatInterval(intervalOf(ev))}, Wilson)`],
    ['loss', formatFixed(ev.loss, 4)],
    ['macro / weighted F1', `${formatFixed(ev.macroF1, 4)} / ${formatFixed(ev.weightedF1, 4)}`],
  ];
  const warnings = ev.warnings.length ? `<ul class="warnings">${ev.warnings.map((w) => `<li>${escapeHtml(w)}</li>`).join('')}</ul>` : '';
  return `
<section class="model" id="model-${escapeHtml(s.name)}">
<h2>${escapeHtml(s.name)}${ev.synthetic ? ' <span class="badge">SYNTHETIC</span>' : ev.model.synthetic ? ' <span class="badge">trained on SYNTHETIC data</span>' : ''}</h2>
<p class="path">${escapeHtml(s.dir)}</p>
<table class="facts">${facts.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('')}</table>
<h3>Training curves</h3>
${img(s.curves, `${s.name} training curves`, 2)}
<h3>Confusion matrix</h3>
${img(s.confusion, `${s.name} confusion matrix`, 2)}
<h3>F1 per digit</h3>
${img(s.f1, `${s.name} F1 per digit`, 2)}
<h3>Classification report</h3>
<pre>${escapeHtml(ev.classificationReportText)}</pre>
${warnings}
<h3>Sample predictions</h3>
${img(s.samples, `${s.name} sample predictions`)}
<h3>Errors</h3>
${s.errors ? img(s.errors, `${s.name} misclassified images`) : '<p>No misclassified images.</p>'}
</section>`;
}

/** The page's style; tune.ts's study page shares it (and with it the narrow-screen rules). */
export const CSS = `
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; margin: 24px auto; max-width: 1280px; padding: 0 16px; color: #1f2328; background: #fff; overflow-wrap: anywhere; }
h1 { font-size: 26px; margin-bottom: 4px; }
h2 { border-bottom: 2px solid #d0d7de; padding-bottom: 4px; margin-top: 40px; }
h3 { margin-top: 24px; font-size: 17px; }
.meta, .path, .note { color: #59636e; font-size: 13px; }
.banner { background: #fff8c5; border: 1px solid #d4a72c; padding: 10px 14px; border-radius: 6px; font-weight: bold; }
.badge { background: #d4a72c; color: #fff; font-size: 13px; padding: 2px 8px; border-radius: 10px; vertical-align: middle; }
table { border-collapse: collapse; }
.table-scroll { max-width: 100%; overflow-x: auto; }
table.comparison th, table.comparison td { border: 1px solid #d0d7de; padding: 6px 12px; overflow-wrap: normal; }
table.comparison th, table.comparison td.num { white-space: nowrap; }
table.comparison th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.best { font-weight: bold; }
td .ci { display: block; font-size: 11px; font-weight: normal; color: #59636e; }
tr.winner td { background: #dafbe1; }
table.facts th { text-align: left; padding: 2px 16px 2px 0; color: #59636e; font-weight: normal; }
pre { background: #f6f8fa; padding: 12px; border-radius: 6px; font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: 13px; overflow-x: auto; }
img { max-width: 100%; height: auto; border: 1px solid #eaeef2; margin: 4px 8px 4px 0; }
.warnings { color: #9a6700; font-size: 13px; }
.missing { color: #59636e; font-style: italic; }
`;

/** A page's head: no script may run and nothing is fetched (images are data: URLs), the styles inline. */
export function pageHead(title: string, css: string = CSS): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>${escapeHtml(title)}</title>
<style>${css}</style>
</head>`;
}

/** The page as one string: no script, no external reference. */
export function renderReportHtml(d: ReportData): string {
  const synthetic = d.models.some((m) => m.evaluation.synthetic);
  return `${pageHead(d.title)}
<body>
<h1>${escapeHtml(d.title)}</h1>
<p class="meta">Generated ${escapeHtml(d.createdAt)} by svhn report · evaluated on the ${escapeHtml(d.split)} split</p>
${synthetic ? `<p class="banner">${escapeHtml(SYNTHETIC_NOTE)}</p>` : ''}
<h2>Comparison</h2>
${comparisonTable(d.comparison)}
${d.overlay ? `<h3>Validation curves, all runs</h3>\n${img(d.overlay, 'validation accuracy and loss of every run', 2)}` : ''}
${d.models.map(modelSection).join('\n')}
</body>
</html>
`;
}
