/**
 * `svhn predict` as one stage call: check the inputs and the model, stream every input
 * through batched prediction into the output (CSV/JSONL to a file or a stream), draw the
 * optional grid, and return a summary. Failed inputs are rows with an error, counted in
 * the summary; the CLI turns a non-zero `failed` into exit code 3.
 */
import { basename, join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { IMAGE_BYTES, type BackendChoice } from '../config.js';
import { SvhnError } from '../errors.js';
import { getLogger } from '../log.js';
import { createProgress, type ProgressOptions } from '../progress.js';
import { writeFileAtomic } from '../util/atomic.js';
import { assertOutside, type OwnPlace } from '../util/paths.js';
import { CACHE_SUBDIR } from '../data/cache/cacheFormat.js';
import { countInputs, expandInputs, findInputFile, parseShard, resolveInputs, shardRange, sliceItems, type InputSource, type Shard } from './inputs.js';
import { openRowSink, type OutputFormat } from './output.js';
import { assertModelDir, loadModelDir } from '../models/io.js';
import { predictItems, type PredictionRow } from './predict.js';

export interface PredictRunOptions {
  inputs: string[]; // image files, folders, .mat files, cache:SPLIT
  modelDir: string;
  format: OutputFormat;
  out?: string; // file written atomically; rows go to `stream` when absent
  stream?: Writable;
  terminal?: boolean; // `stream` is a terminal: rows are shown (names escaped and cut), not stored
  topK: number;
  recursive: boolean;
  batchSize: number;
  dataDir: string; // for cache:SPLIT inputs
  backend: BackendChoice;
  threads?: number; // wasm threads (default 1)
  grid?: string; // PNG path
  gridCount: number;
  decodeConcurrency?: number;
  progress?: ProgressOptions['mode'];
  /** Rows whose top probability is below this abstain (0..1, default 0: never). */
  minConfidence?: number;
  /** Only this shard's block of the sorted inputs (see inputs.ts shardRange); all of them when absent. */
  shard?: Shard;
  /** Divide by the model's temperature (metadata.json calibration; default true); false: the raw softmax (--no-calibration). */
  calibration?: boolean;
}

export interface PredictSummary {
  total: number; // rows written (this shard's, with a shard)
  predicted: number; // rows the model answered for, abstained ones included
  failed: number;
  /** Rows below --min-confidence: no digit given (counted in `predicted` too). */
  abstained: number;
  /** Inputs with a known true label (MAT, cache) and a digit given (not abstained), and how many of them were right. */
  labelled: number;
  correct: number;
  backend: string;
  seconds: number;
  imagesPerSec: number; // predicted images / wall time, decoding included
  grid?: string;
  /** With --shard: which shard, and its items [start, end) of all `inputs`. */
  shard?: Shard & { start: number; end: number; inputs: number };
}

/** "3 97%", or "unsure (3 17%)" for a row that abstained, plus " (true 5)" when the label is known. */
export function gridCaption(row: PredictionRow): string {
  const guess = `${row.best ?? row.predicted} ${Math.round((row.confidence ?? 0) * 100)}%`;
  const base = row.abstained ? `unsure (${guess})` : guess;
  return row.label === null ? base : `${base} (true ${row.label})`;
}

/** A tile's second line: the input's base name (`a.png`, `test_32x32.mat#3`); the grid cuts it to fit. */
export function gridFileName(input: string): string {
  return basename(input);
}

/** The grid's title: the model, and the SYNTHETIC mark when it was trained on the offline sample. */
export function gridTitle(modelName: string, trainedOnSynthetic: boolean): string {
  return `SVHN model predictions (${modelName})${trainedOnSynthetic ? ', model trained on SYNTHETIC data' : ''}`;
}

/** Failures logged one by one; after that only the output's error column lists them (a folder of 100,000 bad files should not flood stderr). */
const WARN_FAILURES = 10;
const RIGHT = '#1a7f37';
const WRONG = '#cf222e';
const UNSURE = '#6e7781';

/**
 * --out and --grid must be new files, not an input (a finished --out would be renamed over it)
 * nor each other, and outside the model directory and the preprocess cache (svhn's own files:
 * `--out M/weights.bin` would replace the weights). Paths are compared with symlinks resolved.
 */
async function refuseOverwritingInputs(sources: InputSource[], opts: PredictRunOptions): Promise<void> {
  const targets = [['--out', opts.out], ['--grid', opts.grid]] as const;
  const cache = join(opts.dataDir, CACHE_SUBDIR);
  const own: OwnPlace[] = [
    { path: opts.modelDir, what: `the model directory ${opts.modelDir}, which holds svhn's own files` },
    { path: cache, what: `the preprocess cache ${cache}, which holds svhn's own files` },
  ];
  for (const [flag, path] of targets) {
    if (!path) continue;
    const input = await findInputFile(sources, path, { recursive: opts.recursive, dataDir: opts.dataDir });
    if (input !== undefined) {
      throw new SvhnError('BAD_FLAG', `${flag} ${path}: expected a file that is not an input, got the input ${input}`, { suggestion: `write to another file name` });
    }
    await assertOutside(flag, path, own);
  }
  if (opts.out && opts.grid && resolve(opts.out) === resolve(opts.grid)) {
    throw new SvhnError('BAD_FLAG', `--grid ${opts.grid}: expected a file other than --out ${opts.out}`, { suggestion: 'give the grid its own .png name' });
  }
}

export async function runPredict(opts: PredictRunOptions): Promise<PredictSummary> {
  const log = getLogger();
  if (!Number.isSafeInteger(opts.gridCount) || opts.gridCount < 1) throw new SvhnError('BAD_FLAG', `--grid-count: expected a positive integer, got ${opts.gridCount}`);
  if (opts.shard) {
    const checked = parseShard(`${opts.shard.index}/${opts.shard.count}`);
    if (typeof checked === 'string') throw new SvhnError('BAD_FLAG', `--shard: ${checked}`);
  }
  const sources = await resolveInputs(opts.inputs);
  await refuseOverwritingInputs(sources, opts);
  assertModelDir(opts.modelDir); // before the backend starts: a typo answers at once
  const { initBackend } = await import('../backend/index.js');
  const backend = await initBackend(opts.backend, { threads: opts.threads }); // first, so the weights live on it
  const { model, metadata, temperature, fittedTemperature } = await loadModelDir(opts.modelDir, { calibration: opts.calibration });
  try {
    const inputs = await countInputs(sources, { recursive: opts.recursive, dataDir: opts.dataDir });
    if (inputs === 0) {
      throw new SvhnError('BAD_INPUT', `no images found in ${opts.inputs.join(' ')}`, {
        suggestion: `folders are read for ${'.png .jpg .jpeg .webp .gif .bmp .tif .tiff'} files${opts.recursive ? '' : '; add --recursive for subfolders'}`,
      });
    }
    const { start, end } = opts.shard ? shardRange(inputs, opts.shard) : { start: 0, end: inputs };
    const total = end - start;
    const shard = opts.shard ? { ...opts.shard, start, end, inputs } : undefined;
    const shardName = shard ? `shard ${shard.index}/${shard.count}` : '';
    if (shard && total === 0) {
      log.info({ shard }, `${shardName} is empty: only ${inputs} inputs for ${shard.count} shards; writing an empty output`);
    } else if (shard) {
      log.info({ model: opts.modelDir, architecture: metadata.architecture, inputs: total, shard, backend: backend.name }, `predicting ${total} inputs (${shardName}: inputs ${start}..${end - 1} of ${inputs}, counted from 0) with ${opts.modelDir}`);
    } else {
      log.info({ model: opts.modelDir, architecture: metadata.architecture, inputs: total, backend: backend.name }, `predicting ${total} inputs with ${opts.modelDir}`);
    }
    if (metadata.synthetic) log.warn(`${opts.modelDir} was trained on the synthetic sample: its predictions on real digits mean little`);
    if (temperature !== 1) log.info({ temperature }, `probabilities calibrated with the model's temperature ${temperature.toFixed(3)} (--no-calibration: the raw softmax)`);
    else if (fittedTemperature !== 1) log.info({ fittedTemperature }, `--no-calibration: raw softmax probabilities (the model's temperature ${fittedTemperature.toFixed(3)} not applied)`);

    const sink = await openRowSink({ format: opts.format, topK: opts.topK, out: opts.out, stream: opts.stream, terminal: opts.terminal });
    const progress = createProgress({ label: 'predict', total, unit: 'img', mode: opts.progress });
    const gridImages = opts.grid ? new Uint8Array(opts.gridCount * IMAGE_BYTES) : undefined;
    const gridRows: PredictionRow[] = [];
    const summary: PredictSummary = { total: 0, predicted: 0, failed: 0, abstained: 0, labelled: 0, correct: 0, backend: backend.name, seconds: 0, imagesPerSec: 0, ...(shard ? { shard } : {}) };
    const startedAt = performance.now();
    try {
      const all = expandInputs(sources, {
        recursive: opts.recursive,
        dataDir: opts.dataDir,
        onSkipped: (dir, n) => log.debug({ dir, skipped: n }, `skipped ${n} entries of ${dir} (not image files${opts.recursive ? '' : ', or subfolders'})`),
        onRevisit: (dir) => log.warn({ dir }, `skipped folder ${dir}: already walked (a symlink loop, or a second link to the same folder)`),
      });
      const items = shard ? sliceItems(all, start, end) : all;
      for await (const { row, image } of predictItems(items, { model, batchSize: opts.batchSize, topK: opts.topK, minConfidence: opts.minConfidence, decodeConcurrency: opts.decodeConcurrency })) {
        await sink.write(row);
        summary.total++;
        if (row.error !== null) {
          summary.failed++;
          if (summary.failed <= WARN_FAILURES) log.warn({ input: row.input, error: row.error }, `skipped ${row.input}: ${row.error}`);
          if (summary.failed === WARN_FAILURES + 1) log.warn(`more inputs failed: see the error column of the output (the count is in the summary)`);
        } else {
          summary.predicted++;
          if (row.abstained) summary.abstained++;
          else if (row.label !== null) {
            summary.labelled++;
            if (row.label === row.predicted) summary.correct++;
          }
          if (gridImages && image && gridRows.length < opts.gridCount) {
            gridImages.set(image, gridRows.length * IMAGE_BYTES); // a copy: the source chunk may be freed
            gridRows.push(row);
          }
        }
        progress.update(summary.total, { failed: summary.failed });
      }
      await sink.close();
    } catch (e) {
      await sink.abort();
      throw e;
    } finally {
      progress.stop({ failed: summary.failed });
    }
    summary.seconds = (performance.now() - startedAt) / 1000;
    summary.imagesPerSec = summary.seconds > 0 ? summary.predicted / summary.seconds : 0;

    if (opts.grid && gridImages) {
      if (gridRows.length === 0) {
        log.warn(`--grid ${opts.grid}: no input was predicted, so no grid was drawn`);
      } else {
        const { renderImageGrid } = await import('../report/grid.js');
        const png = await renderImageGrid({
          images: gridImages,
          count: gridRows.length,
          captions: gridRows.map(gridCaption),
          captionColors: gridRows.map((r) => (r.abstained ? UNSURE : r.label === null ? '#111' : r.label === r.predicted ? RIGHT : WRONG)),
          subcaptions: gridRows.map((r) => gridFileName(r.input)),
          scale: 4,
          title: gridTitle(metadata.name ?? opts.modelDir, Boolean(metadata.synthetic)),
        });
        await writeFileAtomic(opts.grid, png);
        summary.grid = opts.grid;
      }
    }
    return summary;
  } finally {
    model.dispose();
  }
}
