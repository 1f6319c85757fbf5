/**
 * `svhn evaluate` as a stage: evaluate each model directory on the same split (or the same
 * labelled folder / CSV, decoded once, no cache), write each one's outputs, and compare them
 * when there are several. Typed options in, typed result out; printing is the CLI's job.
 */
import { basename, extname, join, resolve } from 'node:path';
import { DEFAULTS } from '../config.js';
import { compareModels, mcnemarPairs, type Comparison } from '../metrics/comparison.js';
import { createProgress } from '../progress.js';
import { writeFileAtomic } from '../util/atomic.js';
import { assertOutside, type OwnPlace } from '../util/paths.js';
import { CACHE_SUBDIR } from '../data/cache/cacheFormat.js';
import { getLogger } from '../log.js';
import type { LabelledImages, LabelledSource } from '../data/images/labelled.js';
import { evaluateModel, type EvalData, type EvalSplit, type EvaluationResult } from './evaluate.js';
import { assertEvaluationDirReplaceable, defaultEvaluationDir, renderErrorsGrid, summarize, writeEvaluationOutputs } from './outputs.js';

/** A cache split, or your own labelled images (--images DIR / --labels FILE.csv) read directly. */
export type RunEvalData = { dataDir: string; split: EvalSplit } | { images: LabelledSource; strict?: boolean };

export type RunEvaluateOptions = RunEvalData & {
  modelDirs: string[];
  batchSize: number;
  /** Output directory; with several models each gets a subdirectory named after it. */
  outDir?: string;
  /** PNG of misclassified images; with several models, FILE-<name>.png each. */
  errorsPng?: string;
  gridCount?: number; // images per samples/errors grid
  /** Apply each model's temperature (default true); false: the raw softmax (--no-calibration). */
  calibration?: boolean;
  progress?: 'bar' | 'plain' | 'silent';
};

export interface EvaluatedModel {
  result: EvaluationResult;
  outDir: string;
  written: string[];
}

export interface RunEvaluateResult {
  models: EvaluatedModel[];
  comparison?: Comparison; // with two or more models
}

/** Output directory per model: unique even when two model directories share a name. */
function outDirs(opts: RunEvaluateOptions): string[] {
  const seen = new Map<string, number>();
  return opts.modelDirs.map((dir) => {
    if (!opts.outDir) return defaultEvaluationDir(dir, 'images' in opts ? 'labelled' : opts.split);
    if (opts.modelDirs.length === 1) return opts.outDir;
    let name = basename(dir.replace(/[\\/]+$/, '')) || 'model';
    const n = (seen.get(name) ?? 0) + 1;
    seen.set(name, n);
    if (n > 1) name = `${name}-${n}`;
    return join(opts.outDir, name);
  });
}

function errorsPath(file: string, name: string, several: boolean): string {
  if (!several) return file;
  const ext = extname(file) || '.png';
  return file.slice(0, file.length - extname(file).length) + `-${name}${ext}`;
}

/** Skipped files logged one by one up to this many; report.json lists them all. */
const WARN_SKIPPED = 10;

/** Lists, hashes and decodes a labelled set once for every model; a set may lack digits (warned). */
async function readLabelled(source: LabelledSource, strict: boolean, progress: RunEvaluateOptions['progress']): Promise<LabelledImages & { sha256: string }> {
  const { decodeLabelledImages, hashLabelledImages, listLabelledImages, missingDigits } = await import('../data/images/labelled.js');
  const log = getLogger();
  const listing = await listLabelledImages(source);
  const { sha256 } = await hashLabelledImages(listing, progress);
  let logged = 0;
  const set = await decodeLabelledImages(listing, {
    strict,
    progress,
    onSkipped: (s) => {
      if (++logged <= WARN_SKIPPED) log.warn({ file: s.file, reason: s.reason }, `skipped ${s.file}: ${s.reason}`);
      else if (logged === WARN_SKIPPED + 1) log.warn('more files skipped: report.json lists them all');
    },
  });
  if (set.skipped.length) log.warn(`${source.path}: skipped ${set.skipped.length} of ${listing.files.length} files (pass --strict to refuse them)`);
  const missing = missingDigits(set.classCounts);
  if (missing.length) log.warn(`${source.flag} ${source.path}: no images for digit(s) ${missing.join(', ')}; their rows of the report are empty`);
  return { ...set, sha256 };
}

/**
 * --errors must not land on what the run reads or svhn keeps: a model directory, the cache,
 * the labelled images (inside a --images folder; a --labels CSV itself or a file it lists).
 * Its siblings FILE-<name>.png (several models) share its folder, so the folders cover them.
 */
async function refuseErrorsOverInputs(opts: RunEvaluateOptions, labelled?: LabelledImages): Promise<void> {
  if (!opts.errorsPng) return;
  const places: OwnPlace[] = opts.modelDirs.map((dir) => ({ path: dir, what: `the model directory ${dir}` }));
  if ('images' in opts) {
    const src = opts.images;
    places.push({ path: src.path, what: src.kind === 'folder' ? `the images of ${src.flag} ${src.path}` : `${src.flag} ${src.path}` });
    for (const file of [...(labelled?.files ?? []), ...(labelled?.skipped.map((s) => s.file) ?? [])]) places.push({ path: file, what: `the images of ${src.flag} ${src.path} (it lists ${file})` });
  } else {
    const cache = join(opts.dataDir, CACHE_SUBDIR);
    places.push({ path: cache, what: `the preprocess cache ${cache}` });
  }
  await assertOutside('--errors', opts.errorsPng, places);
}

export async function runEvaluate(opts: RunEvaluateOptions): Promise<RunEvaluateResult> {
  const dirs = outDirs(opts);
  for (const dir of dirs) await assertEvaluationDirReplaceable(dir, { fromFlag: opts.outDir !== undefined }); // before any work: each is replaced whole
  await refuseErrorsOverInputs(opts); // folders before any work; a CSV's files once it is listed
  const gridCount = opts.gridCount ?? DEFAULTS.predict.gridCount;
  const data: EvalData = 'images' in opts ? { labelled: await readLabelled(opts.images, opts.strict ?? false, opts.progress) } : { dataDir: opts.dataDir, split: opts.split };
  if ('labelled' in data) await refuseErrorsOverInputs(opts, data.labelled);
  const label = 'labelled' in data ? data.labelled.source.path : data.split;
  const models: EvaluatedModel[] = [];
  for (const [i, modelDir] of opts.modelDirs.entries()) {
    let progress: ReturnType<typeof createProgress> | undefined;
    const result = await evaluateModel({
      ...data,
      modelDir,
      batchSize: opts.batchSize,
      keepSamples: gridCount,
      keepErrors: gridCount,
      calibration: opts.calibration,
      onProgress: (done, total) => {
        progress ??= createProgress({ label: `evaluate ${basename(modelDir)} (${label})`, total, unit: 'img', mode: opts.progress });
        progress.update(done);
      },
    });
    progress?.stop({ acc: result.accuracy });
    const written = await writeEvaluationOutputs(result, dirs[i]!);
    if (opts.errorsPng) {
      const path = errorsPath(opts.errorsPng, result.model.name, opts.modelDirs.length > 1);
      const png = await renderErrorsGrid(result);
      if (png) {
        await writeFileAtomic(path, png);
        written.push(path);
      }
    }
    if (!('labelled' in data) && data.split === 'test' && resolve(dirs[i]!) === resolve(defaultEvaluationDir(modelDir, 'test'))) {
      // The model's own test evaluation: its card gains the test figures (models/card.ts).
      written.push(await refreshModelCard(modelDir, result));
    }
    models.push({ result, outDir: dirs[i]!, written });
  }
  if (models.length < 2) return { models };
  // Every model saw the same images in the same order (one split or one decoded set), so the
  // per-image predictions pair up for McNemar's test.
  const labels = models[0]!.result.predictions.labels;
  const pairs = mcnemarPairs(models.map((m) => ({ name: m.result.model.name, predicted: m.result.predictions.predicted })), labels);
  return { models, comparison: compareModels(models.map((m) => summarize(m.result)), pairs) };
}

/** Writes <modelDir>/MODEL_CARD.md again with the test split's figures. */
async function refreshModelCard(modelDir: string, result: Awaited<ReturnType<typeof evaluateModel>>): Promise<string> {
  const { MODEL_CARD_MD, renderModelCard } = await import('../models/card.js');
  const path = join(modelDir, MODEL_CARD_MD);
  const test = { accuracy: result.accuracy, loss: result.loss, count: result.data.count, synthetic: result.data.synthetic };
  await writeFileAtomic(path, renderModelCard(result.model.metadata, test));
  return path;
}
