/**
 * What `svhn evaluate` leaves on disk, one directory per model (default <modelDir>/evaluation
 * for the test split, <modelDir>/evaluation-val for val, <modelDir>/evaluation-images for a
 * labelled folder or CSV, so it never replaces the test split's):
 *
 *   report.json     everything: metrics, confusion matrix, sklearn-style report (dict and
 *                   text), timing, and one prediction per image with its confidence
 *   confusion.csv   rows true digit, columns predicted: a header row and 10 rows, nothing else
 *   confusion.png   annotated heatmap (counts in each cell)
 *   f1.png          per-digit F1 bars
 *   reliability.png reliability diagram: accuracy per bin of the top-1 confidence against the
 *                   diagonal, the image count of each bin, the ECE (calibrated and raw)
 *   samples.png     the first images with prediction and confidence
 *   errors.png      the most confident mistakes first, true -> predicted (when there are any)
 *   SYNTHETIC.txt   the SYNTHETIC note, on synthetic data only: where someone looking at the
 *                   folder sees it, and not inside the CSV, where readers take a comment as a row
 *
 * The directory is written whole or not at all (built beside it, renamed into place), and
 * report.json, written last, lists the other files with their sizes and sha256, so a reader
 * can tell a whole evaluation. Results on synthetic data say SYNTHETIC in every file.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { classificationReportDict, formatClassificationReport, formatFixed } from '../metrics/classification.js';
import { confusionMatrixCsv, formatConfusionMatrix } from '../metrics/confusion.js';
import type { ModelSummary } from '../metrics/comparison.js';
import { accuracyInterval, formatInterval, type AccuracyInterval } from '../metrics/intervals.js';
import {
  CONFUSION_CSV,
  CONFUSION_PNG,
  ERRORS_PNG,
  EVALUATION_DIRS,
  EVALUATION_FILES,
  F1_PNG,
  MODEL_JSON,
  RELIABILITY_PNG,
  REPORT_JSON,
  SAMPLES_PNG,
  SYNTHETIC_TXT,
  WEIGHTS_BIN,
} from '../models/modelDir.js';
import { renderClassScoreBars, renderConfusionHeatmap, renderReliabilityDiagram } from '../report/charts.js';
import { renderImageGrid } from '../report/grid.js';
import { SvhnError, ioError } from '../errors.js';
import { buildDirAtomic, sha256 } from '../util/atomic.js';
import { firstAndCount, replaceTarget } from '../util/dirs.js';
import { readRegularFileIfReadable } from '../util/files.js';
import type { EvalSplit, EvaluationResult, SampleSet } from './evaluate.js';


export const SYNTHETIC_NOTE = 'SYNTHETIC: offline sample data, not SVHN; these numbers say nothing about real accuracy';

/** Where a model's evaluation goes unless --out says otherwise. */
export function defaultEvaluationDir(modelDir: string, split: EvalSplit | 'labelled'): string {
  return join(modelDir, EVALUATION_DIRS[split]);
}

/** What the model was evaluated on, for titles and text: "test split", "images digits/". */
export function dataLabel(data: EvaluationResult['data']): string {
  return data.source ? `images ${data.source.path}` : `${data.split} split`;
}

/** Identifies the exact model files evaluated, so a report can tell a stale evaluation. */
export async function modelFingerprint(modelDir: string): Promise<string> {
  const parts = await Promise.all([MODEL_JSON, WEIGHTS_BIN].map((f) => readRegularFileIfReadable(join(modelDir, f)).then((b) => b ?? Buffer.alloc(0))));
  return sha256(Buffer.concat(parts));
}

/** Wilson 95% interval of the accuracy, from the confusion matrix's diagonal and total. */
export function evaluationInterval(r: Pick<EvaluationResult, 'confusion'>): AccuracyInterval {
  const correct = r.confusion.reduce((s, row, i) => s + row[i]!, 0);
  const n = r.confusion.reduce((s, row) => s + row.reduce((x, y) => x + y, 0), 0);
  return accuracyInterval(correct, n);
}

export function summarize(r: EvaluationResult): ModelSummary {
  return {
    name: r.model.name,
    accuracy: r.accuracy,
    accuracyInterval: evaluationInterval(r),
    macroF1: r.report.macroAvg.f1,
    weightedF1: r.report.weightedAvg.f1,
    loss: r.loss,
    params: r.model.params,
    imagesPerSec: r.imagesPerSec,
    synthetic: r.synthetic,
    modelSynthetic: r.model.synthetic,
  };
}

/**
 * The title suffix of every chart: the data evaluated decides; a model trained on the sample
 * but evaluated on other data (SVHN, your own images) is named as such.
 */
export function syntheticTag(r: Pick<EvaluationResult, 'synthetic'> & { model: { synthetic: boolean } }): string {
  if (r.synthetic) return ' (SYNTHETIC data)';
  return r.model.synthetic ? ' (model trained on SYNTHETIC data)' : '';
}

/** The line above the text summary of a model trained on the sample, evaluated on other data. */
function trainedOnSyntheticNote(r: EvaluationResult): string {
  const on = r.data.source ? 'your images' : `the ${r.data.split} split`;
  return `note: model trained on SYNTHETIC data (svhn's offline sample), evaluated on ${on}: these are its numbers on that data`;
}

/** How errors.png is ordered; report.json says so, and `svhn report` redoes an evaluation without it (index order, before). */
export const ERRORS_ORDER = 'confidence';

/** report.json's content. */
export async function evaluationJson(r: EvaluationResult): Promise<Record<string, unknown>> {
  const n = r.data.count;
  const { labels, predicted, confidence } = r.predictions;
  return {
    ...(r.synthetic ? { SYNTHETIC: SYNTHETIC_NOTE } : {}),
    synthetic: r.synthetic,
    model: {
      name: r.model.name,
      dir: r.model.dir,
      architecture: r.model.architecture,
      params: r.model.params,
      synthetic: r.model.synthetic,
      fingerprint: await modelFingerprint(r.model.dir),
    },
    data: withoutFiles(r.data), // the files are listed per prediction below
    backend: r.backend,
    accuracy: r.accuracy,
    accuracyInterval: evaluationInterval(r),
    loss: r.loss,
    macroF1: r.report.macroAvg.f1,
    weightedF1: r.report.weightedAvg.f1,
    calibration: calibrationJson(r.calibration),
    seconds: r.seconds,
    imagesPerSec: r.imagesPerSec,
    confusionMatrix: { rows: 'true digit', columns: 'predicted digit', counts: r.confusion },
    classificationReport: classificationReportDict(r.report),
    classificationReportText: formatClassificationReport(r.report),
    warnings: r.report.warnings,
    errorsOrder: ERRORS_ORDER, // the most confident mistakes first, ties by index
    createdAt: new Date().toISOString(),
    predictions: Array.from({ length: n }, (_, i) => ({
      index: i,
      ...(r.data.source ? { file: r.data.source.files[i] } : {}),
      true: labels[i],
      predicted: predicted[i],
      confidence: Number(confidence[i]!.toFixed(6)),
    })),
  };
}

/** report.json's calibration: ECE of the probabilities evaluated and of the raw softmax, the temperature, the bins of both. */
function calibrationJson(c: EvaluationResult['calibration']): Record<string, unknown> {
  return {
    ece: c.ece,
    eceRaw: c.eceRaw,
    temperature: c.temperature,
    fittedTemperature: c.fittedTemperature,
    bins: c.bins,
    binsRaw: c.binsRaw, // the raw softmax's, for a before/after diagram
  };
}

/** The summary's calibration line: ECE with the temperature applied, and raw. */
export function formatCalibration(c: EvaluationResult['calibration']): string {
  const raw = `ECE raw ${formatFixed(c.eceRaw, 4)}`;
  if (c.temperature !== 1) return `calibration: ECE ${formatFixed(c.ece, 4)} at temperature ${c.temperature.toFixed(3)} (${raw}; 15 bins)`;
  const why = c.fittedTemperature === 1 ? 'the model records no temperature' : `--no-calibration: the model's temperature ${c.fittedTemperature.toFixed(3)} not applied`;
  return `calibration: ${raw} (${why}; 15 bins)`;
}

/** The reliability diagram of the probabilities evaluated. */
async function renderReliability(r: EvaluationResult, tag: string): Promise<Buffer> {
  const c = r.calibration;
  const subtitle = [
    c.temperature !== 1 ? `ECE ${formatFixed(c.ece, 4)} at temperature ${c.temperature.toFixed(3)} (raw softmax: ${formatFixed(c.eceRaw, 4)})` : `ECE ${formatFixed(c.eceRaw, 4)}, raw softmax`,
    'blue: accuracy, red: mean confidence, dashed: ideal; images per bin above',
  ];
  return renderReliabilityDiagram(c.bins, { title: `${r.model.name}: reliability diagram, ${dataLabel(r.data)}${tag}`, subtitle });
}

function withoutFiles(data: EvaluationResult['data']): Record<string, unknown> {
  if (!data.source) return data;
  const { files: _files, ...source } = data.source;
  return { ...data, source };
}

function sampleCaptions(s: SampleSet): { captions: string[]; colors: string[] } {
  return {
    captions: s.predicted.map((p, i) => `${p} (${Math.round(100 * s.confidence[i]!)}%)${p === s.labels[i] ? '' : ` ≠${s.labels[i]}`}`),
    colors: s.predicted.map((p, i) => (p === s.labels[i] ? '#1a7f37' : '#cf222e')),
  };
}

/** Grid of the first images: prediction (confidence), green when right, red with the true digit when wrong. */
export async function renderSamplesGrid(r: EvaluationResult): Promise<Buffer | undefined> {
  if (r.samples.count === 0) return undefined;
  const { captions, colors } = sampleCaptions(r.samples);
  return renderImageGrid({
    images: r.samples.images,
    count: r.samples.count,
    captions,
    captionColors: colors,
    scale: 4,
    title: `${r.model.name}: predictions on the first ${r.data.source ? 'labelled' : r.data.split} images${syntheticTag(r)}`,
  });
}

/** Grid of the most confident mistakes, most confident first: true -> predicted (confidence). */
export async function renderErrorsGrid(r: EvaluationResult): Promise<Buffer | undefined> {
  if (r.errors.count === 0) return undefined;
  const e = r.errors;
  return renderImageGrid({
    images: e.images,
    count: e.count,
    captions: e.predicted.map((p, i) => `${e.labels[i]} → ${p} (${Math.round(100 * e.confidence[i]!)}%)`),
    captionColors: e.predicted.map(() => '#cf222e'),
    scale: 4,
    title: `${r.model.name}: misclassified, most confident first, true → predicted${syntheticTag(r)}`,
  });
}

/** report.json's record of the other files, so a reader can tell a whole directory from a damaged one. */
export type EvaluationFileList = Record<string, { bytes: number; sha256: string }>;

/**
 * Writes every output file into outDir, whole or not at all: the files are built in a
 * temporary sibling, report.json last (listing the others' sizes and hashes), and the
 * directory is swapped in by rename. An old outDir is replaced, so it must be an earlier
 * evaluation (or empty): check with assertEvaluationDirReplaceable first. Returns the paths written.
 */
export async function writeEvaluationOutputs(r: EvaluationResult, outDir: string): Promise<string[]> {
  const json = await evaluationJson(r); // before the build: it reads the model's files
  const tag = syntheticTag(r);
  const outputs: Array<[string, string | Uint8Array | undefined]> = [
    [CONFUSION_CSV, confusionMatrixCsv(r.confusion)],
    [CONFUSION_PNG, await renderConfusionHeatmap(r.confusion, { title: `${r.model.name}: confusion matrix, ${dataLabel(r.data)} (${r.data.count} images)${tag}` })],
    [F1_PNG, await renderClassScoreBars(r.report.perClass.map((c) => c.f1), { title: `${r.model.name}: F1 per digit, ${dataLabel(r.data)}${tag}` })],
    [RELIABILITY_PNG, await renderReliability(r, tag)],
    // A grid with nothing to show is left out (the old directory goes as a whole).
    [SAMPLES_PNG, await renderSamplesGrid(r)],
    [ERRORS_PNG, await renderErrorsGrid(r)],
    [SYNTHETIC_TXT, r.synthetic ? `${SYNTHETIC_NOTE}\n` : undefined],
  ];
  const names = await buildDirAtomic(outDir, async (tmp) => {
    const files: EvaluationFileList = {};
    // A failure names the final path: the temporary one means nothing to the user.
    const put = (name: string, data: string | Uint8Array) => writeFile(join(tmp, name), data).catch((e: unknown) => Promise.reject(ioError(join(outDir, name), 'write', e)));
    for (const [name, data] of outputs) {
      if (data === undefined) continue;
      await put(name, data);
      files[name] = { bytes: Buffer.byteLength(data), sha256: sha256(data) };
    }
    await put(REPORT_JSON, JSON.stringify({ ...json, files }, null, 2) + '\n'); // last: its file list vouches for the rest
    return [REPORT_JSON, ...Object.keys(files)];
  });
  return names.map((name) => join(outDir, name));
}

/**
 * Refuses an outDir that exists and holds anything but an evaluation's files: writing the
 * evaluation replaces the whole directory, which must not take a user's other files with it.
 */
export async function assertEvaluationDirReplaceable(outDir: string, opts: { fromFlag: boolean }): Promise<void> {
  const named = opts.fromFlag ? `--out ${outDir}` : outDir;
  let target;
  try {
    target = await replaceTarget(outDir);
  } catch (e) {
    throw ioError(outDir, 'read', e);
  }
  if (target.kind === 'not-dir') throw new SvhnError(opts.fromFlag ? 'BAD_FLAG' : 'BAD_INPUT', `${named}: expected a directory for the evaluation, got a file`);
  if (target.kind === 'missing') return;
  const known = new Set<string>(EVALUATION_FILES);
  const other = target.entries.filter((e) => !known.has(e));
  if (other.length) {
    throw new SvhnError(opts.fromFlag ? 'BAD_FLAG' : 'BAD_INPUT', `${named}: expected a new directory or an earlier evaluation (it is replaced whole), got one holding ${firstAndCount(other)}`, {
      suggestion: opts.fromFlag ? 'pass another --out' : 'move its other files, or pass --out DIR',
    });
  }
}

/**
 * Why the evaluation in dir (as report.json's file list describes it) is not whole, or
 * undefined when every listed file is there with its recorded size and sha256.
 */
export async function evaluationDirProblem(dir: string, files: EvaluationFileList | undefined): Promise<string | undefined> {
  if (!files || typeof files !== 'object') return `${REPORT_JSON} lists no files (an older or interrupted evaluation)`;
  for (const name of [CONFUSION_CSV, CONFUSION_PNG, F1_PNG]) if (!(name in files)) return `${REPORT_JSON} does not list ${name}`;
  for (const [name, want] of Object.entries(files)) {
    const data = await readRegularFileIfReadable(join(dir, name));
    if (!data) return `${name} is missing`;
    if (data.byteLength !== want?.bytes || sha256(data) !== want.sha256) return `${name} differs from what ${REPORT_JSON} records`;
  }
  return undefined;
}

/** The human-readable summary `svhn evaluate` prints for one model. */
export function formatEvaluationText(r: EvaluationResult, outDir?: string): string {
  const lines = [
    ...(r.synthetic ? [`*** ${SYNTHETIC_NOTE} ***`] : r.model.synthetic ? [trainedOnSyntheticNote(r)] : []),
    `model ${r.model.name} (${r.model.architecture}, ${r.model.params.toLocaleString('en-US')} parameters) from ${r.model.dir}`,
    r.data.source
      ? `labelled ${r.data.source.kind} ${r.data.source.path}: ${r.data.count} images${r.data.source.skipped.length ? `, ${r.data.source.skipped.length} file${r.data.source.skipped.length === 1 ? '' : 's'} skipped (listed in ${REPORT_JSON})` : ''}`
      : `${r.data.split} split: ${r.data.count} images from ${r.data.dataDir}`,
    `accuracy ${formatFixed(r.accuracy, 4)} (95% CI ${formatInterval(evaluationInterval(r))}, Wilson, n=${r.data.count})  loss ${formatFixed(r.loss, 4)}  macro F1 ${formatFixed(r.report.macroAvg.f1, 4)}  weighted F1 ${formatFixed(r.report.weightedAvg.f1, 4)}`,
    formatCalibration(r.calibration),
    `${formatFixed(r.imagesPerSec, 0)} images/s on ${r.backend} (${r.seconds.toFixed(1)} s)`,
    '',
    'confusion matrix (rows: true digit, columns: predicted digit)',
    formatConfusionMatrix(r.confusion),
    'classification report',
    formatClassificationReport(r.report),
  ];
  if (r.report.warnings.length) lines.push(...r.report.warnings.map((w) => `warning: ${w}`), '');
  if (outDir) lines.push(`wrote ${outDir}/{${REPORT_JSON},${CONFUSION_CSV},${CONFUSION_PNG},${F1_PNG},${RELIABILITY_PNG},...}`, '');
  return lines.join('\n');
}
