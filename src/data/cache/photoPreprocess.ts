/**
 * `svhn preprocess --format full`: labelled whole photos -> the photo cache (./photoCache.ts).
 *
 *   <dataDir>/full/train.csv  (or --labels FILE.csv)       -> seeded random split -> train + val
 *   <dataDir>/full/test.csv   (or --test-labels FILE.csv)  -> test (none when there is neither)
 *
 * The CSVs are `file,number[,boxes]` (data/images/photoLabels.ts): what `svhn download --format
 * full` extracts from SVHN's archives, what the synthetic photo sample writes, and your own.
 * Each photo is decoded and letterboxed into READER_INPUT (data/images/photo.ts); its boxes
 * are fitted to the photo (fitBoxes), mapped into the input (boxToInput) and written as one
 * label record (writeLabelRecord).
 *
 * Left out, and said so: a row without boxes (a detector cannot learn from it; counted, the
 * first few named; all of a source box-less is an error), a photo of more than MAX_DIGITS
 * digits (counted), a photo that does not decode or whose boxes leave it (listed with the
 * reason; none left is an error).
 *
 * Deterministic: photos decode 16 at a time but are written in CSV order, and the split is
 * drawn from the seed, so the same sources and options give the same bytes. Atomic and locked
 * like the digit cache: built in a temporary sibling (buildDirAtomic), manifest.json last,
 * under <dataDir>/cache-full.lock; a folder holding anything preprocess did not write is refused.
 */
import { open, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { DEFAULTS } from '../../config.js';
import { SvhnError, ioError } from '../../errors.js';
import { getLogger } from '../../log.js';
import { createProgress, type ProgressOptions } from '../../progress.js';
import { buildDirAtomic, sha256, writeFileAtomic, writeJsonAtomic } from '../../util/atomic.js';
import { describeFileKind, readRegularFile } from '../../util/files.js';
import { withLock } from '../../util/lock.js';
import { mapOrdered } from '../../util/mapOrdered.js';
import { makeDirs } from '../../util/mkdirs.js';
import { Rng } from '../../util/rng.js';
import { LABEL_BYTES, LETTERBOX_FILL, MAX_DIGITS, READER_IMAGE_BYTES, READER_INPUT, boxToInput, writeLabelRecord } from '../../tasks/read/format.js';
import { readImageFile } from '../images/decode.js';
import { decodeLetterboxed } from '../images/photo.js';
import { fitBoxes, parsePhotoLabels, type Box, type PhotoLabel } from '../images/photoLabels.js';
import { PHOTOS_DIR, hasSyntheticMark, type SyntheticPhotosManifest } from '../synthetic/photoSample.js';
import { readSyntheticManifest, SYNTHETIC_MARKER_FILE } from '../synthetic/synthetic.js';
import { assertReplaceable, SplitFiles } from './cacheFiles.js';
import {
  PHOTO_CACHE_FILES,
  PHOTO_CACHE_FORMAT,
  PHOTO_CACHE_SUBDIR,
  PHOTO_CACHE_VERSION,
  PHOTO_MANIFEST_FILE,
  PHOTO_SAMPLES_FILE,
  openPhotoCache,
  type PhotoCacheManifest,
  type PhotoInfo,
  type PhotoSourceEntry,
  type PhotoSplit,
  type PhotoSplitEntry,
  type SkippedPhoto,
} from './photoCache.js';

export interface PhotoPreprocessOptions {
  dataDir: string;
  /** Your own labelled photos (a `file,number,boxes` CSV) for train + val, instead of <dataDir>/full/train.csv. */
  labels?: string;
  /** With `labels`: the test split from a second CSV (no test split without it). */
  testLabels?: string;
  valFraction?: number; // share of the training photos held out for validation, in (0, 1)
  seed?: number; // seed of the train/val split and of the samples
  sampleCount?: number; // photos in samples.png (0: none)
  concurrency?: number; // photos decoding at once
  progress?: ProgressOptions['mode'];
}

export interface PhotoPreprocessResult {
  cacheDir: string;
  manifest: PhotoCacheManifest;
  manifestSha256: string;
  samplesPng: string | null;
  seconds: number;
}

const DEFAULT_SAMPLE_COUNT = 16;
/** Photos decoding at once (sharp decodes on libuv's pool; more only holds more photos in memory). */
const DEFAULT_CONCURRENCY = 16;
/** Photos gathered before one write to each split file. */
const WRITE_BATCH = 256;
/** Box-less rows named in the warning (the manifest keeps the same few). */
const NAMED_NO_BOXES = 5;
/** Skipped photos logged one by one up to this many; manifest.json lists them all. */
const WARN_SKIPPED = 10;

type ResolvedOptions = Required<Omit<PhotoPreprocessOptions, 'labels' | 'testLabels' | 'progress'>> & Pick<PhotoPreprocessOptions, 'labels' | 'testLabels' | 'progress'>;

/** Validates options once, where they enter (STYLE lesson 5); BAD_FLAG exits 2. */
function resolveOptions(opts: PhotoPreprocessOptions): ResolvedOptions {
  const o: ResolvedOptions = {
    dataDir: opts.dataDir,
    labels: opts.labels,
    testLabels: opts.testLabels,
    valFraction: opts.valFraction ?? DEFAULTS.preprocess.valFraction,
    seed: opts.seed ?? DEFAULTS.preprocess.seed,
    sampleCount: opts.sampleCount ?? DEFAULT_SAMPLE_COUNT,
    concurrency: opts.concurrency ?? DEFAULT_CONCURRENCY,
    progress: opts.progress,
  };
  const bad = (flag: string, expected: string, got: unknown) => new SvhnError('BAD_FLAG', `${flag}: expected ${expected}, got ${JSON.stringify(got)}`);
  if (!(o.valFraction > 0 && o.valFraction < 1)) throw bad('--val-fraction', 'a number between 0 and 1 (exclusive)', o.valFraction);
  if (!Number.isSafeInteger(o.seed) || o.seed < 0) throw bad('--seed', 'a non-negative integer', o.seed);
  if (!Number.isSafeInteger(o.sampleCount) || o.sampleCount < 0) throw bad('sampleCount', 'a non-negative integer', o.sampleCount);
  if (!Number.isSafeInteger(o.concurrency) || o.concurrency < 1) throw bad('concurrency', 'a positive integer', o.concurrency);
  if (o.testLabels !== undefined && o.labels === undefined) {
    throw new SvhnError('BAD_FLAG', '--test-labels: a test set from your photos goes with a training set from them (--labels FILE.csv)');
  }
  return o;
}

/** A source CSV read and parsed: its rows and what the manifest says of it. */
interface PhotoSource {
  csv: string; // as given, or <dataDir>/full/<split>.csv
  flag: string; // for messages: '--labels', '--test-labels', or the default's path
  rows: PhotoLabel[];
  sha256: string;
  /** Listed as the synthetic sample's own CSV by full/SYNTHETIC.json. */
  markedSynthetic: boolean;
}

/** A CSV's bytes: a regular file (a FIFO or folder is refused, naming it); undefined when missing and optional. */
async function readCsv(path: string, optional: boolean): Promise<Buffer | undefined> {
  try {
    return await readRegularFile(path);
  } catch (e) {
    if (optional && (e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if ((e as NodeJS.ErrnoException).code === 'EISDIR') throw ioError(path, 'read', new Error(`expected a CSV file, got ${describeFileKind(await stat(path))}`));
    throw ioError(path, 'read', e);
  }
}

/** The default sources: <dataDir>/full/train.csv (required) and test.csv (optional), marked synthetic when SYNTHETIC.json vouches for them. */
async function readDefaultSources(dataDir: string): Promise<{ train: PhotoSource; test?: PhotoSource }> {
  const root = join(dataDir, PHOTOS_DIR);
  const marker = await readSyntheticManifest<SyntheticPhotosManifest>(join(root, SYNTHETIC_MARKER_FILE));
  const read = async (split: 'train' | 'test'): Promise<PhotoSource | undefined> => {
    const csv = join(root, `${split}.csv`);
    const bytes = await readCsv(csv, true);
    if (!bytes) return undefined;
    const digest = sha256(bytes);
    const markedSynthetic = marker?.files.some((f) => f.split === split && f.sha256 === digest) ?? false;
    return { csv, flag: csv, rows: parsePhotoLabels(bytes.toString('utf8'), csv), sha256: digest, markedSynthetic };
  };
  const train = await read('train');
  if (!train) {
    throw new SvhnError('MISSING_DATA', `${join(root, 'train.csv')} not found: no photos in ${root}`, {
      suggestion: 'run `svhn download --format full` (or `svhn download --synthetic --format full` for the offline sample), or pass --labels FILE.csv',
    });
  }
  return { train, test: await read('test') };
}

async function readLabelsSource(csv: string, flag: string): Promise<PhotoSource> {
  const bytes = (await readCsv(csv, false))!;
  return { csv, flag, rows: parsePhotoLabels(bytes.toString('utf8'), csv), sha256: sha256(bytes), markedSynthetic: false };
}

/** A source's rows that can be cached (boxes, at most MAX_DIGITS digits), and what is left out before decoding. */
interface CacheableRows {
  rows: Array<PhotoLabel & { boxes: Box[] }>;
  noBoxes: PhotoLabel[];
  tooLong: number;
}

function cacheableRows(source: PhotoSource): CacheableRows {
  const out: CacheableRows = { rows: [], noBoxes: [], tooLong: 0 };
  for (const row of source.rows) {
    if (row.boxes === null) out.noBoxes.push(row);
    else if (row.number.length > MAX_DIGITS) out.tooLong++;
    else out.rows.push(row as PhotoLabel & { boxes: Box[] });
  }
  if (out.noBoxes.length > 0) {
    const named = out.noBoxes.slice(0, NAMED_NO_BOXES).map((r) => `${r.file} (line ${r.line})`).join(', ');
    if (out.rows.length === 0) {
      throw new SvhnError('BAD_INPUT', `${source.csv}: none of its ${source.rows.length} photos has digit boxes (${named}${out.noBoxes.length > NAMED_NO_BOXES ? ', ...' : ''}): the reader learns where each digit is, so every photo needs them`, {
        suggestion: "add a boxes column: 'left top right bottom' per digit, ';' between digits",
      });
    }
    getLogger().warn(`${source.csv}: skipped ${out.noBoxes.length} of ${source.rows.length} photos without digit boxes (a detector cannot learn from them): ${named}${out.noBoxes.length > NAMED_NO_BOXES ? ', ...' : ''}`);
  }
  if (out.tooLong > 0) getLogger().warn(`${source.csv}: skipped ${out.tooLong} photos of more than ${MAX_DIGITS} digits (a label record holds at most ${MAX_DIGITS})`);
  if (out.rows.length === 0) throw new SvhnError('BAD_INPUT', `${source.csv}: no photos to cache (${source.rows.length} rows)`);
  return out;
}

/**
 * Which of n training photos go to val: round(n x valFraction) of them (at least one, and at
 * least one left for train), drawn from the seed. Positions in CSV order; true = val.
 */
export function drawVal(n: number, valFraction: number, seed: number): boolean[] {
  if (n < 2) throw new SvhnError('BAD_INPUT', `expected at least 2 training photos with boxes to split into train and val, got ${n}`);
  const nVal = Math.min(n - 1, Math.max(1, Math.round(n * valFraction)));
  const order = new Rng(seed).shuffle(Uint32Array.from({ length: n }, (_, i) => i));
  const isVal = new Array<boolean>(n).fill(false);
  for (const i of order.subarray(0, nVal)) isVal[i] = true;
  return isVal;
}

/** One photo's part of the cache, or why it is left out. */
type DecodedRow =
  | { ok: true; image: Uint8Array; record: Uint8Array; info: PhotoInfo; synthetic: boolean }
  | { ok: false; skipped: SkippedPhoto };

/** Reads, decodes and letterboxes one photo; fits its boxes and maps them into the input. */
async function decodeRow(row: PhotoLabel & { boxes: Box[] }, csvDir: string): Promise<DecodedRow> {
  const path = isAbsolute(row.file) ? row.file : join(csvDir, row.file);
  const skip = (reason: string): DecodedRow => ({ ok: false, skipped: { file: row.file, line: row.line, reason } });
  let bytes: Buffer;
  let photo;
  try {
    bytes = await readImageFile(path);
    photo = await decodeLetterboxed(bytes);
  } catch (e) {
    if (e instanceof SvhnError) return skip(e.message);
    throw e;
  }
  const { width, height, letterbox, image } = photo;
  const fitted = fitBoxes(row.boxes, width, height);
  if (typeof fitted === 'string') return skip(fitted);
  const record = new Uint8Array(LABEL_BYTES);
  writeLabelRecord(fitted.map((b) => boxToInput(b, letterbox, width, height)), record);
  return { ok: true, image, record, info: { file: row.file, number: row.number, width, height }, synthetic: hasSyntheticMark(bytes) };
}

/** One split's three files, appended photo by photo in order, hashed as they go. */
class PhotoSplitWriter {
  /** The photos appended so far, in order. */
  readonly photos: PhotoInfo[] = [];
  private readonly histogram = new Array<number>(MAX_DIGITS + 1).fill(0);
  private pendingImages: Uint8Array[] = [];
  private pendingLabels: Uint8Array[] = [];

  private constructor(
    private readonly dir: string,
    readonly split: PhotoSplit,
    private readonly files: SplitFiles,
  ) {}

  static async create(dir: string, split: PhotoSplit): Promise<PhotoSplitWriter> {
    return new PhotoSplitWriter(dir, split, await SplitFiles.create(dir, split));
  }

  get count(): number {
    return this.photos.length;
  }

  async append(image: Uint8Array, record: Uint8Array, info: PhotoInfo): Promise<void> {
    this.pendingImages.push(image);
    this.pendingLabels.push(record);
    this.photos.push(info);
    this.histogram[record[0]!]!++;
    if (this.pendingImages.length >= WRITE_BATCH) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.pendingImages.length === 0) return;
    await this.files.append(Buffer.concat(this.pendingImages), Buffer.concat(this.pendingLabels));
    this.pendingImages = [];
    this.pendingLabels = [];
  }

  async finish(): Promise<PhotoSplitEntry> {
    await this.flush();
    const { images, labels } = await this.files.finish();
    // One photo a line: diffable, and still one JSON array.
    const photosText = `[\n${this.photos.map((p) => JSON.stringify(p)).join(',\n')}\n]\n`;
    const photosFile = `${this.split}.photos.json`;
    await writeFileAtomic(join(this.dir, photosFile), photosText);
    return {
      count: this.count,
      imagesFile: this.files.imagesFile,
      labelsFile: this.files.labelsFile,
      photosFile,
      digitsHistogram: this.histogram,
      sha256: { images, labels, photos: sha256(photosText) },
    };
  }

  async abort(): Promise<void> {
    await this.files.abort();
  }
}

/**
 * Decodes a source's photos (o.concurrency at once, in CSV order) into the writer `route`
 * picks for each cacheable row; returns its manifest entry and whether any photo carried the
 * synthetic sample's mark.
 */
async function cacheSource(
  source: PhotoSource,
  cacheable: CacheableRows,
  route: (position: number) => PhotoSplitWriter,
  o: ResolvedOptions,
): Promise<{ entry: PhotoSourceEntry; markedPhotos: boolean }> {
  const log = getLogger();
  const csvDir = dirname(resolve(source.csv));
  const skipped: SkippedPhoto[] = [];
  let markedPhotos = false;
  let done = 0;
  const bar = createProgress({ label: `decode ${source.csv}`, total: cacheable.rows.length, unit: 'photo', mode: o.progress, plainEverySec: 5 });
  try {
    for await (const r of mapOrdered(cacheable.rows, (row) => decodeRow(row, csvDir), o.concurrency)) {
      if (r.ok) {
        await route(done).append(r.image, r.record, r.info);
        markedPhotos ||= r.synthetic;
      } else {
        skipped.push(r.skipped);
        if (skipped.length <= WARN_SKIPPED) log.warn({ file: r.skipped.file, reason: r.skipped.reason }, `skipped ${r.skipped.file}: ${r.skipped.reason}`);
        else if (skipped.length === WARN_SKIPPED + 1) log.warn('more photos skipped: the summary and manifest.json list them all');
      }
      bar.update(++done);
    }
  } catch (e) {
    bar.abort?.();
    throw e;
  }
  bar.stop();
  const used = cacheable.rows.length - skipped.length;
  if (used === 0) {
    const first = skipped[0]!;
    throw new SvhnError('BAD_INPUT', `${source.csv}: none of its ${cacheable.rows.length} photos could be cached (${first.file}: ${first.reason})`, { suggestion: 'check the photos the CSV names, relative to its folder' });
  }
  if (skipped.length) log.warn(`${source.csv}: skipped ${skipped.length} of ${cacheable.rows.length} photos (listed in manifest.json)`);
  const entry: PhotoSourceEntry = {
    csv: source.csv,
    sha256: source.sha256,
    rows: source.rows.length,
    used,
    noBoxes: { count: cacheable.noBoxes.length, first: cacheable.noBoxes.slice(0, NAMED_NO_BOXES).map((r) => r.file) },
    tooLong: cacheable.tooLong,
    skipped,
  };
  return { entry, markedPhotos };
}

/** Records `indices` (ascending) of a split's files in the temporary cache: images and label records. */
async function readRecords(dir: string, split: PhotoSplitEntry, indices: number[]): Promise<{ images: Uint8Array; labels: Uint8Array }> {
  const images = new Uint8Array(indices.length * READER_IMAGE_BYTES);
  const labels = new Uint8Array(indices.length * LABEL_BYTES);
  for (const [file, out, bytes] of [
    [split.imagesFile, images, READER_IMAGE_BYTES],
    [split.labelsFile, labels, LABEL_BYTES],
  ] as const) {
    const fh = await open(join(dir, file), 'r');
    try {
      for (const [j, i] of indices.entries()) await fh.read(out, j * bytes, bytes, i * bytes);
    } finally {
      await fh.close();
    }
  }
  return { images, labels };
}

/** samples.png: training photos drawn from the seed, as letterboxed, their boxes drawn. */
async function writeSamples(dir: string, train: PhotoSplitEntry, photos: PhotoInfo[], o: ResolvedOptions, synthetic: boolean): Promise<PhotoCacheManifest['samples']> {
  const n = Math.min(o.sampleCount, train.count);
  if (n === 0) return undefined;
  const chosen = Array.from(new Rng(o.seed + 3).shuffle(Uint32Array.from({ length: train.count }, (_, i) => i)).subarray(0, n)).sort((a, b) => a - b);
  const { images, labels } = await readRecords(dir, train, chosen);
  const { renderPhotoGrid } = await import('../../report/photoGrid.js');
  const title = synthetic ? 'Training photos: SYNTHETIC photo sample, not SVHN' : 'Training photos, letterboxed, with their digit boxes';
  const png = await renderPhotoGrid({ images, labels, count: n, captions: chosen.map((i) => photos[i]!.number || '(no number)'), title });
  await writeFileAtomic(join(dir, PHOTO_SAMPLES_FILE), png);
  return { file: PHOTO_SAMPLES_FILE, count: n, sha256: sha256(png) };
}

/** Builds the cache in a temporary folder, manifest.json last. */
async function buildPhotoCache(o: ResolvedOptions, sources: { train: PhotoSource; test?: PhotoSource }, cacheDir: string): Promise<PhotoCacheManifest> {
  const log = getLogger();
  const trainRows = cacheableRows(sources.train);
  const testRows = sources.test ? cacheableRows(sources.test) : undefined;
  const isVal = drawVal(trainRows.rows.length, o.valFraction, o.seed);
  await assertReplaceable(cacheDir, PHOTO_CACHE_FILES, 'an earlier photo cache');

  return buildDirAtomic(cacheDir, async (tmp) => {
    const writers: PhotoSplitWriter[] = [];
    const writer = async (split: PhotoSplit) => {
      const w = await PhotoSplitWriter.create(tmp, split);
      writers.push(w);
      return w;
    };
    try {
      const train = await writer('train');
      const val = await writer('val');
      const trainSource = await cacheSource(sources.train, trainRows, (i) => (isVal[i] ? val : train), o);
      const trainPhotos = train.photos;
      const splits: PhotoCacheManifest['splits'] = { train: await train.finish(), val: await val.finish() };
      log.info({ train: splits.train!.count, val: splits.val!.count }, `wrote train and val from ${sources.train.csv}`);

      let testSource: Awaited<ReturnType<typeof cacheSource>> | undefined;
      if (sources.test && testRows) {
        const test = await writer('test');
        testSource = await cacheSource(sources.test, testRows, () => test, o);
        splits.test = await test.finish();
        log.info({ test: splits.test.count }, `wrote test from ${sources.test.csv}`);
      } else {
        log.info(o.labels ? 'no test split: pass --test-labels FILE.csv for one' : `no test split: ${join(o.dataDir, PHOTOS_DIR, 'test.csv')} not found`);
      }

      const synthetic = sources.train.markedSynthetic || !!sources.test?.markedSynthetic || trainSource.markedPhotos || !!testSource?.markedPhotos;
      if (synthetic) log.warn('these are SYNTHETIC photos (the offline photo sample), not SVHN: accuracy on them is not SVHN accuracy');
      const samples = await writeSamples(tmp, splits.train!, trainPhotos, o, synthetic);
      const manifest: PhotoCacheManifest = {
        format: PHOTO_CACHE_FORMAT,
        version: PHOTO_CACHE_VERSION,
        createdAt: new Date().toISOString(),
        synthetic,
        input: { ...READER_INPUT },
        letterboxFill: LETTERBOX_FILL,
        maxDigits: MAX_DIGITS,
        labelBytes: LABEL_BYTES,
        options: { valFraction: o.valFraction, seed: o.seed },
        source: { kind: o.labels ? 'csv' : 'full', train: trainSource.entry, ...(testSource ? { test: testSource.entry } : {}) },
        splits,
        ...(samples ? { samples } : {}),
      };
      await writeJsonAtomic(join(tmp, PHOTO_MANIFEST_FILE), manifest); // last: a cache without it is incomplete
      return manifest;
    } catch (e) {
      for (const w of writers) await w.abort();
      throw e;
    }
  });
}

/**
 * Reads and checks the sources (every CSV error before any photo is decoded), then builds
 * <dataDir>/cache-full under its lock: a second preprocess of the same folder is refused,
 * naming the first's pid.
 */
export async function preprocessPhotos(options: PhotoPreprocessOptions): Promise<PhotoPreprocessResult> {
  const t0 = Date.now();
  const o = resolveOptions(options);
  const cacheDir = join(o.dataDir, PHOTO_CACHE_SUBDIR);
  const sources = o.labels
    ? { train: await readLabelsSource(o.labels, '--labels'), test: o.testLabels ? await readLabelsSource(o.testLabels, '--test-labels') : undefined }
    : await readDefaultSources(o.dataDir);
  try {
    await makeDirs(o.dataDir); // --labels: the data directory may be new, the cache its only content
  } catch (e) {
    throw ioError(o.dataDir, 'create', e);
  }
  const manifest = await withLock(`${cacheDir}.lock`, `the photo cache ${cacheDir}`, () => buildPhotoCache(o, sources, cacheDir), 'wait for it to finish, or pass another --data-dir');
  const { manifestSha256 } = await openPhotoCache(o.dataDir);
  const seconds = (Date.now() - t0) / 1000;
  getLogger().info({ cacheDir, seconds }, 'photo cache written');
  return { cacheDir, manifest, manifestSha256, samplesPng: manifest.samples ? join(cacheDir, manifest.samples.file) : null, seconds };
}

// ---------------------------------------------------------------------------------------
// The summary the CLI prints (a pure function of the result, so it is testable).

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd()).join('\n');
}

/** Skipped photos listed in the summary; manifest.json lists them all. */
const SUMMARY_SKIPPED = 20;

export function formatPhotoPreprocessSummary(result: PhotoPreprocessResult): string {
  const m = result.manifest;
  const names = (['train', 'val', 'test'] as const).filter((s) => m.splits[s]);
  const { height, width, channels } = m.input;
  const lines: string[] = [];
  if (m.synthetic) lines.push('WARNING: these are SYNTHETIC photos (the offline photo sample), not SVHN: accuracy on them says nothing about SVHN.', '');
  lines.push(`Photo cache written: ${result.cacheDir}`, '');
  const lengths = Array.from({ length: m.maxDigits + 1 }, (_, n) => (n === 0 ? 'none' : `${n}`));
  lines.push(
    table([
      ['split', 'photos', 'images (NHWC uint8)', 'labels', ...lengths.map((l) => `${l}`)],
      ...names.map((s) => {
        const e = m.splits[s]!;
        return [s, String(e.count), `(${e.count}, ${height}, ${width}, ${channels})`, `(${e.count}, ${m.labelBytes})`, ...e.digitsHistogram.map(String)];
      }),
    ]),
    `(last columns: photos by digits in the number; letterboxed into ${width}x${height}, fill ${m.letterboxFill})`,
    '',
    `split: val ${m.options.valFraction} of the training photos, seed ${m.options.seed}`,
  );
  for (const [split, s] of [['train + val', m.source.train], ['test', m.source.test]] as const) {
    if (!s) continue;
    const left = [`${s.noBoxes.count} without boxes`, `${s.skipped.length} skipped`, ...(s.tooLong ? [`${s.tooLong} of more than ${m.maxDigits} digits`] : [])];
    lines.push(`${split}: ${s.csv}, ${s.rows} photos, ${s.used} cached, ${left.join(', ')}, sha256 ${s.sha256.slice(0, 12)}`);
    if (s.noBoxes.count) lines.push(`  without boxes: ${s.noBoxes.first.join(', ')}${s.noBoxes.count > s.noBoxes.first.length ? ', ...' : ''}`);
    for (const k of s.skipped.slice(0, SUMMARY_SKIPPED)) lines.push(`  skipped ${k.file} (line ${k.line}): ${k.reason}`);
    if (s.skipped.length > SUMMARY_SKIPPED) lines.push(`  ... and ${s.skipped.length - SUMMARY_SKIPPED} more (all in manifest.json)`);
  }
  if (!m.splits.test) lines.push('no test split');
  if (result.samplesPng) lines.push(`samples: ${result.samplesPng}`);
  return lines.join('\n') + '\n';
}
