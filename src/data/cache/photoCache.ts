/**
 * The photo cache: whole house-number photos, letterboxed for the reader, with each digit's
 * box. The contract between `svhn preprocess --format full` (./photoPreprocess.ts) and the
 * reader's training; a sibling of the digit cache (./cacheFormat.ts), never inside it:
 *
 *   <dataDir>/cache-full/manifest.json         PhotoCacheManifest below; written LAST
 *   <dataDir>/cache-full/<split>.images.u8      N x 48 x 96 x 3 uint8, NHWC (READER_INPUT)
 *   <dataDir>/cache-full/<split>.labels.u8      N x LABEL_BYTES uint8 records (tasks/read/format.ts)
 *   <dataDir>/cache-full/<split>.photos.json    N x { file, number, width, height }: the photos'
 *                                                own sizes, to map boxes back (boxToPhoto)
 *   <dataDir>/cache-full/samples.png            training photos as letterboxed, boxes drawn
 *
 * for split in train, val (both from the training source) and test. numpy reads a split as
 * numpy.fromfile(path, np.uint8).reshape(-1, 48, 96, 3).
 */
import { join } from 'node:path';
import { SvhnError } from '../../errors.js';
import { hashFile, removeStaleTemps, sha256 } from '../../util/atomic.js';
import { readJsonFile } from '../../util/json.js';
import { isLockHeld } from '../../util/lock.js';
import { LABEL_BYTES, LETTERBOX_FILL, MAX_DIGITS, READER_IMAGE_BYTES, READER_INPUT } from '../../tasks/read/format.js';
import { cacheFileSize, readExact, readManifestFile } from './cacheFiles.js';

export const PHOTO_CACHE_FORMAT = 'svhn-photo-cache' as const;
export const PHOTO_CACHE_VERSION = 1 as const;
export const PHOTO_CACHE_SUBDIR = 'cache-full';
export const PHOTO_MANIFEST_FILE = 'manifest.json';
export const PHOTO_SAMPLES_FILE = 'samples.png';
export const PHOTO_SPLITS = ['train', 'val', 'test'] as const;
export type PhotoSplit = (typeof PHOTO_SPLITS)[number];

/** Every name preprocess writes in cache-full/: a folder holding only these is one it may replace. */
export const PHOTO_CACHE_FILES: ReadonlySet<string> = new Set([
  PHOTO_MANIFEST_FILE,
  PHOTO_SAMPLES_FILE,
  ...PHOTO_SPLITS.flatMap((s) => [`${s}.images.u8`, `${s}.labels.u8`, `${s}.photos.json`]),
]);

/** One cached photo: the file as its CSV names it, its number, and its own size in pixels (after EXIF orientation). */
export interface PhotoInfo {
  file: string;
  number: string;
  width: number;
  height: number;
}

/** A split in memory: images count x READER_IMAGE_BYTES, labels count x LABEL_BYTES. */
export interface PhotoSet {
  count: number;
  images: Uint8Array;
  labels: Uint8Array;
  photos?: PhotoInfo[];
}

export interface PhotoSplitEntry {
  count: number;
  imagesFile: string; // relative to the cache folder
  labelsFile: string;
  photosFile: string;
  /** Photos by number length: index 0 = no number, .. MAX_DIGITS. */
  digitsHistogram: number[];
  sha256: { images: string; labels: string; photos: string };
}

/** A photo left out of the cache, and why. */
export interface SkippedPhoto {
  file: string;
  line: number; // in its CSV
  reason: string;
}

/** A training or test source: a CSV of `file,number[,boxes]` rows (data/images/photoLabels.ts). */
export interface PhotoSourceEntry {
  /** The CSV as given (--labels FILE.csv), or <dataDir>/full/<split>.csv. */
  csv: string;
  sha256: string; // of the CSV's bytes (the photos themselves are not hashed)
  rows: number;
  /** Photos cached from it. */
  used: number;
  /** Rows without boxes (a detector cannot learn from them): how many, and the first few files. */
  noBoxes: { count: number; first: string[] };
  /** Photos of more than MAX_DIGITS digits (no record holds them). */
  tooLong: number;
  /** Photos that did not decode, or whose boxes leave them: every one, with its reason. */
  skipped: SkippedPhoto[];
}

export interface PhotoCacheManifest {
  format: typeof PHOTO_CACHE_FORMAT;
  version: typeof PHOTO_CACHE_VERSION;
  createdAt: string; // ISO time
  /** True when the source is the synthetic photo sample: its accuracy is NOT SVHN's. */
  synthetic: boolean;
  input: { height: number; width: number; channels: number };
  letterboxFill: number;
  maxDigits: number;
  labelBytes: number;
  options: { valFraction: number; seed: number };
  source: { kind: 'full' | 'csv'; train: PhotoSourceEntry; test?: PhotoSourceEntry };
  splits: Partial<Record<PhotoSplit, PhotoSplitEntry>>;
  samples?: { file: string; count: number; sha256: string };
}

export interface OpenedPhotoCache {
  dir: string; // <dataDir>/cache-full
  manifest: PhotoCacheManifest;
  manifestSha256: string; // of manifest.json's bytes: a model records it to name its data
}

const RERUN = 'run `svhn preprocess --format full`';

function badCache(message: string): SvhnError {
  return new SvhnError('BAD_CACHE', message, { suggestion: RERUN });
}

/** The manifest's shape, and the reader's formats it was written in: anything else is refused, naming the field. */
function checkManifest(m: unknown, path: string): PhotoCacheManifest {
  const man = m as PhotoCacheManifest;
  if (!man || typeof man !== 'object' || man.format !== PHOTO_CACHE_FORMAT) {
    throw badCache(`${path}: expected format '${PHOTO_CACHE_FORMAT}', got ${JSON.stringify((man as { format?: unknown })?.format)}`);
  }
  if (man.version !== PHOTO_CACHE_VERSION) throw badCache(`${path}: expected photo cache version ${PHOTO_CACHE_VERSION}, got ${JSON.stringify(man.version)}`);
  const input = man.input;
  if (input?.height !== READER_INPUT.height || input.width !== READER_INPUT.width || input.channels !== READER_INPUT.channels) {
    throw badCache(`${path}: expected input ${READER_INPUT.height}x${READER_INPUT.width}x${READER_INPUT.channels}, got ${JSON.stringify(input)}`);
  }
  if (man.labelBytes !== LABEL_BYTES || man.maxDigits !== MAX_DIGITS || man.letterboxFill !== LETTERBOX_FILL) {
    throw badCache(`${path}: expected labelBytes ${LABEL_BYTES}, maxDigits ${MAX_DIGITS}, letterboxFill ${LETTERBOX_FILL}, got ${man.labelBytes}, ${man.maxDigits}, ${man.letterboxFill}`);
  }
  if (!man.splits || typeof man.splits !== 'object') throw badCache(`${path}: has no 'splits'`);
  for (const [name, s] of Object.entries(man.splits)) {
    if (!(PHOTO_SPLITS as readonly string[]).includes(name)) throw badCache(`${path}: expected splits ${PHOTO_SPLITS.join(', ')}, got '${name}'`);
    if (!s || !Number.isSafeInteger(s.count) || s.count < 0 || !s.imagesFile || !s.labelsFile || !s.photosFile || !s.sha256) {
      throw badCache(`${path}: split '${name}' is incomplete`);
    }
  }
  return man;
}

/** Each record's count is 0..MAX_DIGITS and each box lies in the input (a tiny digit in a large photo may round to an empty one). */
export function checkLabelRecords(labels: Uint8Array, path: string): void {
  for (let i = 0; i * LABEL_BYTES < labels.length; i++) {
    const o = i * LABEL_BYTES;
    const n = labels[o]!;
    if (n > MAX_DIGITS) throw badCache(`${path}: record ${i}: expected at most ${MAX_DIGITS} digits, got ${n}`);
    for (let d = 0; d < n; d++) {
      const [l, t, r, b] = labels.subarray(o + 1 + 4 * d, o + 5 + 4 * d);
      if (!(l! <= r! && t! <= b! && r! <= READER_INPUT.width && b! <= READER_INPUT.height)) {
        throw badCache(`${path}: record ${i}: box ${d + 1} '${l} ${t} ${r} ${b}' is not a box in the ${READER_INPUT.width}x${READER_INPUT.height} input`);
      }
    }
  }
}

/** Every file of a split hashes to the manifest's sha256, and its records are well formed. */
async function verifySplit(dir: string, name: string, s: PhotoSplitEntry): Promise<void> {
  for (const [file, want] of [
    [s.imagesFile, s.sha256.images],
    [s.labelsFile, s.sha256.labels],
    [s.photosFile, s.sha256.photos],
  ] as const) {
    const path = join(dir, file);
    const have = (await hashFile(path))['sha256']!;
    if (have !== want) throw badCache(`${path} (split '${name}'): sha256 differs from manifest.json (expected ${want.slice(0, 12)}..., got ${have.slice(0, 12)}...)`);
  }
  checkLabelRecords(await readExact(join(dir, s.labelsFile), s.count * LABEL_BYTES, badCache), join(dir, s.labelsFile));
}

/**
 * Opens <dataDir>/cache-full: reads manifest.json, checks it and every split file's size
 * against its count (count x 13,824 image bytes, count x LABEL_BYTES label bytes, a photos
 * list). `verify`: also each file's sha256 and each label record. A killed run's temporary
 * cache is removed first, unless a preprocess holds the lock.
 */
export async function openPhotoCache(dataDir: string, opts: { verify?: boolean } = {}): Promise<OpenedPhotoCache> {
  const dir = join(dataDir, PHOTO_CACHE_SUBDIR);
  if (!(await isLockHeld(`${dir}.lock`))) await removeStaleTemps(dir);
  const manifestPath = join(dir, PHOTO_MANIFEST_FILE);
  const missing = () => new SvhnError('MISSING_DATA', `${manifestPath} not found: no preprocessed photos in ${dataDir}`, { suggestion: RERUN });
  const { bytes, parsed } = await readManifestFile(manifestPath, missing, RERUN);
  const manifest = checkManifest(parsed, manifestPath);
  for (const [name, s] of Object.entries(manifest.splits) as [PhotoSplit, PhotoSplitEntry][]) {
    const files: [string, number | undefined, string][] = [
      [s.imagesFile, s.count * READER_IMAGE_BYTES, 'images'],
      [s.labelsFile, s.count * LABEL_BYTES, 'label records'],
      [s.photosFile, undefined, 'photos'],
    ];
    for (const [file, expected, what] of files) {
      const path = join(dir, file);
      const size = await cacheFileSize(path);
      if (size === undefined) throw badCache(`${path} (split '${name}') is missing`);
      if (expected !== undefined && size !== expected) throw badCache(`${path}: expected ${expected} bytes for ${s.count} ${what}, got ${size}`);
    }
    if (opts.verify) await verifySplit(dir, name, s);
  }
  return { dir, manifest, manifestSha256: sha256(bytes) };
}

/** The photos list of a split: `count` entries of { file, number, width, height }. */
async function readPhotoInfos(path: string, count: number): Promise<PhotoInfo[]> {
  const photos = (await readJsonFile(path, { code: 'BAD_CACHE', suggestion: RERUN })) as PhotoInfo[];
  if (!Array.isArray(photos) || photos.length !== count) {
    throw badCache(`${path}: expected a list of ${count} photos, got ${Array.isArray(photos) ? `${photos.length}` : typeof photos}`);
  }
  for (const [i, p] of photos.entries()) {
    if (!p || typeof p.file !== 'string' || typeof p.number !== 'string' || !(p.width > 0) || !(p.height > 0)) {
      throw badCache(`${path}: photo ${i}: expected { file, number, width, height }, got ${JSON.stringify(p)}`);
    }
  }
  return photos;
}

/** A whole split in memory, uint8 (real SVHN's train: 33,402 photos, 462 MB of images). */
export async function readPhotoSplit(cache: OpenedPhotoCache, split: PhotoSplit): Promise<PhotoSet> {
  const s = cache.manifest.splits[split];
  if (!s) {
    const have = Object.keys(cache.manifest.splits).join(', ') || 'none';
    throw new SvhnError('MISSING_DATA', `${join(cache.dir, PHOTO_MANIFEST_FILE)} has no '${split}' split (it has ${have})`, {
      suggestion: split === 'test' ? `${RERUN} with a test source (--test-labels FILE.csv, or <data-dir>/full/test.csv)` : RERUN,
    });
  }
  const images = await readExact(join(cache.dir, s.imagesFile), s.count * READER_IMAGE_BYTES, badCache);
  const labels = await readExact(join(cache.dir, s.labelsFile), s.count * LABEL_BYTES, badCache);
  const photos = await readPhotoInfos(join(cache.dir, s.photosFile), s.count);
  return { count: s.count, images, labels, photos };
}
