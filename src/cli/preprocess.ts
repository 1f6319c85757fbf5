/**
 * `svhn preprocess`: flags -> preprocess() -> the EDA summary (stdout), or with --json one
 * machine-readable object (stdout). Logs and progress go to stderr. The training source is
 * train_32x32.mat, or your own labelled images (--images DIR / --labels FILE.csv).
 */
import { Option, type Command } from 'commander';
import { SvhnError } from '../errors.js';
import { DEFAULTS } from '../config.js';
import { fraction, LABELLED_HELP, labelledSource, nonNegativeInt, positiveInt } from './options.js';
import { printText } from './output.js';

interface PreprocessFlags {
  dataDir: string;
  valFraction: number;
  seed: number;
  limit?: number;
  valLimit?: number;
  extra: boolean;
  chunk: number;
  json: boolean;
  images?: string;
  labels?: string;
  testImages?: string;
  testLabels?: string;
  strict: boolean;
  format: 'cropped' | 'full';
}

/** Flags of the digit preprocess that `--format full` does not take (the default each has when not given). */
const DIGITS_ONLY = ['limit', 'valLimit', 'extra', 'chunk', 'images', 'testImages', 'strict'] as const;

export function registerPreprocess(program: Command): void {
  const d = DEFAULTS.preprocess;
  program
    .command('preprocess')
    .description('turn the .mat files (or your own labelled images) into the training cache (<data-dir>/cache): NHWC uint8, stratified train/val split, EDA summary, samples.png; with --format full, whole photos with digit boxes into <data-dir>/cache-full for the reader')
    .option('--data-dir <dir>', 'where the .mat files are; the cache goes to <dir>/cache (with --images/--labels too)', DEFAULTS.dataDir)
    .option('--val-fraction <f>', 'share of the training source (train_32x32.mat, --images or --labels) held out for validation, stratified', fraction, d.valFraction)
    .option('--seed <n>', 'seed of the split and of --limit sampling', nonNegativeInt, d.seed)
    .option('--limit <n>', 'keep at most N training images, stratified (default: all)', positiveInt)
    .option('--val-limit <n>', 'keep at most N validation images, stratified (default: all)', positiveInt)
    .option('--extra', 'also cache extra_32x32.mat (531,131 images, streamed in chunks)', false)
    .option('--chunk <n>', 'images per chunk when streaming and writing', positiveInt, d.chunk)
    .option('--json', 'print a machine-readable summary on stdout instead of the table', false)
    .addOption(new Option('--images <dir>', 'train + val from your own images in DIR/0 .. DIR/9 instead of train_32x32.mat').conflicts('labels'))
    .option('--labels <file.csv>', 'train + val from the images a CSV of path,label rows lists (--format full: photos, file,number,boxes rows)')
    .addOption(new Option('--test-images <dir>', 'the test split from a second folder of digit folders (default: no test split with --images/--labels)').conflicts('testLabels'))
    .option('--test-labels <file.csv>', 'the test split from a second CSV of path,label rows (--format full: file,number,boxes rows)')
    .option('--strict', 'with --images/--labels: a file that does not decode is an error, not skipped', false)
    .addOption(
      new Option('--format <format>', 'cropped: the 32x32 digits (<data-dir>/cache); full: whole photos with digit boxes for the reader (<data-dir>/cache-full, from <data-dir>/full/ or --labels FILE.csv of file,number,boxes rows)')
        .choices(['cropped', 'full'])
        .default('cropped'),
    )
    .addHelpText(
      'after',
      `${LABELLED_HELP}
A training set needs at least one image of every digit (the split is stratified and the model
has 10 outputs); a test set may lack some (warned). The cache records the folder or CSV, its
file count and a content hash: changed images or labels rebuild it.`,
    )
    .action(async (flags: PreprocessFlags, cmd: Command) => {
      if (flags.format === 'full') return preprocessFull(flags, cmd);
      const { preprocess, formatPreprocessSummary } = await import('../data/cache/preprocess.js');
      const result = await preprocess({
        dataDir: flags.dataDir,
        valFraction: flags.valFraction,
        seed: flags.seed,
        limit: flags.limit ?? null,
        valLimit: flags.valLimit ?? null,
        extra: flags.extra,
        chunk: flags.chunk,
        images: labelledSource(flags),
        testImages: labelledSource({ images: flags.testImages, labels: flags.testLabels }, 'test-'),
        strict: flags.strict,
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
          sources: m.sources,
          splits: Object.fromEntries(Object.entries(m.splits).map(([k, s]) => [k, { count: s!.count, shape: s!.shape, classCounts: s!.classCounts }])),
          samplesPng: result.samplesPng,
          seconds: result.seconds,
        };
        process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
      } else {
        printText(formatPreprocessSummary(result));
      }
    });
}

/** `--format full`: the photo cache (data/cache/photoPreprocess.ts); the digit-only flags are refused. */
async function preprocessFull(flags: PreprocessFlags, cmd: Command): Promise<void> {
  const given = DIGITS_ONLY.find((k) => cmd.getOptionValueSource(k) === 'cli');
  if (given) {
    const flag = `--${given.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    throw new SvhnError('BAD_FLAG', `${flag}: not used with --format full (it takes --data-dir, --labels, --test-labels, --val-fraction, --seed and --json)`);
  }
  const { preprocessPhotos, formatPhotoPreprocessSummary } = await import('../data/cache/photoPreprocess.js');
  const result = await preprocessPhotos({ dataDir: flags.dataDir, labels: flags.labels, testLabels: flags.testLabels, valFraction: flags.valFraction, seed: flags.seed });
  if (!flags.json) return printText(formatPhotoPreprocessSummary(result));
  const m = result.manifest;
  const splits = Object.fromEntries(Object.entries(m.splits).map(([k, s]) => [k, { count: s!.count, digitsHistogram: s!.digitsHistogram }]));
  const summary = { cacheDir: result.cacheDir, synthetic: m.synthetic, manifestSha256: result.manifestSha256, options: m.options, source: m.source, splits, samplesPng: result.samplesPng, seconds: result.seconds };
  process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
}
