/**
 * The preprocess cache: the contract between `svhn preprocess` and everything after it.
 * An open format anyone can read (numpy.fromfile(path, np.uint8).reshape(-1, 32, 32, 3)):
 *
 *   <dataDir>/cache/manifest.json          DatasetManifest below; written LAST, so a cache
 *                                           without it is never taken as complete
 *   <dataDir>/cache/<split>.images.u8       N x 32 x 32 x 3 uint8, NHWC, row-major
 *   <dataDir>/cache/<split>.labels.u8       N uint8 digits 0..9 (SVHN's label 10 is digit 0)
 *
 *   <dataDir>/cache/samples.png            a grid of random training images with their labels
 *
 * for split in train, val, test and (with --extra) extra. From your own labelled images
 * (--images DIR / --labels FILE.csv) train and val come from them and test from a second set
 * (--test-images / --test-labels), or there is no test split.
 */
import { CACHE_SPLITS, type CacheSplit } from '../../config.js';

export const CACHE_FORMAT = 'svhn-cache' as const;
export const CACHE_VERSION = 1 as const;
export const CACHE_SUBDIR = 'cache';
export const MANIFEST_FILE = 'manifest.json';
export const SAMPLES_FILE = 'samples.png';

/** Every name preprocess writes in the cache folder: a folder holding only these is a cache it may replace. */
export const CACHE_FILES: ReadonlySet<string> = new Set([
  MANIFEST_FILE,
  SAMPLES_FILE,
  ...CACHE_SPLITS.flatMap((s) => [`${s}.images.u8`, `${s}.labels.u8`]),
]);

export interface SplitEntry {
  count: number;
  shape: [number, number, number, number]; // [N, 32, 32, 3]
  imagesFile: string; // relative to the cache dir
  labelsFile: string;
  classCounts: number[]; // length 10, index = digit
  sha256: { images: string; labels: string };
}

export interface SourceEntry {
  /** mat: relative to dataDir, e.g. train_32x32.mat; folder / csv: the path given (--images DIR, --labels FILE.csv). */
  file: string;
  /** Absent in caches from before labelled sources: 'mat'. */
  kind?: 'mat' | 'folder' | 'csv';
  size: number; // bytes (folder / csv: of every listed image file)
  /** mat: the file's sha256; folder / csv: sha256 over each file's label, name and sha256 (data/images/labelled.ts). */
  sha256: string;
  synthetic: boolean;
  /** Modification time when hashed (optional): an unchanged (size, mtimeMs) lets a re-run skip re-hashing. */
  mtimeMs?: number;
  /** folder / csv: files listed, and those skipped (not decodable) with their reason. */
  files?: number;
  skipped?: Array<{ file: string; label: number; reason: string }>;
}

export interface DatasetManifest {
  format: typeof CACHE_FORMAT;
  version: typeof CACHE_VERSION;
  createdAt: string; // ISO time
  synthetic: boolean; // true when any source is the offline sample: its accuracy is NOT SVHN's
  /** Everything that determines the cache's bytes; equal keys mean the cache can be reused. */
  key: string;
  options: { valFraction: number; seed: number; limit: number | null; valLimit: number | null; extra: boolean };
  sources: Partial<Record<'train' | 'test' | 'extra', SourceEntry>>;
  splits: Partial<Record<CacheSplit, SplitEntry>>;
  /** Optional: the PNG grid of random training images written beside the splits. */
  samples?: { file: string; count: number; sha256: string };
}
