/**
 * `svhn preprocess`: flags -> preprocess() -> the EDA summary (stdout), or with --json one
 * machine-readable object (stdout). Logs and progress go to stderr. The training source is
 * train_32x32.mat, or your own labelled images (--images DIR / --labels FILE.csv).
 */
import { Option, type Command } from 'commander';
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
}

export function registerPreprocess(program: Command): void {
  const d = DEFAULTS.preprocess;
  program
    .command('preprocess')
    .description('turn the .mat files (or your own labelled images) into the training cache (<data-dir>/cache): NHWC uint8, stratified train/val split, EDA summary, samples.png')
    .option('--data-dir <dir>', 'where the .mat files are; the cache goes to <dir>/cache (with --images/--labels too)', DEFAULTS.dataDir)
    .option('--val-fraction <f>', 'share of the training source (train_32x32.mat, --images or --labels) held out for validation, stratified', fraction, d.valFraction)
    .option('--seed <n>', 'seed of the split and of --limit sampling', nonNegativeInt, d.seed)
    .option('--limit <n>', 'keep at most N training images, stratified (default: all)', positiveInt)
    .option('--val-limit <n>', 'keep at most N validation images, stratified (default: all)', positiveInt)
    .option('--extra', 'also cache extra_32x32.mat (531,131 images, streamed in chunks)', false)
    .option('--chunk <n>', 'images per chunk when streaming and writing', positiveInt, d.chunk)
    .option('--json', 'print a machine-readable summary on stdout instead of the table', false)
    .addOption(new Option('--images <dir>', 'train + val from your own images in DIR/0 .. DIR/9 instead of train_32x32.mat').conflicts('labels'))
    .option('--labels <file.csv>', 'train + val from the images a CSV of path,label rows lists')
    .addOption(new Option('--test-images <dir>', 'the test split from a second folder of digit folders (default: no test split with --images/--labels)').conflicts('testLabels'))
    .option('--test-labels <file.csv>', 'the test split from a second CSV of path,label rows')
    .option('--strict', 'with --images/--labels: a file that does not decode is an error, not skipped', false)
    .addHelpText(
      'after',
      `${LABELLED_HELP}
A training set needs at least one image of every digit (the split is stratified and the model
has 10 outputs); a test set may lack some (warned). The cache records the folder or CSV, its
file count and a content hash: changed images or labels rebuild it.`,
    )
    .action(async (flags: PreprocessFlags) => {
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
