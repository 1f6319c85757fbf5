/**
 * `svhn predict INPUT... --model DIR`: one row per input (CSV or JSON lines) to --out or
 * stdout. Logs and progress go to stderr, so stdout pipes clean data.
 * Exit codes: 0 all inputs predicted; 3 some inputs failed (error rows written, the run
 * went on); 1/2 a missing path, model or bad flag (nothing predicted).
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { BACKEND_CHOICES, DEFAULTS, NUM_CLASSES } from '../config.js';
import { parseShard, type Shard } from '../predict/inputs.js';
import { parseMinConfidence } from '../predict/predict.js';
import { positiveInt, THREADS_HELP, threadCount } from './options.js';

/** Exit code when some inputs could not be read or decoded. */
export const EXIT_SOME_FAILED = 3;

interface PredictFlags {
  model: string;
  format: 'csv' | 'jsonl';
  out?: string;
  topK: number;
  recursive: boolean;
  batchSize: number;
  grid?: string;
  gridCount: number;
  dataDir: string;
  backend: (typeof BACKEND_CHOICES)[number];
  threads?: number;
  shard?: Shard;
  minConfidence: number;
  calibration: boolean; // false with --no-calibration
}

function minConfidence(value: string): number {
  const p = parseMinConfidence(value);
  if (typeof p === 'string') throw new InvalidArgumentError(p);
  return p;
}

function shard(value: string): Shard {
  const s = parseShard(value);
  if (typeof s === 'string') throw new InvalidArgumentError(s);
  return s;
}

function topK(value: string): number {
  const n = positiveInt(value);
  if (n > NUM_CLASSES) throw new InvalidArgumentError(`expected 1..${NUM_CLASSES} (there are ${NUM_CLASSES} digits), got '${value}'`);
  return n;
}

export function registerPredict(program: Command): void {
  program
    .command('predict')
    .description('predict digits for image files, folders, a .mat file or a cache split (cache:test)')
    .argument('<input...>', 'image files (png jpg webp gif bmp tiff), folders, SVHN .mat files, or cache:SPLIT')
    .requiredOption('--model <dir>', 'model directory written by `svhn train` (required; e.g. models/optimized)')
    .addOption(new Option('--format <format>', 'output format: csv or jsonl').choices(['csv', 'jsonl']).default(DEFAULTS.predict.format))
    .option('--out <file>', 'write rows to FILE (atomically) instead of stdout')
    .option('--top-k <k>', `digits listed per input with their probabilities (1..${NUM_CLASSES})`, topK, DEFAULTS.predict.topK)
    .option('--min-confidence <p>', 'abstain below this top probability (0..1): the row\'s predicted is empty, abstained true, best still the likeliest digit', minConfidence, 0)
    .option('--no-calibration', "raw softmax probabilities, not divided by the temperature the model was calibrated with (metadata.json calibration); --min-confidence then compares raw ones")
    .option('--recursive', 'walk subfolders of folder inputs', false)
    .option('--batch-size <n>', 'images per prediction batch', positiveInt, DEFAULTS.predict.batchSize)
    .option('--grid <file.png>', 'also draw the first inputs with prediction, confidence (and true label when known) and file name')
    .option('--grid-count <n>', 'inputs in the --grid image', positiveInt, DEFAULTS.predict.gridCount)
    .option('--data-dir <dir>', 'where cache:SPLIT inputs are read from (<dir>/cache)', DEFAULTS.dataDir)
    .addOption(new Option('--backend <name>', 'tfjs backend').choices(BACKEND_CHOICES).default(DEFAULTS.train.backend))
    .option('--threads <n>', THREADS_HELP, threadCount)
    .option('--shard <I/N>', 'only the I-th of N contiguous blocks of the sorted inputs, I from 0 to N-1 (0/4 .. 3/4), for job arrays; the N outputs concatenated in order are one run\'s rows', shard)
    .addHelpText(
      'after',
      `
Images are resized to fit 32x32 keeping their aspect ratio and padded to a square with their
edge pixels (SVHN's crops are square windows around each digit); alpha is flattened on white.
Exit code ${EXIT_SOME_FAILED}: some inputs could not be read (their rows carry an error).
--min-confidence 0.6: a row whose top probability is under 60% abstains (predicted empty,
abstained true, best and confidence still given); abstaining is not a failure (exit 0).
--shard I/N counts I from 0, as Kubernetes' JOB_COMPLETION_INDEX does (--shard $JOB_COMPLETION_INDEX/4);
a shard with no inputs (more shards than inputs) writes an empty output and exits 0.`,
    )
    .action(async (inputs: string[], flags: PredictFlags) => {
      const { runPredict } = await import('../predict/run.js');
      const { getLogger } = await import('../log.js');
      const summary = await runPredict({
        inputs,
        modelDir: flags.model,
        format: flags.format,
        out: flags.out,
        stream: process.stdout,
        terminal: process.stdout.isTTY === true,
        topK: flags.topK,
        recursive: flags.recursive,
        batchSize: flags.batchSize,
        dataDir: flags.dataDir,
        backend: flags.backend,
        threads: flags.threads,
        grid: flags.grid,
        gridCount: flags.gridCount,
        shard: flags.shard,
        minConfidence: flags.minConfidence,
        calibration: flags.calibration,
      });
      const answered = summary.abstained > 0 ? ' answered' : '';
      const { formatInterval, wilsonInterval } = await import('../metrics/intervals.js');
      const ci = summary.labelled > 0 ? ` (95% CI ${formatInterval(wilsonInterval(summary.correct, summary.labelled))}, Wilson)` : '';
      const acc = summary.labelled > 0 ? `, accuracy ${(summary.correct / summary.labelled).toFixed(4)}${ci} on ${summary.labelled} labelled${answered}` : '';
      getLogger().info(
        { ...summary },
        `predicted ${summary.predicted} of ${summary.total} inputs${summary.shard ? ` (shard ${summary.shard.index}/${summary.shard.count} of ${summary.shard.inputs})` : ''} in ${summary.seconds.toFixed(1)} s (${summary.imagesPerSec.toFixed(0)} img/s, ${summary.backend})${acc}` +
          (flags.minConfidence > 0 ? `; ${summary.abstained} abstained (below --min-confidence ${flags.minConfidence})` : '') +
          (summary.failed > 0 ? `; ${summary.failed} failed` : '') +
          (flags.out ? `; wrote ${flags.out}` : '') +
          (summary.grid ? `; grid ${summary.grid}` : ''),
      );
      if (summary.failed > 0) process.exitCode = EXIT_SOME_FAILED;
    });
}
