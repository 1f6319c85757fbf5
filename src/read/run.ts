/**
 * `svhn read` as one stage call: check the inputs and the outputs, load the reader, stream
 * every photo through it into the rows (CSV/JSONL to a file or a stream), draw each photo
 * with --draw, and return a summary. Failed photos are rows with an error, counted in the
 * summary; the CLI turns a non-zero `failed` into exit code 3, as predict does.
 */
import { stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import type { BackendChoice } from '../config.js';
import { SvhnError } from '../errors.js';
import { getLogger } from '../log.js';
import { createProgress, type ProgressOptions } from '../progress.js';
import { writeFileAtomic } from '../util/atomic.js';
import { assertOutside, realPath, type OwnPlace } from '../util/paths.js';
import { CACHE_PREFIX, countInputs, expandInputs, findInputFile, parseShard, resolveInputs, shardRange, sliceItems, type InputSource, type Shard } from '../predict/inputs.js';
import { openLineSink, type OutputFormat } from '../predict/output.js';
import { isMinConfidence } from '../predict/predict.js';
import { IMAGE_EXTENSIONS } from '../data/images/decode.js';
import type { Reader } from '../tasks/read/reader.js';
import { DrawNames, drawReading } from './draw.js';
import { readPhotos } from './read.js';
import { READ_ROWS, type ReadRow } from './rows.js';

export interface ReadRunOptions {
  inputs: string[]; // photo files and folders
  /** The reader's model directory (loaded with loadReader unless `reader` is given). */
  model?: string;
  /** A reader already loaded (tests inject one); the caller keeps owning it. */
  reader?: Reader;
  format: OutputFormat;
  out?: string; // file written atomically; rows go to `stream` when absent
  stream?: Writable;
  terminal?: boolean; // `stream` is a terminal: rows are shown (names escaped and cut), not stored
  recursive: boolean;
  /** Numbers whose confidence is below this abstain (0..1, default 0: never). */
  minConfidence?: number;
  /** Folder for one PNG per photo with its reading drawn on it. */
  draw?: string;
  backend?: BackendChoice; // when the reader is loaded here (default auto)
  threads?: number; // wasm threads
  decodeConcurrency?: number;
  /** Longest side a photo is decoded at (default data/images/photo.ts MAX_PHOTO_SIDE). */
  maxSide?: number;
  progress?: ProgressOptions['mode'];
  /** Only this shard's block of the sorted photos (predict/inputs.ts shardRange, as predict's --shard); all of them when absent. */
  shard?: Shard;
}

export interface ReadSummary {
  total: number; // rows written (this shard's, with a shard)
  /** With --shard: which shard, and its photos [start, end) of all `inputs`. */
  shard?: Shard & { start: number; end: number; inputs: number };
  read: number; // photos the reader answered for: with a number, without, abstained
  withNumber: number; // a number given (not abstained)
  noNumber: number;
  abstained: number; // below --min-confidence: no number given
  failed: number;
  drawn: number; // PNGs written to --draw
  reader: string; // the reader's name
  backend: string | null; // null with an injected reader
  seconds: number;
  photosPerSec: number; // photos read / wall time, decoding (and drawing) included
  draw?: string;
}

/** Failures logged one by one; after that only the error column lists them (as predict). */
const WARN_FAILURES = 10;
const SUGGEST_INPUTS = 'pass photo files or folders of them';
/** The input walkers' dataDir: only cache:SPLIT inputs read it, and read refuses them. */
const NO_DATA_DIR = '.';

/** cache:SPLIT inputs hold 32x32 digit crops, not photos: refused before any path is looked at. */
function refuseCacheInputs(args: string[]): void {
  const cache = args.find((arg) => arg.startsWith(CACHE_PREFIX));
  if (cache !== undefined) {
    throw new SvhnError('BAD_FLAG', `INPUT ${cache}: svhn read takes photos, not the preprocess cache's 32x32 digit crops`, { suggestion: `${SUGGEST_INPUTS}; svhn predict reads ${cache}` });
  }
}

/** .mat inputs (SVHN's 32x32 crops) neither. */
function refuseMatInputs(sources: InputSource[]): void {
  const mat = sources.find((s) => s.kind === 'mat');
  if (mat) {
    throw new SvhnError('BAD_FLAG', `INPUT ${mat.path}: svhn read takes photos, not a .mat file of 32x32 digit crops`, { suggestion: `${SUGGEST_INPUTS}; svhn predict reads .mat files` });
  }
}

/**
 * --out must be a new file, not an input; --out and --draw must lie outside the model
 * directory; --draw may not be a folder input (or lie inside one: a later run would read the
 * drawings) nor the folder of a file input (a drawing IMG_1.png would replace the input
 * IMG_1.png). Compared with symlinks resolved.
 */
async function refuseOverwritingInputs(sources: InputSource[], opts: ReadRunOptions): Promise<void> {
  const own: OwnPlace[] = opts.model ? [{ path: opts.model, what: `the model directory ${opts.model}, which holds svhn's own files` }] : [];
  if (opts.out) {
    const input = await findInputFile(sources, opts.out, { recursive: opts.recursive, dataDir: NO_DATA_DIR });
    if (input !== undefined) throw new SvhnError('BAD_FLAG', `--out ${opts.out}: expected a file that is not an input, got the input ${input}`, { suggestion: 'write to another file name' });
    await assertOutside('--out', opts.out, own);
  }
  if (opts.draw) {
    const inputPlaces: OwnPlace[] = sources.flatMap((s) => (s.kind === 'dir' ? [{ path: s.path, what: `the input folder ${s.path}` }] : s.kind === 'file' ? [{ path: s.path, what: `the input ${s.path}` }] : []));
    await assertOutside('--draw', opts.draw, [...own, ...inputPlaces], 'a folder');
    const drawDir = await realPath(opts.draw);
    for (const s of sources) {
      if (s.kind === 'file' && (await realPath(dirname(s.path))) === drawDir) {
        throw new SvhnError('BAD_FLAG', `--draw ${opts.draw}: expected a folder other than the one holding the input ${s.path} (a drawing could replace an input)`, { suggestion: 'draw into a new folder' });
      }
    }
    const st = await stat(opts.draw).catch(() => undefined);
    if (st && !st.isDirectory()) throw new SvhnError('BAD_FLAG', `--draw ${opts.draw}: expected a folder, got a file`, { suggestion: 'draw into a new folder' });
  }
}

/** The reader to use, and whether this run loaded it (and so disposes it). */
async function openReader(opts: ReadRunOptions): Promise<{ reader: Reader; owned: boolean; backend: string | null }> {
  if (opts.reader) return { reader: opts.reader, owned: false, backend: null };
  const { assertModelDir } = await import('../models/io.js');
  assertModelDir(opts.model!); // before the backend starts: a typo answers at once
  const { initBackend } = await import('../backend/index.js');
  const backend = await initBackend(opts.backend ?? 'auto', { threads: opts.threads }); // first, so the weights live on it
  const { loadReader } = await import('../tasks/read/reader.js');
  return { reader: await loadReader(opts.model!, { flag: '--model' }), owned: true, backend: backend.name };
}

function countRow(summary: ReadSummary, row: ReadRow): void {
  summary.total++;
  if (row.error !== null) {
    summary.failed++;
    const log = getLogger();
    if (summary.failed <= WARN_FAILURES) log.warn({ input: row.input, error: row.error }, `skipped ${row.input}: ${row.error}`);
    if (summary.failed === WARN_FAILURES + 1) log.warn(`more photos failed: see the error column of the output (the count is in the summary)`);
    return;
  }
  summary.read++;
  if (row.abstained) summary.abstained++;
  else if (row.number === '') summary.noNumber++;
  else summary.withNumber++;
}

export async function runRead(opts: ReadRunOptions): Promise<ReadSummary> {
  const log = getLogger();
  const minConfidence = opts.minConfidence ?? 0;
  if (!isMinConfidence(minConfidence)) throw new SvhnError('BAD_FLAG', `--min-confidence: expected a number from 0 to 1, got ${minConfidence}`);
  if (!opts.reader && !opts.model) throw new SvhnError('BAD_FLAG', '--model: expected the directory of a reader model', { suggestion: 'train one with `svhn train --model reader`' });
  if (opts.shard) {
    const checked = parseShard(`${opts.shard.index}/${opts.shard.count}`);
    if (typeof checked === 'string') throw new SvhnError('BAD_FLAG', `--shard: ${checked}`);
  }
  refuseCacheInputs(opts.inputs);
  const sources = await resolveInputs(opts.inputs, { suggestion: SUGGEST_INPUTS });
  refuseMatInputs(sources);
  await refuseOverwritingInputs(sources, opts);

  const { reader, owned, backend } = await openReader(opts);
  try {
    const inputs = await countInputs(sources, { recursive: opts.recursive, dataDir: NO_DATA_DIR });
    if (inputs === 0) {
      throw new SvhnError('BAD_INPUT', `no photos found in ${opts.inputs.join(' ')}`, {
        suggestion: `folders are read for ${IMAGE_EXTENSIONS.join(' ')} files${opts.recursive ? '' : '; add --recursive for subfolders'}`,
      });
    }
    const { start, end } = opts.shard ? shardRange(inputs, opts.shard) : { start: 0, end: inputs };
    const total = end - start;
    const shard = opts.shard ? { ...opts.shard, start, end, inputs } : undefined;
    const shardNote = shard ? ` (shard ${shard.index}/${shard.count}: photos ${start}..${end - 1} of ${inputs}, counted from 0)` : '';
    if (shard && total === 0) log.info({ shard }, `shard ${shard.index}/${shard.count} is empty: only ${inputs} photos for ${shard.count} shards; writing an empty output`);
    else log.info({ model: opts.model ?? reader.name, inputs: total, backend, ...(shard ? { shard } : {}) }, `reading ${total} photos${shardNote} with ${opts.model ?? reader.name}`);
    if (reader.metadata.synthetic) log.warn(`${opts.model ?? reader.name} was trained on the synthetic sample: its readings of real photos mean little`);

    const summary: ReadSummary = { total: 0, read: 0, withNumber: 0, noNumber: 0, abstained: 0, failed: 0, drawn: 0, reader: reader.name, backend, seconds: 0, photosPerSec: 0, ...(shard ? { shard } : {}) };
    const sink = await openLineSink({ format: opts.format, out: opts.out, stream: opts.stream, terminal: opts.terminal }, READ_ROWS);
    const progress = createProgress({ label: 'read', total, unit: 'photo', mode: opts.progress });
    const names = new DrawNames();
    const startedAt = performance.now();
    try {
      const all = expandInputs(sources, {
        recursive: opts.recursive,
        dataDir: NO_DATA_DIR,
        onSkipped: (dir, n) => log.debug({ dir, skipped: n }, `skipped ${n} entries of ${dir} (not image files${opts.recursive ? '' : ', or subfolders'})`),
        onRevisit: (dir) => log.warn({ dir }, `skipped folder ${dir}: already walked (a symlink loop, or a second link to the same folder)`),
      });
      const items = shard ? sliceItems(all, start, end) : all;
      for await (const { row, bytes } of readPhotos(items, { reader, minConfidence, decodeConcurrency: opts.decodeConcurrency, maxSide: opts.maxSide, keepBytes: opts.draw !== undefined })) {
        await sink.write(row);
        countRow(summary, row);
        if (opts.draw && bytes) {
          await writeFileAtomic(join(opts.draw, names.next(row.input)), await drawReading(bytes, row));
          summary.drawn++;
        }
        progress.update(summary.total, { failed: summary.failed });
      }
      await sink.close();
    } catch (e) {
      await sink.abort();
      throw e;
    } finally {
      progress.stop({ failed: summary.failed });
    }
    summary.seconds = (performance.now() - startedAt) / 1000;
    summary.photosPerSec = summary.seconds > 0 ? summary.read / summary.seconds : 0;
    if (opts.draw) summary.draw = opts.draw;
    return summary;
  } finally {
    if (owned) reader.dispose();
  }
}
