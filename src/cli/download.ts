/**
 * `svhn download`: fetch SVHN's .mat files (resumable, checksum-verified), or with
 * --format full the format-1 archives, extracted into <data-dir>/full/; with --synthetic
 * generate the offline sample in either format instead. Flags -> one stage call.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { DEFAULTS, SPLITS, type SourceSplit } from '../config.js';
import { SvhnError } from '../errors.js';
import { getLogger } from '../log.js';
import type { Progress } from '../progress.js';
import { listOf, nonNegativeInt, oneOf } from './options.js';

interface DownloadFlags {
  split: SourceSplit[];
  dataDir: string;
  baseUrl: string;
  force: boolean;
  synthetic: boolean;
  size: 'small' | 'full';
  seed: number;
  format: 'cropped' | 'full';
  json: boolean;
  sources?: string;
}

function httpUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(`expected an http:// or https:// URL, got '${value}'`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError(`expected an http:// or https:// URL, got '${value}'`);
  }
  return value;
}

/** "73,257 train, 26,032 test, 531,131 extra" for a synthetic size, from DEFAULTS. */
function sizesText(size: 'small' | 'full'): string {
  return Object.entries(DEFAULTS.synthetic.sizes[size]).map(([split, n]) => `${n.toLocaleString('en-US')} ${split}`).join(', ');
}

/** The same for the synthetic photos (--format full). */
function photoSizesText(size: 'small' | 'full'): string {
  return Object.entries(DEFAULTS.synthetic.photoSizes[size]).map(([split, n]) => `${n.toLocaleString('en-US')} ${split}`).join(', ');
}

export function registerDownload(program: Command): void {
  program
    .command('download')
    .description('fetch the SVHN .mat files (resumable, size + sha256 + md5 verified), or generate the offline synthetic sample')
    .addOption(
      new Option('--split <list>', `comma-separated splits to fetch: ${SPLITS.join(', ')} (extra is 1.3 GB)`)
        .argParser(listOf(SPLITS))
        .default([...DEFAULTS.downloadSplits], DEFAULTS.downloadSplits.join(',')),
    )
    .option('--data-dir <dir>', 'where the .mat files (and, with --format full, full/) go', DEFAULTS.dataDir)
    .option('--base-url <url>', 'where {train,test,extra}_32x32.mat and, for --format full, {train,test,extra}.tar.gz (404 MB, 277 MB, 2 GB) live (use it for a mirror)', httpUrl, DEFAULTS.baseUrl)
    .option('--sources <file.json>', "a mirror's own files and checksums instead of SVHN's: {\"train\": {\"file\", \"size\", \"md5\", \"sha256\"}, \"test\": ..., \"extra\": ...} (sha256 may be left out with --format full)")
    .option('--force', 'fetch again even when a verified file is present', false)
    .option('--synthetic', 'generate the offline synthetic sample instead (no network; NOT real SVHN)', false)
    .option('--size <size>', `with --synthetic: full (SVHN's split sizes: ${sizesText('full')}) or small (${sizesText('small')}, for demos and tests); with --format full, photos: ${photoSizesText('full')} or ${photoSizesText('small')}`, oneOf(['small', 'full'] as const), DEFAULTS.synthetic.size)
    .option('--seed <n>', 'with --synthetic: generator seed', nonNegativeInt, DEFAULTS.synthetic.seed)
    .addOption(new Option('--format <format>', 'cropped: 32x32 digit crops (.mat); full: whole photos with digit boxes').choices(['cropped', 'full']).default('cropped'))
    .option('--json', 'print a machine-readable summary to stdout', false)
    .action(async (opts: DownloadFlags, cmd: Command) => {
      if (opts.synthetic && opts.sources !== undefined) {
        throw new SvhnError('BAD_FLAG', '--sources does not apply with --synthetic (the offline sample is generated, not fetched)', { suggestion: 'drop --sources or --synthetic' });
      }
      if (!opts.synthetic) {
        for (const flag of ['size', 'seed'] as const) {
          if (cmd.getOptionValueSource(flag) === 'cli') {
            throw new SvhnError('BAD_FLAG', `--${flag} only applies with --synthetic`, { suggestion: `add --synthetic or drop --${flag}` });
          }
        }
      }

      if (opts.format === 'full' && opts.synthetic) return downloadSyntheticPhotos(opts);

      if (opts.synthetic) {
        const { generateSynthetic, SYNTHETIC_NOTE } = await import('../data/synthetic/synthetic.js');
        const { files } = await withSplitBars(
          (split) => ({ label: `synthetic ${split}_32x32.mat`, unit: 'img' }),
          (onProgress) => generateSynthetic({ dataDir: opts.dataDir, size: opts.size, seed: opts.seed, splits: opts.split, force: opts.force, onProgress }),
        );
        getLogger().warn(`${SYNTHETIC_NOTE} (${files.map((f) => `${f.split}: ${f.count} images`).join(', ')} in ${opts.dataDir})`);
        if (opts.json) {
          const summary = { synthetic: true, note: SYNTHETIC_NOTE, dataDir: opts.dataDir, size: opts.size, seed: opts.seed, files };
          process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
        }
        return;
      }

      const { readSourceTable } = await import('../data/sources/sources.js');
      const sources = opts.sources === undefined ? undefined : await readSourceTable(opts.sources, opts.format === 'cropped');
      if (opts.format === 'full') {
        const { downloadFull, createFullReporter } = await import('../data/sources/downloadFull.js');
        const reporter = createFullReporter();
        let results;
        try {
          results = await downloadFull({ dataDir: opts.dataDir, baseUrl: opts.baseUrl, splits: opts.split, force: opts.force, sources, onProgress: reporter.onProgress });
        } finally {
          reporter.close();
        }
        if (opts.json) {
          process.stdout.write(JSON.stringify({ synthetic: false, format: 'full', dataDir: opts.dataDir, baseUrl: opts.baseUrl, splits: results }, null, 2) + '\n');
        }
        return;
      }

      const { downloadSplits, createDownloadReporter } = await import('../data/sources/download.js');
      const reporter = createDownloadReporter();
      let results;
      try {
        results = await downloadSplits({
          dataDir: opts.dataDir,
          baseUrl: opts.baseUrl,
          splits: opts.split,
          force: opts.force,
          sources,
          onProgress: reporter.onProgress,
        });
      } finally {
        reporter.close();
      }
      if (opts.json) {
        process.stdout.write(JSON.stringify({ synthetic: false, dataDir: opts.dataDir, baseUrl: opts.baseUrl, files: results }, null, 2) + '\n');
      }
    });
}

/** `download --synthetic --format full`: the synthetic photo sample under <data-dir>/full/ (data/synthetic/photoSample.ts). */
async function downloadSyntheticPhotos(opts: DownloadFlags): Promise<void> {
  const { generateSyntheticPhotos, SYNTHETIC_PHOTOS_NOTE } = await import('../data/synthetic/photoSample.js');
  const result = await withSplitBars(
    (split) => ({ label: `synthetic photos full/${split}`, unit: 'photo' }),
    (onProgress) => generateSyntheticPhotos({ dataDir: opts.dataDir, size: opts.size, seed: opts.seed, splits: opts.split, force: opts.force, onProgress }),
  );
  const { root, splits } = result;
  getLogger().warn(`${SYNTHETIC_PHOTOS_NOTE} (${splits.map((s) => `${s.split}: ${s.count} photos, ${s.withNumber} with a number`).join('; ')} in ${root})`);
  if (opts.json) {
    const summary = { synthetic: true, format: 'full', note: SYNTHETIC_PHOTOS_NOTE, dataDir: opts.dataDir, root, size: opts.size, seed: opts.seed, splits };
    process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
  }
}

type SplitProgress = (split: string, done: number, total: number) => void;

/** Runs a generator that reports (split, done, total), with one progress bar per split: stopped when it ends, aborted when it throws. */
async function withSplitBars<T>(barOf: (split: string) => { label: string; unit: string }, run: (onProgress: SplitProgress) => Promise<T>): Promise<T> {
  const { createProgress } = await import('../progress.js');
  let bar: { split: string; progress: Progress } | undefined;
  try {
    const result = await run((split, done, total) => {
      if (bar?.split !== split) {
        bar?.progress.stop();
        bar = { split, progress: createProgress({ ...barOf(split), total }) };
      }
      bar.progress.update(done);
    });
    bar?.progress.stop();
    return result;
  } catch (e) {
    bar?.progress.abort?.();
    throw e;
  }
}
