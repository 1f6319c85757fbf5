/**
 * `svhn evaluate`: accuracy, loss, confusion matrix and sklearn's classification report of one
 * or more model directories on the test (or val) split, or on your own labelled folder or CSV
 * (--images / --labels, no cache), plus report.json, confusion.csv and charts per model;
 * several models get a side-by-side comparison. Flags -> one stage call.
 */
import { Option, type Command } from 'commander';
import { BACKEND_CHOICES, DEFAULTS, type BackendChoice } from '../config.js';
import { SvhnError } from '../errors.js';
import { collect, LABELLED_HELP, labelledSource, oneOf, positiveInt, THREADS_HELP, threadCount } from './options.js';
import { printText } from './output.js';

interface EvaluateFlags {
  model?: string[];
  dataDir: string;
  split: 'test' | 'val';
  json: boolean;
  out?: string;
  errors?: string;
  batchSize: number;
  backend: BackendChoice;
  threads?: number;
  images?: string;
  labels?: string;
  strict: boolean;
  calibration: boolean; // false with --no-calibration
}

export function registerEvaluate(program: Command): void {
  program
    .command('evaluate')
    .description('evaluate model directories on the test split: accuracy, loss, confusion matrix, classification report, charts')
    .option('--model <dir>', 'model directory (repeat to compare several)', collect)
    .option('--data-dir <dir>', 'where the preprocess cache is (<dir>/cache)', DEFAULTS.dataDir)
    .addOption(new Option('--split <split>', 'cache split to evaluate on: test or val').argParser(oneOf(['test', 'val'] as const)).default(DEFAULTS.evaluate.split))
    .option('--json', 'print a machine-readable summary to stdout instead of tables', false)
    .addOption(new Option('--images <dir>', 'evaluate on your own images in DIR/0 .. DIR/9 instead of a cache split').conflicts(['labels', 'split']))
    .addOption(new Option('--labels <file.csv>', 'evaluate on the images a CSV of path,label rows lists').conflicts('split'))
    .option('--strict', 'with --images/--labels: a file that does not decode is an error, not skipped', false)
    .option('--out <dir>', 'output directory, written whole (an earlier evaluation there is replaced; one holding other files is refused); several models: one subdirectory each (default: <model>/evaluation, <model>/evaluation-val, or <model>/evaluation-images with --images/--labels)')
    .option('--errors <file.png>', 'also draw the misclassified images, most confident first, true -> predicted (several models: FILE-<name>.png)')
    .option('--no-calibration', "use the raw softmax, not the temperature the model was calibrated with (metadata.json calibration); the raw ECE is reported either way")
    .option('--batch-size <n>', 'images per prediction batch (bounds memory)', positiveInt, DEFAULTS.evaluate.batchSize)
    .option('--backend <name>', `tfjs backend: ${BACKEND_CHOICES.join(', ')}`, oneOf(BACKEND_CHOICES), DEFAULTS.train.backend)
    .option('--threads <n>', THREADS_HELP, threadCount)
    .addHelpText('after', `${LABELLED_HELP}
A labelled set may lack some digits (warned); their rows of the report are empty.`)
    .action(async (opts: EvaluateFlags) => {
      if (!opts.model?.length) {
        throw new SvhnError('BAD_FLAG', '--model: expected at least one model directory, got none', {
          suggestion: 'pass --model models/optimized (repeat --model to compare)',
        });
      }
      if (opts.errors && !/\.png$/i.test(opts.errors)) {
        throw new SvhnError('BAD_FLAG', `--errors: expected a .png file name, got '${opts.errors}'`);
      }
      const { initBackend } = await import('../backend/index.js');
      const { runEvaluate } = await import('../evaluate/run.js');
      const { formatEvaluationText, summarize, SYNTHETIC_NOTE } = await import('../evaluate/outputs.js');
      const { formatComparison } = await import('../metrics/comparison.js');
      const { classificationReportDict } = await import('../metrics/classification.js');

      await initBackend(opts.backend, { threads: opts.threads });
      const images = labelledSource(opts);
      const run = await runEvaluate({
        ...(images ? { images, strict: opts.strict } : { dataDir: opts.dataDir, split: opts.split }),
        modelDirs: opts.model,
        batchSize: opts.batchSize,
        outDir: opts.out,
        errorsPng: opts.errors,
        calibration: opts.calibration,
      });
      const synthetic = run.models.some((m) => m.result.synthetic); // the data evaluated, not the models' training data

      if (opts.json) {
        const summary = {
          ...(synthetic ? { SYNTHETIC: SYNTHETIC_NOTE } : {}),
          synthetic,
          split: images ? 'labelled' : opts.split,
          ...(images ? { images: { kind: images.kind, path: images.path } } : {}),
          models: run.models.map(({ result: r, outDir, written }) => ({
            ...summarize(r),
            dir: r.model.dir,
            architecture: r.model.architecture,
            images: r.data.count,
            backend: r.backend,
            seconds: r.seconds,
            confusionMatrix: r.confusion,
            classificationReport: classificationReportDict(r.report),
            calibration: { ece: r.calibration.ece, eceRaw: r.calibration.eceRaw, temperature: r.calibration.temperature },
            warnings: r.report.warnings,
            ...(r.data.source ? { skipped: r.data.source.skipped } : {}),
            outDir,
            files: written,
          })),
          ...(run.comparison ? { best: run.comparison.rows[run.comparison.best]!.name, mcnemar: run.comparison.pairs ?? [] } : {}),
        };
        process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
        return;
      }
      const parts = run.models.map((m) => formatEvaluationText(m.result, m.outDir));
      if (opts.errors && run.models.every((m) => m.result.errors.count === 0)) parts.push(`no misclassified images: ${opts.errors} not written\n`);
      if (run.comparison) {
        // A model trained on the sample says so in its row; the heading is about the data.
        parts.push(`comparison on ${images ? images.path : `the ${opts.split} split`}${synthetic ? ' (SYNTHETIC data)' : ''}\n` + formatComparison(run.comparison));
      }
      printText(parts.join('\n'));
    });
}
