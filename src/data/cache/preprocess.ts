/**
 * `svhn preprocess`: the .mat files -> the training-ready cache (format in cacheFormat.ts).
 *
 *   train_32x32.mat -> stratified split -> train + val (optionally downsampled, stratified)
 *   test_32x32.mat  -> test, with ITS OWN labels (the notebook took y_test from the train file)
 *   extra_32x32.mat -> extra, streamed chunk by chunk straight to its file (--extra)
 *
 * or, from your own labelled images (data/images/labelled.ts: a folder of digit folders or a CSV):
 *
 *   --images DIR | --labels FILE.csv            -> stratified split -> train + val
 *   --test-images DIR | --test-labels FILE.csv  -> test (no test split without one)
 *
 * Such a source is decoded exactly as `svhn predict` decodes images; files that do not decode
 * are skipped and listed (manifest, summary, log), or refused with --strict. Its manifest
 * entry carries the folder or CSV, the file count and a content hash, so changed images
 * change the cache key.
 *
 * Idempotent: the manifest's `key` hashes the sources' sha256, the options and the format
 * version; an equal key means the cache on disk is what this run would write, so it is
 * reused. Source hashes are remembered with (size, mtimeMs), so a re-run does not even
 * re-read the sources. Atomic: everything is built in a temporary sibling directory
 * (buildDirAtomic), manifest.json last, then swapped in as <dataDir>/cache.
 */
import { existsSync } from 'node:fs';
import { stat, type FileHandle } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { DEFAULTS, IMAGE_BYTES, IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH, NUM_CLASSES, type CacheSplit, type SourceSplit } from '../../config.js';
import { SvhnError, ioError } from '../../errors.js';
import { getLogger } from '../../log.js';
import { createProgress, formatBytes, type ProgressOptions } from '../../progress.js';
import { buildDirAtomic, hashFile, sha256, writeFileAtomic, writeJsonAtomic } from '../../util/atomic.js';
import { describeFileKind, isNotRegularFile, openRegularFile, readRegularFile } from '../../util/files.js';
import { withLock } from '../../util/lock.js';
import { makeDirs } from '../../util/mkdirs.js';
import { Rng } from '../../util/rng.js';
import { openCache } from './cache.js';
import { assertReplaceable, SplitFiles } from './cacheFiles.js';
import { CACHE_FILES, CACHE_FORMAT, CACHE_SUBDIR, CACHE_VERSION, MANIFEST_FILE, SAMPLES_FILE, type DatasetManifest, type SourceEntry, type SplitEntry } from './cacheFormat.js';
import type { ImageSet } from './batches.js';
import { decodeLabelledImages, hashLabelledImages, listLabelledImages, missingDigits, type LabelledListing, type LabelledSource, type SkippedFile } from '../images/labelled.js';
import { readSvhnMat, readSvhnMatChunks } from '../mat/mat.js';
import { classCounts, sampleStratified, splitStratified } from './split.js';

export interface PreprocessOptions {
  dataDir: string;
  valFraction?: number; // share of train_32x32.mat held out for validation, in (0, 1)
  seed?: number; // split and sampling seed
  limit?: number | null; // keep at most this many training images (stratified); null: all
  valLimit?: number | null; // same for validation
  extra?: boolean; // also cache extra_32x32.mat
  chunk?: number; // images per chunk when streaming extra and writing splits
  sampleCount?: number; // images in samples.png (0: none)
  progress?: ProgressOptions['mode']; // default: bar on a TTY, plain lines otherwise
  /** Your own labelled images instead of train_32x32.mat: train and val come from them. */
  images?: LabelledSource;
  /** With `images`: the test split from a second labelled set (no test split without it). */
  testImages?: LabelledSource;
  /** A file of `images` / `testImages` that does not decode is an error instead of a skipped file. */
  strict?: boolean;
}

export interface PreprocessResult {
  cacheDir: string;
  manifest: DatasetManifest;
  manifestSha256: string;
  reused: boolean; // true when the cache was already up to date
  samplesPng: string | null;
  seconds: number;
}

export const SYNTHETIC_MARKER = 'SYNTHETIC.json';
const DEFAULT_SAMPLE_COUNT = 25;

export function sourceFileName(split: SourceSplit): string {
  return `${split}_32x32.mat`;
}

/** Validates options once, where they enter (STYLE lesson 5); BAD_FLAG exits 2. */
function resolveOptions(
  opts: PreprocessOptions,
): Required<Omit<PreprocessOptions, 'progress' | 'images' | 'testImages'>> & Pick<PreprocessOptions, 'progress' | 'images' | 'testImages'> {
  const o = {
    dataDir: opts.dataDir,
    valFraction: opts.valFraction ?? DEFAULTS.preprocess.valFraction,
    seed: opts.seed ?? DEFAULTS.preprocess.seed,
    limit: opts.limit ?? null,
    valLimit: opts.valLimit ?? null,
    extra: opts.extra ?? false,
    chunk: opts.chunk ?? DEFAULTS.preprocess.chunk,
    sampleCount: opts.sampleCount ?? DEFAULT_SAMPLE_COUNT,
    progress: opts.progress,
    images: opts.images,
    testImages: opts.testImages,
    strict: opts.strict ?? false,
  };
  const bad = (flag: string, expected: string, got: unknown) =>
    new SvhnError('BAD_FLAG', `${flag}: expected ${expected}, got ${JSON.stringify(got)}`);
  if (!(o.valFraction > 0 && o.valFraction < 1)) throw bad('--val-fraction', 'a number between 0 and 1 (exclusive)', o.valFraction);
  if (!Number.isSafeInteger(o.seed) || o.seed < 0) throw bad('--seed', 'a non-negative integer', o.seed);
  if (o.limit !== null && (!Number.isSafeInteger(o.limit) || o.limit <= 0)) throw bad('--limit', 'a positive integer', o.limit);
  if (o.valLimit !== null && (!Number.isSafeInteger(o.valLimit) || o.valLimit <= 0)) throw bad('--val-limit', 'a positive integer', o.valLimit);
  if (!Number.isSafeInteger(o.chunk) || o.chunk <= 0) throw bad('--chunk', 'a positive integer', o.chunk);
  if (!Number.isSafeInteger(o.sampleCount) || o.sampleCount < 0) throw bad('sampleCount', 'a non-negative integer', o.sampleCount);
  if (o.testImages && !o.images) {
    throw new SvhnError('BAD_FLAG', `${o.testImages.flag}: a test set from images goes with a training set from images (--images DIR or --labels FILE.csv)`);
  }
  if (o.images && o.extra) throw new SvhnError('BAD_FLAG', `--extra: caches extra_32x32.mat, not used with ${o.images.flag}`);
  return o;
}

/**
 * The offline sample marks itself twice: "SYNTHETIC" in the .mat header text, and a
 * SYNTHETIC.json beside the files listing each one. The marker counts for a file only while
 * it lists that file with its size, so real files downloaded over an old sample are not
 * mislabelled synthetic by a stale marker.
 */
async function listedInMarker(dataDir: string, path: string, size: number): Promise<boolean> {
  const marker = join(dataDir, SYNTHETIC_MARKER);
  if (!existsSync(marker)) return false;
  try {
    const m = JSON.parse((await readRegularFile(marker)).toString('utf8')) as { files?: Array<{ file?: string; bytes?: number }> };
    return (m.files ?? []).some((f) => f.file === basename(path) && f.bytes === size);
  } catch (e) {
    if (isNotRegularFile(e)) throw ioError(marker, 'read', e);
    return true; // an unreadable marker: err on the side of calling the data synthetic
  }
}

async function isSyntheticSource(dataDir: string, path: string, size: number): Promise<boolean> {
  if (await listedInMarker(dataDir, path, size)) return true;
  let fh: FileHandle | undefined;
  try {
    fh = await openRegularFile(path);
    const head = Buffer.alloc(116); // MAT v5 descriptive text
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    return head.subarray(0, bytesRead).toString('latin1').toUpperCase().includes('SYNTHETIC');
  } catch (e) {
    throw ioError(path, 'read', e);
  } finally {
    await fh?.close();
  }
}

/** The previous manifest, read loosely (only to reuse source hashes and compare keys). */
async function readPreviousManifest(cacheDir: string): Promise<DatasetManifest | undefined> {
  try {
    return JSON.parse((await readRegularFile(join(cacheDir, MANIFEST_FILE))).toString('utf8')) as DatasetManifest;
  } catch (e) {
    if (isNotRegularFile(e)) throw ioError(join(cacheDir, MANIFEST_FILE), 'read', e);
    return undefined;
  }
}

async function describeSource(
  dataDir: string,
  split: SourceSplit,
  previous: SourceEntry | undefined,
  mode: ProgressOptions['mode'],
): Promise<SourceEntry> {
  const file = sourceFileName(split);
  const path = join(dataDir, file);
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new SvhnError('MISSING_DATA', `${path} not found`, {
        suggestion: 'run `svhn download` first (or `svhn download --synthetic` for the offline sample)',
      });
    }
    throw ioError(path, 'read', e);
  }
  if (!st.isFile()) throw new SvhnError('MISSING_DATA', `${path}: expected a regular file, got ${describeFileKind(st)}`);
  const synthetic = await isSyntheticSource(dataDir, path, st.size);
  if (previous && previous.file === file && previous.size === st.size && previous.mtimeMs === st.mtimeMs && previous.sha256) {
    return { file, size: st.size, sha256: previous.sha256, synthetic, mtimeMs: st.mtimeMs };
  }
  // Only a line when done: hashing runs at disk speed (about a second for train_32x32.mat).
  const progress = createProgress({ label: `hash ${file}`, total: st.size, mode: st.size < 32 << 20 ? 'silent' : mode, unit: 'B', format: formatBytes });
  const { sha256: digest } = await hashFile(path);
  progress.stop();
  return { file, size: st.size, sha256: digest!, synthetic, mtimeMs: st.mtimeMs };
}

/** Appends images and labels to <split>.images.u8 / .labels.u8, hashing and counting as it goes. */
class SplitWriter {
  private count = 0;
  private readonly counts = new Array<number>(NUM_CLASSES).fill(0);

  private constructor(
    readonly split: CacheSplit,
    private readonly files: SplitFiles,
  ) {}

  static async create(dir: string, split: CacheSplit): Promise<SplitWriter> {
    return new SplitWriter(split, await SplitFiles.create(dir, split));
  }

  async append(images: Uint8Array, labels: Uint8Array): Promise<void> {
    if (images.length !== labels.length * IMAGE_BYTES) {
      throw new Error(`internal: ${labels.length} labels but ${images.length / IMAGE_BYTES} images for ${this.split}`);
    }
    classCounts(labels, this.counts);
    await this.files.append(images, labels);
    this.count += labels.length;
  }

  async finish(): Promise<SplitEntry> {
    const sha256 = await this.files.finish();
    return {
      count: this.count,
      shape: [this.count, IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_CHANNELS],
      imagesFile: this.files.imagesFile,
      labelsFile: this.files.labelsFile,
      classCounts: this.counts,
      sha256,
    };
  }

  async abort(): Promise<void> {
    await this.files.abort();
  }
}

/** Copies the images at `indices` (ascending) into a split file, `chunk` images at a time (bounded memory). */
async function writeGathered(dir: string, split: CacheSplit, images: Uint8Array, labels: Uint8Array, indices: Uint32Array, chunk: number): Promise<SplitEntry> {
  const w = await SplitWriter.create(dir, split);
  try {
    for (let start = 0; start < indices.length; start += chunk) {
      const n = Math.min(chunk, indices.length - start);
      const img = new Uint8Array(n * IMAGE_BYTES);
      const lab = new Uint8Array(n);
      for (let j = 0; j < n; j++) {
        const i = indices[start + j]!;
        img.set(images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES), j * IMAGE_BYTES);
        lab[j] = labels[i]!;
      }
      await w.append(img, lab);
    }
    return await w.finish();
  } catch (e) {
    await w.abort();
    throw e;
  }
}

/** Reading progress: the MAT reader reports images done out of the total. */
function readProgress(file: string, mode: ProgressOptions['mode']): { onProgress: (done: number, total: number) => void; stop: () => void; abort: () => void } {
  let bar: ReturnType<typeof createProgress> | undefined;
  return {
    onProgress(done, total) {
      bar ??= createProgress({ label: `read ${file}`, total, unit: 'img', mode, plainEverySec: 5 });
      bar.update(done);
    },
    stop() {
      bar?.stop();
    },
    abort() {
      bar?.abort?.();
    },
  };
}

type ResolvedOptions = ReturnType<typeof resolveOptions>;

/** The cache key: everything that determines the cache's bytes. */
export function cacheKey(sources: DatasetManifest['sources'], options: DatasetManifest['options'], sampleCount: number, synthetic: boolean): string {
  const hashes = Object.fromEntries(Object.entries(sources).map(([k, s]) => [k, s!.sha256]));
  return sha256(JSON.stringify({ format: CACHE_FORMAT, version: CACHE_VERSION, sources: hashes, options, sampleCount, synthetic }));
}

/**
 * Reuses the cache when it is up to date (reading only: a read-only data folder is fine), else
 * builds it under <dataDir>/cache.lock: a second preprocess of the same data directory is
 * refused, naming the first's pid, instead of racing it to the same files.
 */
export async function preprocess(options: PreprocessOptions): Promise<PreprocessResult> {
  const t0 = Date.now();
  const o = resolveOptions(options);
  const cacheDir = join(o.dataDir, CACHE_SUBDIR);
  await checkDataDir(o);
  const plan = await planCache(o);
  const reused = await reuseCache(o, plan, t0);
  if (reused) return reused;
  try {
    await makeDirs(o.dataDir); // --images/--labels: the data directory may be new, the cache its only content
  } catch (e) {
    throw ioError(o.dataDir, 'create', e);
  }
  return withLock(`${cacheDir}.lock`, `the cache ${cacheDir}`, () => buildCache(o, plan, t0), 'wait for it to finish, or pass another --data-dir');
}

/**
 * --data-dir, before anything is read or written: a folder, or absent (the .mat sources then
 * answer "not found, run `svhn download`"; --images/--labels create it for the cache).
 */
async function checkDataDir(o: ResolvedOptions): Promise<void> {
  let st;
  try {
    st = await stat(o.dataDir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw ioError(o.dataDir, 'read', e);
  }
  if (!st.isDirectory()) {
    const expected = o.images ? 'for the cache' : `holding ${sourceFileName('train')} and ${sourceFileName('test')}`;
    throw new SvhnError('BAD_INPUT', `--data-dir ${o.dataDir}: expected a folder ${expected}, got ${describeFileKind(st)}`);
  }
}

/** What this run would cache: its sources described and hashed, and the key they make with the options. */
interface CachePlan {
  cacheDir: string;
  previous: DatasetManifest | undefined;
  sources: DatasetManifest['sources'];
  listings: { train?: LabelledListing; test?: LabelledListing };
  synthetic: boolean;
  manifestOptions: DatasetManifest['options'];
  key: string;
}

/**
 * Sources: present? hashed (or remembered by size + mtime)? synthetic? Labelled images: listed
 * (label and duplicate errors here, before any work) and hashed by content. Reads only.
 */
async function planCache(o: ResolvedOptions): Promise<CachePlan> {
  const cacheDir = join(o.dataDir, CACHE_SUBDIR);
  const previous = await readPreviousManifest(cacheDir);
  const sources: DatasetManifest['sources'] = {};
  const listings: CachePlan['listings'] = {};
  if (o.images) {
    listings.train = await listLabelledImages(o.images);
    if (o.testImages) listings.test = await listLabelledImages(o.testImages);
    for (const s of ['train', 'test'] as const) if (listings[s]) sources[s] = await describeLabelledSource(listings[s], o.progress);
  } else {
    const splits: SourceSplit[] = o.extra ? ['train', 'test', 'extra'] : ['train', 'test'];
    for (const s of splits) sources[s] = await describeSource(o.dataDir, s, previous?.sources?.[s], o.progress);
  }
  const synthetic = Object.values(sources).some((s) => s!.synthetic);
  const manifestOptions = { valFraction: o.valFraction, seed: o.seed, limit: o.limit, valLimit: o.valLimit, extra: o.extra };
  const key = cacheKey(sources, manifestOptions, o.sampleCount, synthetic);
  if (synthetic) getLogger().warn({ dataDir: o.dataDir }, 'these are SYNTHETIC images (the offline sample), not SVHN: accuracy on them is not SVHN accuracy');
  return { cacheDir, previous, sources, listings, synthetic, manifestOptions, key };
}

/** The cache on disk when it is up to date: the same key and every file the right size (openCache checks sizes). */
async function reuseCache(o: ResolvedOptions, plan: CachePlan, t0: number): Promise<PreprocessResult | undefined> {
  const { cacheDir, previous, key } = plan;
  if (previous?.key !== key) return undefined;
  if (o.strict) refuseSkipped(previous.sources ?? {});
  try {
    const cache = await openCache(o.dataDir);
    const samples = cache.manifest.samples ? join(cacheDir, cache.manifest.samples.file) : null;
    if (!samples || existsSync(samples)) {
      getLogger().info({ cacheDir }, 'cache is up to date');
      return { cacheDir, manifest: cache.manifest, manifestSha256: cache.manifestSha256, reused: true, samplesPng: samples, seconds: (Date.now() - t0) / 1000 };
    }
  } catch (e) {
    getLogger().warn({ err: (e as Error).message }, 'existing cache is damaged; rebuilding');
  }
  return undefined;
}

/** Builds the cache (under its lock): in a temporary directory, swapped in only when complete. */
async function buildCache(o: ResolvedOptions, plan: CachePlan, t0: number): Promise<PreprocessResult> {
  const log = getLogger();
  const { cacheDir, sources, listings, synthetic, manifestOptions, key } = plan;

  await assertReplaceable(cacheDir, CACHE_FILES);
  // buildDirAtomic first removes a killed run's temporary cache (it can be gigabytes).
  log.info({ cacheDir, ...manifestOptions, synthetic }, 'building the cache');
  const manifest = await buildDirAtomic(cacheDir, async (tmp) => {
    const out: DatasetManifest['splits'] = {};

    // train + val first, in their own function: train's decoded images (225 MB for SVHN)
    // become garbage before test is read, which keeps peak memory near one split.
    const trainSource = listings.train
      ? { name: listings.train.source.path, load: () => decodeLabelled(listings.train!, sources.train!, o, true) }
      : { name: sourceFileName('train'), load: () => readTrainMat(o) };
    const { train, val, samples } = await writeTrainVal(tmp, o, synthetic, trainSource);
    out.train = train;
    out.val = val;

    if (listings.test) {
      const test = await decodeLabelled(listings.test, sources.test!, o, false);
      out.test = await writeGathered(tmp, 'test', test.images, test.labels, Uint32Array.from({ length: test.count }, (_, i) => i), o.chunk);
      log.info({ test: out.test.count }, `wrote test from ${listings.test.source.path}`);
    } else if (!o.images) {
      // test_32x32.mat -> test with ITS OWN labels; extra (531,131 images = 1.63 GB) likewise.
      // Both are streamed chunk by chunk into their files, never held whole.
      out.test = await writeStreamed(tmp, 'test', o);
      if (o.extra) out.extra = await writeStreamed(tmp, 'extra', o);
    } else {
      log.info(`no test split: pass --test-images DIR or --test-labels FILE.csv for one (evaluate also reads a folder directly: svhn evaluate --images DIR)`);
    }

    const m: DatasetManifest = {
      format: CACHE_FORMAT,
      version: CACHE_VERSION,
      createdAt: new Date().toISOString(),
      synthetic,
      key,
      options: manifestOptions,
      sources,
      splits: out,
      ...(samples ? { samples } : {}),
    };
    await writeJsonAtomic(join(tmp, MANIFEST_FILE), m); // last: a cache without it is incomplete
    return m;
  });

  const { manifestSha256 } = await openCache(o.dataDir);
  const samplesPng = manifest.samples ? join(cacheDir, manifest.samples.file) : null;
  log.info({ cacheDir, seconds: (Date.now() - t0) / 1000 }, 'cache written');
  return { cacheDir, manifest, manifestSha256, reused: false, samplesPng, seconds: (Date.now() - t0) / 1000 };
}

/** train_32x32.mat, whole, in memory; the reader already gives digits 0..9 (label 10 -> 0). */
async function readTrainMat(o: ResolvedOptions): Promise<ImageSet> {
  const rp = readProgress(sourceFileName('train'), o.progress);
  const train = await readSvhnMat(join(o.dataDir, sourceFileName('train')), { onProgress: rp.onProgress }).catch((e: unknown) => {
    rp.abort();
    throw e;
  });
  rp.stop();
  return train;
}

/** The training source (train_32x32.mat or labelled images) -> train + val (stratified, optionally downsampled) + samples.png. */
async function writeTrainVal(
  tmp: string,
  o: ResolvedOptions,
  synthetic: boolean,
  source: { name: string; load: () => Promise<ImageSet> },
): Promise<{ train: SplitEntry; val: SplitEntry; samples?: DatasetManifest['samples'] }> {
  const log = getLogger();
  const train = await source.load();
  const split = splitStratified(train.labels, { valFraction: o.valFraction, seed: o.seed });
  // Downsampling draws from separate seeds so it does not disturb the split itself.
  const trainIdx = o.limit === null ? split.train : pick(split.train, sampleStratified(gatherLabels(train.labels, split.train), o.limit, o.seed + 1));
  const valIdx = o.valLimit === null ? split.val : pick(split.val, sampleStratified(gatherLabels(train.labels, split.val), o.valLimit, o.seed + 2));
  if (o.limit !== null && o.limit > split.train.length) log.info({ limit: o.limit, available: split.train.length }, '--limit exceeds the training split; keeping all');
  const trainEntry = await writeGathered(tmp, 'train', train.images, train.labels, trainIdx, o.chunk);
  const valEntry = await writeGathered(tmp, 'val', train.images, train.labels, valIdx, o.chunk);
  log.info({ train: trainEntry.count, val: valEntry.count }, `wrote train and val from ${source.name}`);

  let samples: DatasetManifest['samples'];
  const n = Math.min(o.sampleCount, trainIdx.length);
  if (n > 0) {
    const title = synthetic ? 'Training samples: SYNTHETIC offline sample, not SVHN' : o.images ? `Training samples: ${source.name}` : 'SVHN training samples';
    const png = await renderSamples(train.images, train.labels, trainIdx, n, o.seed, title);
    await writeFileAtomic(join(tmp, SAMPLES_FILE), png);
    samples = { file: SAMPLES_FILE, count: n, sha256: sha256(png) };
  }
  return { train: trainEntry, val: valEntry, samples };
}

/** A labelled set's manifest entry: what it is, how many files, its content hash. */
async function describeLabelledSource(listing: LabelledListing, mode: ProgressOptions['mode']): Promise<SourceEntry> {
  const { sha256: digest, bytes } = await hashLabelledImages(listing, mode);
  return { file: listing.source.path, kind: listing.source.kind, size: bytes, sha256: digest, synthetic: false, files: listing.files.length };
}

/** Skipped files logged one by one up to this many; the manifest and the summary list them all. */
const WARN_SKIPPED = 10;

/**
 * Decodes a labelled set and records its skipped files in its manifest entry. A training set
 * must hold every digit; a test set may lack some (warned: their rows of a report are empty).
 */
async function decodeLabelled(listing: LabelledListing, entry: SourceEntry, o: ResolvedOptions, training: boolean): Promise<ImageSet> {
  const log = getLogger();
  let logged = 0;
  const set = await decodeLabelledImages(listing, {
    strict: o.strict,
    requireEveryDigit: training,
    progress: o.progress,
    onSkipped: (s) => {
      if (++logged <= WARN_SKIPPED) log.warn({ file: s.file, reason: s.reason }, `skipped ${s.file}: ${s.reason}`);
      else if (logged === WARN_SKIPPED + 1) log.warn('more files skipped: the summary and manifest.json list them all');
    },
  });
  entry.skipped = set.skipped;
  if (set.skipped.length) log.warn({ source: listing.source.path, skipped: set.skipped.length }, `${listing.source.path}: skipped ${set.skipped.length} of ${listing.files.length} files (pass --strict to refuse them)`);
  const missing = missingDigits(set.classCounts);
  if (missing.length) log.warn(`${listing.source.flag} ${listing.source.path}: no images for digit(s) ${missing.join(', ')}`);
  return set;
}

/** --strict on an up-to-date cache: the files its build skipped are still there. */
function refuseSkipped(sources: DatasetManifest['sources']): void {
  for (const s of Object.values(sources)) {
    const first = s?.skipped?.[0];
    if (first) {
      throw new SvhnError('BAD_INPUT', `${first.file}: ${first.reason}`, { suggestion: 'remove or fix the file, or drop --strict to skip unreadable files' });
    }
  }
}

/** A whole source file streamed into the cache split of the same name, `o.chunk` images at a time. */
async function writeStreamed(tmp: string, split: 'test' | 'extra', o: ResolvedOptions): Promise<SplitEntry> {
  const w = await SplitWriter.create(tmp, split);
  const progress = readProgress(sourceFileName(split), o.progress);
  try {
    for await (const c of readSvhnMatChunks(join(o.dataDir, sourceFileName(split)), { chunk: o.chunk, onProgress: progress.onProgress })) {
      await w.append(c.images, c.labels);
    }
    progress.stop();
    const entry = await w.finish();
    getLogger().info({ [split]: entry.count }, `wrote ${split} from ${sourceFileName(split)}`);
    return entry;
  } catch (e) {
    progress.abort();
    await w.abort();
    throw e;
  }
}

function gatherLabels(labels: Uint8Array, indices: Uint32Array): Uint8Array {
  const out = new Uint8Array(indices.length);
  for (let j = 0; j < indices.length; j++) out[j] = labels[indices[j]!]!;
  return out;
}

/** indices[positions], keeping ascending order (positions are sorted). */
function pick(indices: Uint32Array, positions: Uint32Array): Uint32Array {
  return positions.map((p) => indices[p]!);
}

/** A grid of random training images with their digit labels (the notebook showed five). */
async function renderSamples(images: Uint8Array, labels: Uint8Array, trainIdx: Uint32Array, n: number, seed: number, title: string): Promise<Buffer> {
  const chosen = new Rng(seed + 3).shuffle(Uint32Array.from(trainIdx)).subarray(0, n);
  const tiles = new Uint8Array(n * IMAGE_BYTES);
  const captions: string[] = [];
  chosen.forEach((i, j) => {
    tiles.set(images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES), j * IMAGE_BYTES);
    captions.push(`label ${labels[i]}`);
  });
  const { renderImageGrid } = await import('../../report/grid.js');
  return renderImageGrid({
    images: tiles,
    count: n,
    captions,
    columns: Math.min(n, 5),
    title,
  });
}

// ---------------------------------------------------------------------------------------
// The EDA summary the CLI prints (a pure function of the manifest, so it is testable).

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd()).join('\n');
}

export function formatPreprocessSummary(result: PreprocessResult): string {
  const m = result.manifest;
  const names = (['train', 'val', 'test', 'extra'] as const).filter((s) => m.splits[s]);
  const lines: string[] = [];
  if (m.synthetic) lines.push('WARNING: these are SYNTHETIC images (the offline sample), not SVHN: accuracy on them says nothing about SVHN.', '');
  lines.push(`${result.reused ? 'Cache is up to date' : 'Cache written'}: ${result.cacheDir}`, '');
  lines.push(
    table([
      ['split', 'images', 'shape (NHWC uint8)', 'labels'],
      ...names.map((s) => {
        const e = m.splits[s]!;
        return [s, String(e.count), `(${e.shape.join(', ')})`, `(${e.count},)`];
      }),
    ]),
    '',
    'Class distribution (images per digit; % of the split)',
  );
  const digits = Array.from({ length: NUM_CLASSES }, (_, d) => String(d));
  const rows: string[][] = [['split', ...digits]];
  for (const s of names) {
    const e = m.splits[s]!;
    rows.push([s, ...e.classCounts.map(String)]);
    rows.push(['', ...e.classCounts.map((c) => (e.count ? `${((100 * c) / e.count).toFixed(1)}%` : '-'))]);
  }
  lines.push(table(rows), '');
  lines.push(`split: val ${m.options.valFraction} of ${m.sources.train?.file ?? 'train'}, seed ${m.options.seed}` +
    (m.options.limit !== null ? `, --limit ${m.options.limit}` : '') + (m.options.valLimit !== null ? `, --val-limit ${m.options.valLimit}` : ''));
  lines.push(...formatLabelledSources(m));
  if (result.samplesPng) lines.push(`samples: ${result.samplesPng}`);
  return lines.join('\n') + '\n';
}

/** Skipped files listed in the summary; manifest.json lists them all. */
const SUMMARY_SKIPPED = 20;

/** Labelled sources: where from, how many files, the hash; every skipped file with its reason. */
function formatLabelledSources(m: DatasetManifest): string[] {
  const lines: string[] = [];
  for (const split of ['train', 'test'] as const) {
    const s = m.sources[split];
    if (!s || (s.kind !== 'folder' && s.kind !== 'csv')) continue;
    const used = split === 'train' ? 'train + val' : 'test';
    lines.push(`${used}: ${s.kind} ${s.file}, ${s.files ?? '?'} files, ${s.skipped?.length ?? 0} skipped, sha256 ${s.sha256.slice(0, 12)}`);
    const skipped: SkippedFile[] = s.skipped ?? [];
    for (const k of skipped.slice(0, SUMMARY_SKIPPED)) lines.push(`  skipped ${k.file}: ${k.reason}`);
    if (skipped.length > SUMMARY_SKIPPED) lines.push(`  ... and ${skipped.length - SUMMARY_SKIPPED} more (all in manifest.json)`);
  }
  if (m.sources.train?.kind && m.sources.train.kind !== 'mat' && !m.splits.test) lines.push('no test split (--test-images DIR or --test-labels FILE.csv adds one)');
  return lines;
}
