/**
 * `svhn report`: one self-contained HTML page (images inlined, no network, no script) with
 * the training curves, comparison, confusion matrices, classification reports, sample
 * predictions and errors of one or more model directories; or, with --tune DIR, the charts of
 * a study `svhn tune` ran (report/tune.ts). Flags -> one stage call.
 */
import { Option, type Command } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BACKEND_CHOICES, DEFAULTS, type BackendChoice } from '../config.js';
import { SvhnError } from '../errors.js';
import { collect, oneOf, positiveInt, THREADS_HELP, threadCount } from './options.js';
import { printText } from './output.js';

const DEFAULT_OUT = 'report.html';

interface ReportFlags {
  model?: string[];
  tune?: string;
  dataDir: string;
  split: 'test' | 'val';
  out?: string;
  fresh: boolean;
  batchSize: number;
  backend: BackendChoice;
  threads?: number;
  json: boolean;
}

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('write one self-contained HTML report (curves, comparison, confusion matrices, reports, predictions, errors), or a tune study\'s charts')
    .option('--model <dir>', 'model directory (repeat to compare several)', collect)
    .option('--tune <dir>', 'instead of models: a study folder `svhn tune` wrote (history, parallel coordinates, importance, learning curves, trials)')
    .option('--data-dir <dir>', 'where the preprocess cache is, for evaluations that have to run', DEFAULTS.dataDir)
    .addOption(new Option('--split <split>', 'cache split the evaluations use: test or val').argParser(oneOf(['test', 'val'] as const)).default(DEFAULTS.evaluate.split))
    .option('--out <file.html>', `the HTML file to write (default: ${DEFAULT_OUT}; with --tune: <dir>/${DEFAULT_OUT})`)
    .option('--fresh', 'evaluate again even when <model>/evaluation is up to date', false)
    .option('--batch-size <n>', 'images per prediction batch when evaluating', positiveInt, DEFAULTS.evaluate.batchSize)
    .option('--backend <name>', `tfjs backend when evaluating: ${BACKEND_CHOICES.join(', ')}`, oneOf(BACKEND_CHOICES), DEFAULTS.train.backend)
    .option('--threads <n>', THREADS_HELP, threadCount)
    .option('--json', 'print a machine-readable summary to stdout', false)
    .action(async (opts: ReportFlags) => {
      if (opts.tune !== undefined) return reportTune(opts.tune, opts);
      if (!opts.model?.length) {
        throw new SvhnError('BAD_FLAG', '--model: expected at least one model directory, got none', {
          suggestion: 'pass --model models/baseline --model models/optimized',
        });
      }
      const outFile = checkOut(opts.out ?? DEFAULT_OUT);
      const { buildReport } = await import('../report/html.js');
      const result = await buildReport({
        modelDirs: opts.model,
        dataDir: opts.dataDir,
        split: opts.split,
        batchSize: opts.batchSize,
        outFile,
        fresh: opts.fresh,
        beforeEvaluate: async () => {
          const { initBackend } = await import('../backend/index.js');
          await initBackend(opts.backend, { threads: opts.threads });
        },
      });
      if (opts.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
      else printText(`wrote ${result.outFile} (${(result.bytes / 1024).toFixed(0)} kB, ${opts.model.length} model${opts.model.length > 1 ? 's' : ''})${result.synthetic ? ' SYNTHETIC data' : ''}\n`);
    });
}

function checkOut(out: string): string {
  if (!/\.html?$/i.test(out)) throw new SvhnError('BAD_FLAG', `--out: expected an .html file name, got '${out}'`);
  return out;
}

/** `--tune DIR`: the study's page, <DIR>/report.html unless --out says otherwise. */
async function reportTune(dir: string, opts: ReportFlags): Promise<void> {
  if (opts.model?.length) throw new SvhnError('BAD_FLAG', '--tune and --model: expected one of them (--tune draws a study, --model reports trained models), got both');
  const { buildTuneReport } = await import('../report/tune.js');
  const { TRIALS_JSON } = await import('../tune/layout.js');
  if (!existsSync(join(dir, TRIALS_JSON))) throw new SvhnError('BAD_FLAG', `--tune ${dir}: expected a study folder written by svhn tune (no ${TRIALS_JSON})`);
  const result = await buildTuneReport({ studyDir: dir, outFile: checkOut(opts.out ?? join(dir, DEFAULT_OUT)) });
  if (opts.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  else printText(`wrote ${result.outFile} (${(result.bytes / 1024).toFixed(0)} kB, study '${result.study}', ${result.trials} trial${result.trials === 1 ? '' : 's'})${result.synthetic ? ' SYNTHETIC data' : ''}\n`);
}
