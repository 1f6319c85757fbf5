/**
 * `svhn download --format full`: per split, the format-1 archive fetched and verified by the
 * same resumable download as the cropped files (data/download.ts, against SVHN_ARCHIVES), then
 * extracted into `<data-dir>/full/<split>/` and `<data-dir>/full/<split>.csv`
 * (extractArchive.ts). A split whose archive verifies and whose folder is complete costs no
 * request and no write. The archive is kept: it is what a later run verifies against.
 */
import { join } from 'node:path';
import { getLogger } from '../../log.js';
import { createProgress, formatBytes, type Progress } from '../../progress.js';
import { createDownloadReporter, downloadSplits, type DownloadEvent, type DownloadOptions, type DownloadResult } from './download.js';
import type { SourceTable } from './sources.js';
import { SVHN_ARCHIVES } from './archives.js';
import { extractArchive, type ExtractEvent, type ExtractResult } from './extractArchive.js';

/** The folder under --data-dir that format-1 photos and their CSVs go to. */
export const FULL_DIR = 'full';

export interface DownloadFullOptions extends Omit<DownloadOptions, 'sources' | 'onProgress'> {
  sources?: SourceTable; // default SVHN_ARCHIVES; a mirror or a test supplies its own
  onProgress?: (event: DownloadEvent | ExtractEvent) => void;
}

export interface DownloadFullResult {
  split: DownloadResult['split'];
  download: DownloadResult;
  extract: ExtractResult;
}

/** Fetches, verifies and extracts each requested split in turn; throws SvhnError on the first that fails. */
export async function downloadFull(opts: DownloadFullOptions): Promise<DownloadFullResult[]> {
  const sources = opts.sources ?? SVHN_ARCHIVES;
  const results: DownloadFullResult[] = [];
  for (const split of opts.splits) {
    const [download] = await downloadSplits({ ...opts, splits: [split], sources });
    const extract = await extractArchive({
      archive: download!.path,
      split,
      outDir: join(opts.dataDir, FULL_DIR),
      force: opts.force,
      onEvent: opts.onProgress,
    });
    results.push({ split, download: download!, extract });
  }
  return results;
}

/**
 * The download's reporter (a bar per archive on a TTY, plain lines otherwise) plus the
 * extraction's: a bar over the archive's bytes read, and one line per split when it is done
 * or found complete. `close()` ends a live bar where it stands.
 */
export function createFullReporter(mode?: 'bar' | 'plain' | 'silent'): { onProgress: (e: DownloadEvent | ExtractEvent) => void; close: () => void } {
  const download = createDownloadReporter(mode);
  const log = getLogger();
  let bar: Progress | undefined;
  const close = () => {
    download.close();
    bar?.abort?.();
    bar = undefined;
  };
  const onProgress = (e: DownloadEvent | ExtractEvent) => {
    switch (e.type) {
      case 'extract-start':
        log.info(`${e.archive}: extracting into ${e.dir}/`);
        bar = createProgress({ label: `extract ${e.split}`, total: e.size, unit: 'B', format: formatBytes, mode });
        break;
      case 'extract-bytes':
        bar?.update(e.done);
        break;
      case 'extract-label':
        bar?.stop();
        bar = undefined;
        log.info(`${e.archive}: reading ${e.split}/digitStruct.mat`);
        break;
      case 'extract-done': {
        const r = e.result;
        const clipped = r.clipped > 0 ? ` (${r.clipped} box${r.clipped === 1 ? '' : 'es'} clipped to the photo's edge)` : '';
        log.info(`${r.split}: ${r.photos.toLocaleString('en-US')} photos, ${r.digits.toLocaleString('en-US')} digit boxes${clipped}: ${r.dir}/ and ${r.csv}`);
        break;
      }
      case 'extract-skip':
        log.info(`${e.result.dir}/: complete (${e.result.photos.toLocaleString('en-US')} photos in ${e.result.csv}), skipped`);
        break;
      default:
        download.onProgress(e);
    }
  };
  return { onProgress, close };
}
