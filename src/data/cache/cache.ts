/**
 * Reading the preprocess cache (format in cacheFormat.ts). Pixels stay uint8 here: scaling
 * to [0, 1] float32 happens per batch in training, so the whole train split costs 225 MB,
 * not 900 MB (the notebook's float32 copies ran it out of memory).
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { IMAGE_BYTES, type CacheSplit } from '../../config.js';
import { SvhnError, ioError } from '../../errors.js';
import { hashFile, removeStaleTemps, sha256 } from '../../util/atomic.js';
import { openRegularFile, readRegularFile } from '../../util/files.js';
import { isLockHeld } from '../../util/lock.js';
import { cacheFileSize, readExact, readManifestFile } from './cacheFiles.js';
import { CACHE_FORMAT, CACHE_SUBDIR, CACHE_VERSION, MANIFEST_FILE, type DatasetManifest, type SplitEntry } from './cacheFormat.js';

export interface OpenedCache {
  dir: string; // <dataDir>/cache
  manifest: DatasetManifest;
  manifestSha256: string; // of manifest.json's bytes: models record it to name their data
}

export interface CacheSplitData {
  split: CacheSplit;
  count: number;
  images: Uint8Array; // count x 32 x 32 x 3, NHWC
  labels: Uint8Array; // count digits 0..9
}

const RERUN = 're-run `svhn preprocess`';

function badCache(message: string): SvhnError {
  return new SvhnError('BAD_CACHE', message, { suggestion: RERUN });
}

/** Checks a parsed manifest's shape enough that later code can trust its fields. */
function checkManifest(m: unknown, path: string): DatasetManifest {
  const man = m as DatasetManifest;
  if (!man || typeof man !== 'object' || man.format !== CACHE_FORMAT) {
    throw badCache(`${path}: expected format '${CACHE_FORMAT}', got ${JSON.stringify((man as { format?: unknown })?.format)}`);
  }
  if (man.version !== CACHE_VERSION) {
    throw badCache(`${path}: expected cache version ${CACHE_VERSION}, got ${JSON.stringify(man.version)}`);
  }
  if (!man.splits || typeof man.splits !== 'object') throw badCache(`${path}: has no 'splits'`);
  for (const [name, s] of Object.entries(man.splits) as [string, SplitEntry][]) {
    if (!s || !Number.isSafeInteger(s.count) || s.count < 0 || !s.imagesFile || !s.labelsFile || !s.sha256) {
      throw badCache(`${path}: split '${name}' is incomplete`);
    }
  }
  return man;
}

/**
 * Opens <dataDir>/cache: reads manifest.json and checks every split file's size against its
 * count (count*3072 image bytes, count label bytes). `verify` names the splits to check
 * fully before use (true: all of them; see verifySplit): a few seconds for full SVHN.
 * First it removes the temporary caches of preprocess runs that were killed (SIGKILL, a
 * crash: up to gigabytes each), so they go with the next command that reads the cache, not
 * only with the next rebuild; not while a preprocess holds cache.lock.
 */
export async function openCache(dataDir: string, opts: { verify?: boolean | readonly CacheSplit[] } = {}): Promise<OpenedCache> {
  const dir = join(dataDir, CACHE_SUBDIR);
  // While a preprocess holds the lock, temporaries are its to judge (its pids may be another host's).
  if (!(await isLockHeld(`${dir}.lock`))) await removeStaleTemps(dir);
  const manifestPath = join(dir, MANIFEST_FILE);
  const missing = () => new SvhnError('MISSING_DATA', `${manifestPath} not found: no preprocessed data in ${dataDir}`, { suggestion: 'run `svhn preprocess` first' });
  const { bytes, parsed } = await readManifestFile(manifestPath, missing, RERUN);
  const manifest = checkManifest(parsed, manifestPath);

  for (const [name, s] of Object.entries(manifest.splits) as [CacheSplit, SplitEntry][]) {
    const files: [string, number][] = [
      [s.imagesFile, s.count * IMAGE_BYTES],
      [s.labelsFile, s.count],
    ];
    for (const [file, expected] of files) {
      const size = await cacheFileSize(join(dir, file));
      if (size === undefined) throw badCache(`${join(dir, file)} (split '${name}') is missing`);
      if (size !== expected) throw badCache(`${join(dir, file)}: expected ${expected} bytes for ${s.count} images, got ${size}`);
    }
    if (opts.verify === true || (Array.isArray(opts.verify) && opts.verify.includes(name))) await verifySplit(dir, s);
  }
  return { dir, manifest, manifestSha256: sha256(bytes) };
}

/**
 * Whether <dataDir>/cache holds the offline sample: train's defaults depend on it
 * (config.ts defaultRecipe). False where no cache can be read; the load that follows says why.
 */
export async function cacheIsSynthetic(dataDir: string): Promise<boolean> {
  try {
    return (await openCache(dataDir)).manifest.synthetic;
  } catch {
    return false;
  }
}

/**
 * The one check of a split's contents every stage that reads it runs (train, evaluate,
 * predict cache:SPLIT): each label byte is a digit 0..9, and both files hash to the
 * manifest's sha256 (a flipped bit anywhere is caught before any result is computed).
 */
async function verifySplit(dir: string, s: SplitEntry): Promise<void> {
  const labelsPath = join(dir, s.labelsFile);
  let labels: Buffer;
  try {
    labels = await readRegularFile(labelsPath);
  } catch (e) {
    throw ioError(labelsPath, 'read', e);
  }
  const bad = labels.findIndex((v) => v > 9);
  if (bad >= 0) throw badCache(`${labelsPath}: expected digits 0..9, got label ${labels[bad]} for image ${bad}`);
  for (const [path, want, got] of [
    [labelsPath, s.sha256.labels, sha256(labels)],
    [join(dir, s.imagesFile), s.sha256.images, undefined],
  ] as const) {
    const have = got ?? (await hashFile(path))['sha256'];
    if (have !== want) throw badCache(`${path}: sha256 differs from manifest.json (expected ${want.slice(0, 12)}..., got ${have?.slice(0, 12)}...)`);
  }
}

/**
 * The source .mat files that changed since the cache was built from them (a new download, a
 * regenerated sample), as one warning line each: training on the cache would use the old
 * data. Size and modification time decide when nothing changed; otherwise the file is
 * hashed (about a second for train_32x32.mat), so a copy or a touch is not reported.
 * Folder and CSV sources are not checked (hashing every image would cost more).
 */
export async function staleSourceWarnings(dataDir: string, cache: OpenedCache): Promise<string[]> {
  const warnings: string[] = [];
  for (const source of Object.values(cache.manifest.sources)) {
    if (!source || (source.kind ?? 'mat') !== 'mat' || typeof source.file !== 'string') continue;
    const path = join(dataDir, source.file);
    const st = await stat(path).catch(() => undefined);
    if (!st?.isFile()) continue; // deleted since: the cache is all there is
    if (st.size === source.size && (source.mtimeMs === undefined || st.mtimeMs === source.mtimeMs)) continue;
    const now = st.size === source.size ? (await hashFile(path))['sha256'] : undefined;
    if (now === source.sha256) continue;
    warnings.push(
      `${cache.dir} was built from an older ${path} (${source.size} bytes, sha256 ${source.sha256.slice(0, 12)}...; now ${st.size} bytes${now ? `, sha256 ${now.slice(0, 12)}...` : ''}); re-run \`svhn preprocess\` to use the new one`,
    );
  }
  return warnings;
}

function splitEntry(cache: OpenedCache, split: CacheSplit): SplitEntry {
  const entry = cache.manifest.splits[split];
  if (!entry) {
    const have = Object.keys(cache.manifest.splits).join(', ');
    throw new SvhnError('MISSING_DATA', `${join(cache.dir, MANIFEST_FILE)} has no '${split}' split (it has ${have})`, {
      suggestion: split === 'extra' ? 'run `svhn preprocess --extra`' : RERUN,
    });
  }
  return entry;
}

/** A whole split in memory, uint8 (train: 225 MB for full SVHN). */
export async function readCacheSplit(cache: OpenedCache, split: CacheSplit): Promise<CacheSplitData> {
  const s = splitEntry(cache, split);
  const images = await readExact(join(cache.dir, s.imagesFile), s.count * IMAGE_BYTES, badCache);
  const labels = await readExact(join(cache.dir, s.labelsFile), s.count, badCache);
  return { split, count: s.count, images, labels };
}

/**
 * A split in chunks of at most `chunk` images, so memory stays bounded (extra is 1.63 GB).
 * Each chunk has fresh buffers: a consumer may keep them.
 */
export async function* readCacheSplitChunks(
  cache: OpenedCache,
  split: CacheSplit,
  chunk: number,
): AsyncGenerator<{ start: number; count: number; images: Uint8Array; labels: Uint8Array }> {
  if (!Number.isSafeInteger(chunk) || chunk <= 0) throw new SvhnError('BAD_FLAG', `chunk: expected a positive integer, got ${chunk}`);
  const s = splitEntry(cache, split);
  const imagesPath = join(cache.dir, s.imagesFile);
  const labelsPath = join(cache.dir, s.labelsFile);
  let imagesFh, labelsFh;
  try {
    imagesFh = await openRegularFile(imagesPath);
    labelsFh = await openRegularFile(labelsPath);
  } catch (e) {
    await imagesFh?.close();
    throw ioError(imagesFh ? labelsPath : imagesPath, 'open', e);
  }
  try {
    for (let start = 0; start < s.count; start += chunk) {
      const count = Math.min(chunk, s.count - start);
      const images = new Uint8Array(count * IMAGE_BYTES);
      const labels = new Uint8Array(count);
      const ri = await imagesFh.read(images, 0, images.length, start * IMAGE_BYTES);
      const rl = await labelsFh.read(labels, 0, count, start);
      if (ri.bytesRead !== images.length || rl.bytesRead !== count) {
        throw badCache(`${imagesPath}: ended early at image ${start + Math.min(ri.bytesRead / IMAGE_BYTES, rl.bytesRead)} of ${s.count}`);
      }
      yield { start, count, images, labels };
    }
  } finally {
    await imagesFh.close();
    await labelsFh.close();
  }
}
