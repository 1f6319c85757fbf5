/**
 * The offline sample: SVHN-like 32x32 digit crops made from code, written under SVHN's own
 * file names and layout (see matWriter.ts), so the rest of the pipeline runs unchanged with
 * no network. Every output says it is synthetic: a SYNTHETIC.json marker + manifest beside
 * the files and 'SYNTHETIC' in each .mat header. Its accuracy is not SVHN's.
 *
 * One image: a house number set in a real typeface, photographed, cropped and resized to
 * 32x32 as SVHN's crops were (digitScene.ts; fonts from the @fontsource packages, fonts.ts).
 *
 * Deterministic: each split draws from its own Rng seeded from (seed, split name), so test
 * and extra are unseen by train, and the same seed gives the same bytes
 * (for the same font packages: the manifest names the font set).
 */
import { join } from 'node:path';
import { DEFAULTS, IMAGE_BYTES, NUM_CLASSES, type SourceSplit } from '../../config.js';
import { SvhnError, ioError } from '../../errors.js';
import { fileSize, hashFile, writeJsonAtomic } from '../../util/atomic.js';
import { isNotRegularFile, openRegularFile, readRegularFile } from '../../util/files.js';
import { Rng } from '../../util/rng.js';
import { DigitSceneRenderer } from './digitScene.js';
import { loadFontSet } from './fonts.js';
import { writeSvhnMat, type SvhnChunk } from '../mat/matWriter.js';
import { makeDirs } from '../../util/mkdirs.js';

export const SYNTHETIC_GENERATOR_VERSION = 2;
export const SYNTHETIC_MARKER_FILE = 'SYNTHETIC.json';
export const SYNTHETIC_NOTE =
  'Synthetic SVHN-like digits made offline by the svhn generator, NOT real SVHN: accuracy measured on them says nothing about accuracy on SVHN.';

export type SyntheticSize = 'small' | 'full';
const SPLITS: readonly SourceSplit[] = ['train', 'test', 'extra'];

/**
 * zlib level of the written files. Noisy 32x32 crops barely compress (level 1 keeps 91.8%
 * of the bytes, level 6 91.4%), and deflate, not drawing, bounds `--size full`: measured in
 * CPU time, level 1 deflates ~12.8k images/s, level 6 ~11.5k, drawing ~17k. Level 1 is
 * still an ordinary zlib stream.
 */
const ZLIB_LEVEL = 1;

/** Images per generated chunk: small enough that deflate (thread pool) overlaps generation. */
const CHUNK_IMAGES = 256;

export interface GenerateSyntheticOptions {
  dataDir: string;
  size: SyntheticSize;
  seed: number;
  splits: SourceSplit[];
  onProgress?: (split: string, done: number, total: number) => void;
  force?: boolean; // regenerate even when a file from the same seed, size and version is present
}

export interface SyntheticFile {
  split: string;
  path: string;
  count: number;
  bytes: number;
  sha256: string;
}

export interface SyntheticManifest {
  synthetic: true;
  note: string;
  generator: { name: string; version: number; fontSet: string; faces: number };
  seed: number;
  size: SyntheticSize;
  counts: Record<string, number>;
  files: Array<{ split: string; file: string; count: number; bytes: number; sha256: string; seed: number; size: SyntheticSize; splitSeed: number; classCounts: number[] }>;
}

/** The seed of one split's stream: FNV-1a over "seed:split", so splits never share images. */
export function splitSeed(seed: number, split: string): number {
  let h = 0x811c9dc5;
  for (const ch of `${seed}:${split}`) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** `count` images from `rng`, NHWC uint8, with their digits 0..9. For tests, grids and benchmarks. */
export function generateImages(rng: Rng, count: number, renderer = new DigitSceneRenderer()): SvhnChunk {
  const images = new Uint8Array(count * IMAGE_BYTES);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) labels[i] = renderer.render(rng, images, i * IMAGE_BYTES);
  return { images, labels };
}

/** The images of one split as chunks; yields to the event loop between chunks so deflate keeps up. */
async function* syntheticChunks(rng: Rng, count: number, classCounts: number[]): AsyncGenerator<SvhnChunk> {
  const renderer = new DigitSceneRenderer();
  for (let done = 0; done < count; ) {
    const k = Math.min(CHUNK_IMAGES, count - done);
    const chunk = generateImages(rng, k, renderer);
    for (const l of chunk.labels) classCounts[l]!++;
    done += k;
    yield chunk;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** How every synthetic MAT file's header text starts, whatever its generator version, size or seed. */
const SYNTHETIC_HEADER_PREFIX = 'MATLAB 5.0 MAT-file, written by svhn: SYNTHETIC';

function matHeaderText(seed: number, size: SyntheticSize, split: string): string {
  return `${SYNTHETIC_HEADER_PREFIX} offline sample, NOT real SVHN (v${SYNTHETIC_GENERATOR_VERSION} ${size} seed ${seed} ${split})`;
}

/**
 * What is at path, for a split the sample is about to write: nothing, the synthetic sample
 * (its MAT header says so, any version), or something else: real SVHN, a user's file, a
 * FIFO. Only the first two may be replaced.
 */
async function existingSplitFile(path: string): Promise<'none' | 'synthetic' | 'other'> {
  let fh;
  try {
    fh = await openRegularFile(path); // a FIFO is refused at once, not waited on
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'none' : 'other';
  }
  try {
    const head = Buffer.alloc(SYNTHETIC_HEADER_PREFIX.length);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    return bytesRead === head.length && head.toString('latin1') === SYNTHETIC_HEADER_PREFIX ? 'synthetic' : 'other';
  } finally {
    await fh.close();
  }
}

/**
 * A sample's SYNTHETIC.json (the crops' or the photos'), or undefined when there is none or it
 * is not one (damaged, or another shape): the sample is then made again. A FIFO is refused.
 */
export async function readSyntheticManifest<M extends { synthetic: true; files: unknown[] }>(path: string): Promise<M | undefined> {
  try {
    const m = JSON.parse((await readRegularFile(path)).toString('utf8')) as M;
    return m && m.synthetic === true && Array.isArray(m.files) ? m : undefined;
  } catch (e) {
    if (isNotRegularFile(e)) throw ioError(path, 'read', e);
    return undefined;
  }
}

/** --size, --seed and --split of either synthetic sample, checked; the splits asked, each once. */
export function checkSampleOptions(opts: { size: string; seed: number; splits: readonly SourceSplit[] }): SourceSplit[] {
  const { size, seed } = opts;
  if (size !== 'small' && size !== 'full') throw new SvhnError('BAD_FLAG', `--size: expected small or full, got ${JSON.stringify(size)}`);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new SvhnError('BAD_FLAG', `--seed: expected a non-negative integer, got ${JSON.stringify(seed)}`);
  const splits = [...new Set(opts.splits)];
  if (splits.length === 0) throw new SvhnError('BAD_FLAG', '--split: expected one or more of train,test,extra, got none');
  for (const s of splits) {
    if (!SPLITS.includes(s)) throw new SvhnError('BAD_FLAG', `--split: expected train, test or extra, got ${JSON.stringify(s)}`);
  }
  return splits;
}

/**
 * Writes <dataDir>/{split}_32x32.mat for each split asked, then <dataDir>/SYNTHETIC.json.
 * A file already made with the same seed, size and generator version (sha256 checked) is
 * kept unless `force`. Splits not asked for keep their manifest entries if their files are
 * still there.
 */
export async function generateSynthetic(opts: GenerateSyntheticOptions): Promise<{ files: SyntheticFile[] }> {
  const { dataDir, size, seed } = opts;
  const splits = checkSampleOptions(opts);
  try {
    await makeDirs(dataDir);
  } catch (e) {
    throw ioError(dataDir, 'create', e);
  }
  const fonts = loadFontSet();
  const markerPath = join(dataDir, SYNTHETIC_MARKER_FILE);
  const previous = await readSyntheticManifest<SyntheticManifest>(markerPath);
  const entries = new Map<string, SyntheticManifest['files'][number]>();
  for (const f of previous?.files ?? []) {
    if (!splits.includes(f.split as SourceSplit) && (await fileSize(join(dataDir, f.file))) === f.bytes) entries.set(f.split, f);
  }

  // Never over a file the sample did not write (a real train_32x32.mat beside a missing test one).
  for (const split of splits) {
    const path = join(dataDir, `${split}_32x32.mat`);
    if ((await existingSplitFile(path)) === 'other') {
      throw new SvhnError('BAD_INPUT', `${path}: expected no file or the synthetic sample, got another file (real SVHN, or yours), which the synthetic sample would replace`, {
        suggestion: 'move it, or pass another --data-dir',
      });
    }
  }

  const files: SyntheticFile[] = [];
  for (const split of splits) {
    const count = DEFAULTS.synthetic.sizes[size][split];
    const file = `${split}_32x32.mat`;
    const path = join(dataDir, file);
    const seedOfSplit = splitSeed(seed, split);
    const old = previous?.files.find((f) => f.split === split);
    if (
      !opts.force &&
      old &&
      previous!.generator?.version === SYNTHETIC_GENERATOR_VERSION &&
      previous!.generator?.fontSet === fonts.fontSetId &&
      old.seed === seed &&
      old.size === size &&
      old.count === count &&
      (await fileSize(path)) === old.bytes &&
      (await hashFile(path)).sha256 === old.sha256
    ) {
      entries.set(split, old);
      files.push({ split, path, count, bytes: old.bytes, sha256: old.sha256 });
      opts.onProgress?.(split, count, count);
      continue;
    }
    const classCounts = new Array<number>(NUM_CLASSES).fill(0);
    const rng = new Rng(seedOfSplit);
    const { bytes, sha256 } = await writeSvhnMat(path, {
      count,
      chunks: syntheticChunks(rng, count, classCounts),
      header: matHeaderText(seed, size, split),
      level: ZLIB_LEVEL,
      onProgress: (done, total) => opts.onProgress?.(split, done, total),
    });
    entries.set(split, { split, file, count, bytes, sha256, seed, size, splitSeed: seedOfSplit, classCounts });
    files.push({ split, path, count, bytes, sha256 });
  }

  const ordered = SPLITS.filter((s) => entries.has(s)).map((s) => entries.get(s)!);
  const manifest: SyntheticManifest = {
    synthetic: true,
    note: SYNTHETIC_NOTE,
    generator: { name: 'svhn synthetic digits', version: SYNTHETIC_GENERATOR_VERSION, fontSet: fonts.fontSetId, faces: fonts.faceCount },
    seed,
    size,
    counts: Object.fromEntries(ordered.map((f) => [f.split, f.count])),
    files: ordered,
  };
  await writeJsonAtomic(markerPath, manifest);
  return { files };
}
