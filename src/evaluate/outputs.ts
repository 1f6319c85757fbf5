/**
 * What `svhn evaluate` leaves on disk, one directory per model (default <modelDir>/evaluation
 * for the test split, <modelDir>/evaluation-val for val, <modelDir>/evaluation-images for a
 * labelled folder or CSV, so it never replaces the test split's):
 *
 *   report.json     everything: metrics, confusion matrix, sklearn-style report (dict and
 *                   text), timing, and one prediction per image with its confidence
 *   confusion.csv   rows true digit, columns predicted
 *   confusion.png   annotated heatmap (counts in each cell)
 *   f1.png          per-digit F1 bars
 *   samples.png     the first images with prediction and confidence
 *   errors.png      misclassified images, true -> predicted (when there are any)
 *
 * Each file is written atomically; results on synthetic data say SYNTHETIC in every one.
 */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { classificationReportDict, formatClassificationReport, formatFixed } from '../metrics/classification.js';
import { confusionMatrixCsv, formatConfusionMatrix } from '../metrics/confusion.js';
import type { ModelSummary } from '../metrics/comparison.js';
import { MODEL_JSON, WEIGHTS_BIN } from '../models/modelDir.js';
import { renderClassScoreBars, renderConfusionHeatmap } from '../report/charts.js';
import { renderImageGrid } from '../report/grid.js';
import { sha256, writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import type { EvalSplit, EvaluationResult, SampleSet } from './evaluate.js';

export const REPORT_JSON = 'report.json';
export const CONFUSION_CSV = 'confusion.csv';
export const CONFUSION_PNG = 'confusion.png';
export const F1_PNG = 'f1.png';
export const SAMPLES_PNG = 'samples.png';
export const ERRORS_PNG = 'errors.png';

export const SYNTHETIC_NOTE = 'SYNTHETIC: offline sample data, not SVHN; these numbers say nothing about real accuracy';

/** Where a model's evaluation goes unless --out says otherwise. */
export function defaultEvaluationDir(modelDir: string, split: EvalSplit | 'labelled'): string {
  return join(modelDir, split === 'test' ? 'evaluation' : split === 'labelled' ? 'evaluation-images' : `evaluation-${split}`);
}

/** What the model was evaluated on, for titles and text: "test split", "images digits/". */
export function dataLabel(data: EvaluationResult['data']): string {
  return data.source ? `images ${data.source.path}` : `${data.split} split`;
}

/** Identifies the exact model files evaluated, so a report can tell a stale evaluation. */
export async function modelFingerprint(modelDir: string): Promise<string> {
  const parts = await Promise.all([MODEL_JSON, WEIGHTS_BIN].map((f) => readFile(join(modelDir, f)).catch(() => Buffer.alloc(0))));
  return sha256(Buffer.concat(parts));
}

export function summarize(r: EvaluationResult): ModelSummary {
  return {
    name: r.model.name,
    accuracy: r.accuracy,
    macroF1: r.report.macroAvg.f1,
    weightedF1: r.report.weightedAvg.f1,
    loss: r.loss,
    params: r.model.params,
    imagesPerSec: r.imagesPerSec,
    synthetic: r.synthetic,
  };
}

/** The title suffix every chart of a synthetic run carries. */
export function syntheticTag(r: { synthetic: boolean }): string {
  return r.synthetic ? ' (SYNTHETIC data)' : '';
}

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
    loss: r.loss,
    macroF1: r.report.macroAvg.f1,
    weightedF1: r.report.weightedAvg.f1,
    seconds: r.seconds,
    imagesPerSec: r.imagesPerSec,
    confusionMatrix: { rows: 'true digit', columns: 'predicted digit', counts: r.confusion },
    classificationReport: classificationReportDict(r.report),
    classificationReportText: formatClassificationReport(r.report),
    warnings: r.report.warnings,
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

/** Grid of misclassified images: true -> predicted (confidence). */
export async function renderErrorsGrid(r: EvaluationResult): Promise<Buffer | undefined> {
  if (r.errors.count === 0) return undefined;
  const e = r.errors;
  return renderImageGrid({
    images: e.images,
    count: e.count,
    captions: e.predicted.map((p, i) => `${e.labels[i]} → ${p} (${Math.round(100 * e.confidence[i]!)}%)`),
    captionColors: e.predicted.map(() => '#cf222e'),
    scale: 4,
    title: `${r.model.name}: misclassified, true → predicted${syntheticTag(r)}`,
  });
}

/** Writes every output file into outDir; returns the paths written. */
export async function writeEvaluationOutputs(r: EvaluationResult, outDir: string): Promise<string[]> {
  const written: string[] = [];
  const put = async (name: string, data: string | Uint8Array) => {
    const path = join(outDir, name);
    await writeFileAtomic(path, data);
    written.push(path);
  };
  const tag = syntheticTag(r);
  await writeJsonAtomic(join(outDir, REPORT_JSON), await evaluationJson(r));
  written.push(join(outDir, REPORT_JSON));
  const csvHead = r.synthetic ? `# ${SYNTHETIC_NOTE}\n` : '';
  await put(CONFUSION_CSV, csvHead + confusionMatrixCsv(r.confusion));
  await put(
    CONFUSION_PNG,
    await renderConfusionHeatmap(r.confusion, { title: `${r.model.name}: confusion matrix, ${dataLabel(r.data)} (${r.data.count} images)${tag}` }),
  );
  await put(F1_PNG, await renderClassScoreBars(r.report.perClass.map((c) => c.f1), { title: `${r.model.name}: F1 per digit, ${dataLabel(r.data)}${tag}` }));
  // A grid with nothing to show is removed rather than left stale from an earlier run.
  for (const [name, png] of [
    [SAMPLES_PNG, await renderSamplesGrid(r)],
    [ERRORS_PNG, await renderErrorsGrid(r)],
  ] as const) {
    if (png) await put(name, png);
    else await rm(join(outDir, name), { force: true });
  }
  return written;
}

/** The human-readable summary `svhn evaluate` prints for one model. */
export function formatEvaluationText(r: EvaluationResult, outDir?: string): string {
  const lines = [
    ...(r.synthetic ? [`*** ${SYNTHETIC_NOTE} ***`] : []),
    `model ${r.model.name} (${r.model.architecture}, ${r.model.params.toLocaleString('en-US')} parameters) from ${r.model.dir}`,
    r.data.source
      ? `labelled ${r.data.source.kind} ${r.data.source.path}: ${r.data.count} images${r.data.source.skipped.length ? `, ${r.data.source.skipped.length} file${r.data.source.skipped.length === 1 ? '' : 's'} skipped (listed in ${REPORT_JSON})` : ''}`
      : `${r.data.split} split: ${r.data.count} images from ${r.data.dataDir}`,
    `accuracy ${formatFixed(r.accuracy, 4)}  loss ${formatFixed(r.loss, 4)}  macro F1 ${formatFixed(r.report.macroAvg.f1, 4)}  weighted F1 ${formatFixed(r.report.weightedAvg.f1, 4)}`,
    `${formatFixed(r.imagesPerSec, 0)} images/s on ${r.backend} (${r.seconds.toFixed(1)} s)`,
    '',
    'confusion matrix (rows: true digit, columns: predicted digit)',
    formatConfusionMatrix(r.confusion),
    'classification report',
    formatClassificationReport(r.report),
  ];
  if (r.report.warnings.length) lines.push(...r.report.warnings.map((w) => `warning: ${w}`), '');
  if (outDir) lines.push(`wrote ${outDir}/{${REPORT_JSON},${CONFUSION_CSV},${CONFUSION_PNG},${F1_PNG},...}`, '');
  return lines.join('\n');
}
