/**
 * `svhn download`: fetch SVHN's .mat files (resumable, checksum-verified), or with
 * --format full the format-1 archives, extracted into <data-dir>/full/; or with --synthetic
 * generate the offline sample under the cropped file names. Flags -> one stage call.
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
  json: boolean;
  format: 'cropped' | 'full';
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

export function registerDownload(program: Command): void {
  program
    .command('download')
    .description('fetch the SVHN .mat files (resumable, size + sha256 + md5 verified), or generate the offline synthetic sample')
    .addOption(
      new Option('--split <list>', `comma-separated splits to fetch: ${SPLITS.join(', ')} (extra is 1.3 GB)`)
        .argParser(listOf(SPLITS))
        .default([...DEFAULTS.downloadSplits], DEFAULTS.downloadSplits.join(',')),
    )
    .option('--format <format>', 'cropped: the 32x32 digits ({split}_32x32.mat); full: the whole photos with digit boxes ({split}.tar.gz: train 404 MB, test 277 MB, extra 2 GB; extracted into <data-dir>/full/)', oneOf(['cropped', 'full'] as const), 'cropped')
    .option('--data-dir <dir>', 'where the .mat files (and full/) go', DEFAULTS.dataDir)
    .option('--base-url <url>', 'where {train,test,extra}_32x32.mat and {train,test,extra}.tar.gz live (use it for a mirror)', httpUrl, DEFAULTS.baseUrl)
    .option('--sources <file.json>', "a mirror's own files and checksums instead of SVHN's: {\"train\": {\"file\", \"size\", \"md5\", \"sha256\"}, \"test\": ..., \"extra\": ...} (sha256 may be left out with --format full)")
    .option('--force', 'fetch again even when a verified file is present', false)
    .option('--synthetic', 'generate the offline synthetic sample instead (no network; NOT real SVHN)', false)
    .option('--size <size>', `with --synthetic: full (SVHN's split sizes: ${sizesText('full')}) or small (${sizesText('small')}, for demos and tests)`, oneOf(['small', 'full'] as const), DEFAULTS.synthetic.size)
    .option('--seed <n>', 'with --synthetic: generator seed', nonNegativeInt, DEFAULTS.synthetic.seed)
    .option('--json', 'print a machine-readable summary to stdout', false)
    .action(async (opts: DownloadFlags, cmd: Command) => {
      if (opts.synthetic) {
        for (const flag of ['format', 'sources'] as const) {
          if (cmd.getOptionValueSource(flag) === 'cli') {
            throw new SvhnError('BAD_FLAG', `--${flag} does not apply with --synthetic (the offline sample is made in the cropped format, not fetched)`, { suggestion: `drop --${flag} or --synthetic` });
          }
        }
      }
      if (!opts.synthetic) {
        for (const flag of ['size', 'seed'] as const) {
          if (cmd.getOptionValueSource(flag) === 'cli') {
            throw new SvhnError('BAD_FLAG', `--${flag} only applies with --synthetic`, { suggestion: `add --synthetic or drop --${flag}` });
          }
        }
      }

      if (opts.synthetic) {
        const { generateSynthetic, SYNTHETIC_NOTE } = await import('../data/synthetic.js');
        const { createProgress } = await import('../progress.js');
        let bar: { split: string; progress: Progress } | undefined;
        let files;
        try {
          ({ files } = await generateSynthetic({
            dataDir: opts.dataDir,
            size: opts.size,
            seed: opts.seed,
            splits: opts.split,
            force: opts.force,
            onProgress: (split, done, total) => {
              if (bar?.split !== split) {
                bar?.progress.stop();
                bar = { split, progress: createProgress({ label: `synthetic ${split}_32x32.mat`, total, unit: 'img' }) };
              }
              bar.progress.update(done);
            },
          }));
          bar?.progress.stop();
        } catch (e) {
          bar?.progress.abort?.();
          throw e;
        }
        getLogger().warn(`${SYNTHETIC_NOTE} (${files.map((f) => `${f.split}: ${f.count} images`).join(', ')} in ${opts.dataDir})`);
        if (opts.json) {
          const summary = { synthetic: true, note: SYNTHETIC_NOTE, dataDir: opts.dataDir, size: opts.size, seed: opts.seed, files };
          process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
        }
        return;
      }

      const { readSourceTable } = await import('../data/sources.js');
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

      const { downloadSplits, createDownloadReporter } = await import('../data/download.js');
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
