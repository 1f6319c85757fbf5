/**
 * `svhn evaluate` as a stage: evaluate each model directory on the same split, write each
 * one's outputs, and compare them when there are several. Typed options in, typed result out;
 * printing is the CLI's job.
 */
import { basename, extname, join } from 'node:path';
import { DEFAULTS } from '../config.js';
import { compareModels, type Comparison } from '../metrics/comparison.js';
import { createProgress } from '../progress.js';
import { writeFileAtomic } from '../util/atomic.js';
import { evaluateModel, type EvalSplit, type EvaluationResult } from './evaluate.js';
import { defaultEvaluationDir, renderErrorsGrid, summarize, writeEvaluationOutputs } from './outputs.js';

export interface RunEvaluateOptions {
  modelDirs: string[];
  dataDir: string;
  split: EvalSplit;
  batchSize: number;
  /** Output directory; with several models each gets a subdirectory named after it. */
  outDir?: string;
  /** PNG of misclassified images; with several models, FILE-<name>.png each. */
  errorsPng?: string;
  gridCount?: number; // images per samples/errors grid
  progress?: 'bar' | 'plain' | 'silent';
}

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
    if (!opts.outDir) return defaultEvaluationDir(dir, opts.split);
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

export async function runEvaluate(opts: RunEvaluateOptions): Promise<RunEvaluateResult> {
  const dirs = outDirs(opts);
  const gridCount = opts.gridCount ?? DEFAULTS.predict.gridCount;
  const models: EvaluatedModel[] = [];
  for (const [i, modelDir] of opts.modelDirs.entries()) {
    let progress: ReturnType<typeof createProgress> | undefined;
    const result = await evaluateModel({
      modelDir,
      dataDir: opts.dataDir,
      split: opts.split,
      batchSize: opts.batchSize,
      keepSamples: gridCount,
      keepErrors: gridCount,
      onProgress: (done, total) => {
        progress ??= createProgress({ label: `evaluate ${basename(modelDir)} (${opts.split})`, total, unit: 'img', mode: opts.progress });
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
    models.push({ result, outDir: dirs[i]!, written });
  }
  return { models, comparison: models.length > 1 ? compareModels(models.map((m) => summarize(m.result))) : undefined };
}
