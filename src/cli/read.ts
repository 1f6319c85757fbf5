/**
 * `svhn read PHOTO|DIR... --model DIR`: the house number in each photo, one row per photo (CSV
 * or JSON lines) to --out or stdout, optionally each photo drawn with its boxes (--draw DIR).
 * Logs and progress go to stderr, so stdout pipes clean data.
 * Exit codes (predict's): 0 all photos read; 3 some photos failed (error rows written, the run
 * went on); 1/2 a missing path, a model that is not a reader or a bad flag (nothing read).
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { BACKEND_CHOICES, DEFAULTS } from '../config.js';
import { parseMinConfidence } from '../predict/predict.js';
import { parseShard, type Shard } from '../predict/inputs.js';
import { THREADS_HELP, threadCount } from './options.js';
import { EXIT_SOME_FAILED } from './predict.js';

interface ReadFlags {
  model: string;
  format: 'csv' | 'jsonl';
  out?: string;
  recursive: boolean;
  minConfidence: number;
  draw?: string;
  shard?: Shard;
  backend: (typeof BACKEND_CHOICES)[number];
  threads?: number;
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

export function registerRead(program: Command): void {
  program
    .command('read')
    .description('read the house number in whole photos, with each digit\'s box (needs a reader model: `svhn train --model reader`)')
    .argument('<photo...>', 'photo files (png jpg webp gif bmp tiff) or folders of them, any size')
    .requiredOption('--model <dir>', 'reader model directory written by `svhn train --model reader` (required)')
    .addOption(new Option('--format <format>', 'output format: csv or jsonl').choices(['csv', 'jsonl']).default(DEFAULTS.read.format))
    .option('--out <file>', 'write rows to FILE (atomically) instead of stdout')
    .option('--min-confidence <p>', 'abstain below this confidence of the whole number (0..1): the row\'s number is empty, abstained true, best still the reading', minConfidence, DEFAULTS.read.minConfidence)
    .option('--recursive', 'walk subfolders of folder inputs', false)
    .option('--shard <I/N>', 'only the I-th of N contiguous blocks of the sorted photos, I from 0 to N-1, for job arrays; the N outputs concatenated in order are one run\'s rows (as predict\'s)', shard)
    .option('--draw <dir>', 'also write each photo with its boxes and number drawn on it, DIR/NAME.png (NAME: the photo\'s file name without its extension; a repeated name gets -2, -3, ...)')
    .addOption(new Option('--backend <name>', 'tfjs backend').choices(BACKEND_CHOICES).default(DEFAULTS.train.backend))
    .option('--threads <n>', THREADS_HELP, threadCount)
    .addHelpText(
      'after',
      `
Columns: input,number,confidence,boxes,digit_confidences,abstained,best,error
  boxes: each digit's 'left top right bottom' in the photo's own pixels, ';' between digits.
  A photo with no number has an empty number and no boxes (not an error, never abstains).
Photos are read at their own size; one whose longer side is over 1600 px is scaled down to it
first, and its boxes are given back in the original photo's pixels.
Exit code ${EXIT_SOME_FAILED}: some photos could not be read (their rows carry an error).
--min-confidence 0.6: a number read with under 60% confidence abstains (number empty, abstained
true, best, boxes and confidences still given); abstaining is not a failure (exit 0).`,
    )
    .action(async (inputs: string[], flags: ReadFlags) => {
      const { runRead } = await import('../read/run.js');
      const { getLogger } = await import('../log.js');
      const summary = await runRead({
        inputs,
        model: flags.model,
        format: flags.format,
        out: flags.out,
        stream: process.stdout,
        terminal: process.stdout.isTTY === true,
        recursive: flags.recursive,
        minConfidence: flags.minConfidence,
        shard: flags.shard,
        draw: flags.draw,
        backend: flags.backend,
        threads: flags.threads,
      });
      getLogger().info(
        { ...summary },
        `read ${summary.read} of ${summary.total} photos in ${summary.seconds.toFixed(1)} s (${summary.photosPerSec.toFixed(1)} photos/s, ${summary.backend ?? 'injected reader'}): ` +
          `${summary.withNumber} with a number, ${summary.noNumber} without` +
          (flags.minConfidence > 0 ? `; ${summary.abstained} abstained (below --min-confidence ${flags.minConfidence})` : '') +
          (summary.failed > 0 ? `; ${summary.failed} failed` : '') +
          (flags.out ? `; wrote ${flags.out}` : '') +
          (summary.draw ? `; drew ${summary.drawn} photos in ${summary.draw}` : ''),
      );
      if (summary.failed > 0) process.exitCode = EXIT_SOME_FAILED;
    });
}
