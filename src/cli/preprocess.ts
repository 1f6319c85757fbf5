/**
 * `svhn preprocess`: flags -> preprocess() -> the EDA summary (stdout), or with --json one
 * machine-readable object (stdout). Logs and progress go to stderr.
 */
import type { Command } from 'commander';
import { DEFAULTS } from '../config.js';
import { fraction, nonNegativeInt, positiveInt } from './options.js';

interface PreprocessFlags {
  dataDir: string;
  valFraction: number;
  seed: number;
  limit?: number;
  valLimit?: number;
  extra: boolean;
  chunk: number;
  json: boolean;
}

export function registerPreprocess(program: Command): void {
  const d = DEFAULTS.preprocess;
  program
    .command('preprocess')
    .description('turn the .mat files into the training cache (<data-dir>/cache): NHWC uint8, stratified train/val split, EDA summary, samples.png')
    .option('--data-dir <dir>', 'where the .mat files are; the cache goes to <dir>/cache', DEFAULTS.dataDir)
    .option('--val-fraction <f>', 'share of train_32x32.mat held out for validation, stratified', fraction, d.valFraction)
    .option('--seed <n>', 'seed of the split and of --limit sampling', nonNegativeInt, d.seed)
    .option('--limit <n>', 'keep at most N training images, stratified (default: all)', positiveInt)
    .option('--val-limit <n>', 'keep at most N validation images, stratified (default: all)', positiveInt)
    .option('--extra', 'also cache extra_32x32.mat (531,131 images, streamed in chunks)', false)
    .option('--chunk <n>', 'images per chunk when streaming and writing', positiveInt, d.chunk)
    .option('--json', 'print a machine-readable summary on stdout instead of the table', false)
    .action(async (flags: PreprocessFlags) => {
      const { preprocess, formatPreprocessSummary } = await import('../data/preprocess.js');
      const result = await preprocess({
        dataDir: flags.dataDir,
        valFraction: flags.valFraction,
        seed: flags.seed,
        limit: flags.limit ?? null,
        valLimit: flags.valLimit ?? null,
        extra: flags.extra,
        chunk: flags.chunk,
      });
      if (flags.json) {
        const m = result.manifest;
        const summary = {
          cacheDir: result.cacheDir,
          reused: result.reused,
          synthetic: m.synthetic,
          key: m.key,
          manifestSha256: result.manifestSha256,
          options: m.options,
          splits: Object.fromEntries(Object.entries(m.splits).map(([k, s]) => [k, { count: s!.count, shape: s!.shape, classCounts: s!.classCounts }])),
          samplesPng: result.samplesPng,
          seconds: result.seconds,
        };
        process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
      } else {
        process.stdout.write(formatPreprocessSummary(result));
      }
    });
}
