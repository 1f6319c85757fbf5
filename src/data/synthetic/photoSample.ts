/**
 * The offline photo sample: whole synthetic house-number photos with each digit's box, in
 * the shape SVHN's format-1 archives take once converted (data/images/photoLabels.ts):
 *
 *   <dataDir>/full/<split>/1.png .. <n>.png     the photos (1-based, as SVHN numbers them)
 *   <dataDir>/full/<split>.csv                  file,number,boxes   (train/1.png,207,l t r b;...)
 *   <dataDir>/full/SYNTHETIC.json               seed, sizes, generator, sha256 of each CSV
 *
 * Every PNG says it is synthetic in a tEXt chunk (keyword Comment, text starting
 * "SYNTHETIC"), and the marker file says so for the folder. Its accuracy is not SVHN's.
 *
 * Deterministic: each split draws from its own Rng (seeded from the seed and "full/<split>",
 * apart from the crops' streams), PNGs are encoded by sharp at fixed settings, so the same
 * seed gives the same bytes (for the same font packages and sharp: the manifest names both).
 *
 * Written whole or not at all: a split's folder is built under a temporary sibling and
 * renamed into place, its CSV likewise, the marker after each split; Ctrl-C removes the
 * temporaries. A folder or CSV the sample did not write is never replaced.
 */
import { lstat, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { DEFAULTS, SPLITS, type SourceSplit } from '../../config.js';
import { SvhnError, ioError } from '../../errors.js';
import { buildDirAtomic, hashFile, sha256, writeFileAtomic, writeJsonAtomic } from '../../util/atomic.js';
import { openRegularFile } from '../../util/files.js';
import { makeDirs } from '../../util/mkdirs.js';
import { Rng } from '../../util/rng.js';
import { loadFontSet, type FontSet } from './fonts.js';
import { formatPhotoLabels, type PhotoLabel } from '../images/photoLabels.js';
import { checkSampleOptions, readSyntheticManifest, SYNTHETIC_MARKER_FILE, splitSeed, type SyntheticSize } from './synthetic.js';
import { PhotoSceneRenderer, type SyntheticPhoto } from './photoScene.js';

/** 2: things beside the number (photoScene.ts PHOTO_SCENE.side); 3: heavy noise in a few photos (PHOTO_SCENE.grain). */
export const SYNTHETIC_PHOTOS_VERSION = 3;
/** The folder under the data directory that holds whole photos (format 1), real or synthetic. */
export const PHOTOS_DIR = 'full';
export const SYNTHETIC_PHOTOS_NOTE =
  'Synthetic SVHN-like house-number photos made offline by the svhn generator, NOT real SVHN: accuracy measured on them says nothing about accuracy on SVHN.';

/** The tEXt chunk every photo carries: keyword, and how its text starts. */
const PNG_TEXT_KEYWORD = 'Comment';
const PNG_TEXT_PREFIX = 'SYNTHETIC';

/**
 * sharp's PNG settings, fixed so the bytes are too: zlib level 6 with adaptive row filters
 * (noisy photos: 12.8 kB a photo against 18.2 kB unfiltered, at about the same speed), no
 * palette quantisation; sharp writes no metadata unless asked.
 */
const PNG_OPTIONS = { compressionLevel: 6, adaptiveFiltering: true, palette: false, progressive: false } as const;

/** Photos encoded and written at once while the next ones are drawn (sharp encodes on libuv's pool). */
const IN_FLIGHT = 16;

export interface GenerateSyntheticPhotosOptions {
  dataDir: string;
  size: SyntheticSize;
  seed: number;
  splits: SourceSplit[];
  onProgress?: (split: string, done: number, total: number) => void;
  force?: boolean; // regenerate even when a split from the same seed, size and version is present
  /** Photos per split instead of the size's (tests). */
  counts?: Partial<Record<SourceSplit, number>>;
}

export interface SyntheticPhotoSplit {
  split: string;
  csv: string; // path
  dir: string; // path
  count: number;
  withNumber: number;
  sha256: string; // of the CSV
}

export interface SyntheticPhotosManifest {
  synthetic: true;
  note: string;
  generator: { name: string; version: number; fontSet: string; faces: number; sharp: string; png: string };
  seed: number;
  size: SyntheticSize;
  counts: Record<string, number>;
  files: Array<{
    split: string;
    csv: string;
    dir: string;
    count: number;
    bytes: number; // of the CSV
    sha256: string; // of the CSV
    seed: number;
    size: SyntheticSize;
    splitSeed: number;
    lengths: number[]; // photos by number length, index 0 = no number
    replaces?: string; // sha256 of the CSV this one replaces, while the new one is being moved into place
  }>;
}

/** sharp's and libvips' versions: their PNG encoder decides the bytes. */
function sharpVersion(): string {
  return `sharp ${sharp.versions.sharp} libvips ${sharp.versions.vips}`;
}

/** The tEXt text of one photo. */
function pngText(seed: number, size: SyntheticSize, split: string, index: number): string {
  return `${PNG_TEXT_PREFIX} svhn offline photo sample, NOT real SVHN (v${SYNTHETIC_PHOTOS_VERSION} ${size} seed ${seed} ${split} ${index})`;
}

/** The bytes every marked photo starts with: signature, IHDR (fixed length: 8 + 25), then our tEXt chunk's type, keyword and the prefix. */
const IHDR_END = 33;
const MARK = Buffer.from(`tEXt${PNG_TEXT_KEYWORD}\0${PNG_TEXT_PREFIX}`, 'latin1');

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** PNG's CRC-32 (ISO 3309) of bytes. */
function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The PNG with a tEXt chunk (keyword, text) inserted right after its IHDR. */
export function withPngText(png: Buffer, keyword: string, text: string): Buffer {
  const body = Buffer.from(`tEXt${keyword}\0${text}`, 'latin1');
  const chunk = Buffer.alloc(body.length + 8);
  chunk.writeUInt32BE(body.length - 4, 0);
  body.copy(chunk, 4);
  chunk.writeUInt32BE(crc32(body), body.length + 4);
  return Buffer.concat([png.subarray(0, IHDR_END), chunk, png.subarray(IHDR_END)]);
}

/** Whether a PNG's head carries the sample's tEXt marker right after its IHDR. */
export function hasSyntheticMark(head: Uint8Array): boolean {
  const at = IHDR_END + 4; // past the chunk's length
  return head.length >= at + MARK.length && Buffer.from(head.buffer, head.byteOffset + at, MARK.length).equals(MARK);
}

/** One photo as a marked PNG. */
export async function encodePhoto(photo: SyntheticPhoto, text: string): Promise<Buffer> {
  const png = await sharp(Buffer.from(photo.rgb.buffer, photo.rgb.byteOffset, photo.rgb.length), { raw: { width: photo.width, height: photo.height, channels: 3 } })
    .png(PNG_OPTIONS)
    .toBuffer();
  return withPngText(png, PNG_TEXT_KEYWORD, text);
}

/** Whether the file at path is one of the sample's photos (its head carries the mark); no file: undefined. */
async function isMarkedPhoto(path: string): Promise<boolean | undefined> {
  let fh;
  try {
    fh = await openRegularFile(path);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : false;
  }
  try {
    const head = Buffer.alloc(IHDR_END + 4 + MARK.length);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    return hasSyntheticMark(head.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

/** Names in a folder; undefined when there is none (anything else there that is not a folder is an error). */
async function listDir(path: string): Promise<string[] | undefined> {
  try {
    return await readdir(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ENOTDIR') return ['(not a folder)'];
    throw ioError(path, 'read', e);
  }
}

/** The sha256 of a CSV; undefined when there is none, '(unreadable)' for what cannot be hashed (a folder, a FIFO). */
async function csvSha256(path: string): Promise<string | undefined> {
  if ((await fileKind(path)) === 'none') return undefined;
  try {
    return (await hashFile(path)).sha256;
  } catch {
    return '(unreadable)';
  }
}

async function fileKind(path: string): Promise<'none' | 'some'> {
  try {
    await lstat(path);
    return 'some';
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'none';
    throw ioError(path, 'read', e);
  }
}

/**
 * Refuses a split whose folder or CSV the sample did not write (real SVHN converted, your
 * photos): a folder is the sample's when empty or when its 1.png carries the mark; a CSV when
 * its sha256 is the one the marker recorded.
 */
async function checkOwnSplit(root: string, split: string, previous: SyntheticPhotosManifest | undefined): Promise<void> {
  const dir = join(root, split);
  const names = await listDir(dir);
  if (names !== undefined && names.length > 0 && (await isMarkedPhoto(join(dir, '1.png'))) !== true) {
    throw new SvhnError('BAD_INPUT', `${dir}: expected no folder or the synthetic photo sample, got another folder (real SVHN photos, or yours), which the sample would replace`, {
      suggestion: 'move it, or pass another --data-dir',
    });
  }
  const csv = join(root, `${split}.csv`);
  const sha = await csvSha256(csv);
  const entry = previous?.files.find((f) => f.split === split);
  if (sha !== undefined && sha !== entry?.sha256 && sha !== entry?.replaces) {
    throw new SvhnError('BAD_INPUT', `${csv}: expected no file or the synthetic photo sample's labels, got another file (real SVHN labels, or yours), which the sample would replace`, {
      suggestion: 'move it, or pass another --data-dir',
    });
  }
}

/** Whether a split on disk is the one asked for: same generator, fonts, seed, size and count, the CSV's sha256 as recorded, every photo there. */
async function isUpToDate(root: string, entry: SyntheticPhotosManifest['files'][number] | undefined, previous: SyntheticPhotosManifest | undefined, want: { seed: number; size: SyntheticSize; count: number; fontSet: string }): Promise<boolean> {
  if (!entry || !previous) return false;
  if (previous.generator?.version !== SYNTHETIC_PHOTOS_VERSION || previous.generator?.fontSet !== want.fontSet || previous.generator?.sharp !== sharpVersion()) return false;
  if (entry.seed !== want.seed || entry.size !== want.size || entry.count !== want.count) return false;
  if ((await csvSha256(join(root, entry.csv))) !== entry.sha256) return false;
  const names = await listDir(join(root, entry.dir));
  return names !== undefined && names.filter((n) => /^\d+\.png$/.test(n)).length === want.count;
}

type PhotoRow = Pick<PhotoLabel, 'file' | 'number' | 'boxes'>;

interface SplitPhotosJob {
  dir: string; // where the photos go (the split's temporary folder)
  split: string;
  count: number;
  rng: Rng;
  renderer: PhotoSceneRenderer;
  text: (index: number) => string; // each photo's tEXt marker
  onProgress?: (done: number) => void;
}

/** Draws, encodes and writes one split's photos; returns their label rows (files relative to the CSV's folder). */
async function writeSplitPhotos({ dir, split, count, rng, renderer, text, onProgress }: SplitPhotosJob): Promise<PhotoRow[]> {
  const rows: PhotoRow[] = [];
  const inFlight = new Set<Promise<void>>();
  let done = 0;
  try {
    for (let i = 1; i <= count; i++) {
      const photo = renderer.render(rng);
      rows.push({ file: `${split}/${i}.png`, number: photo.number, boxes: photo.boxes });
      const path = join(dir, `${i}.png`);
      const job: Promise<void> = encodePhoto(photo, text(i))
        .then((png) => writeFile(path, png))
        .catch((e: unknown) => {
          throw ioError(path, 'write', e);
        })
        .then(() => {
          inFlight.delete(job);
          onProgress?.(++done);
        });
      inFlight.add(job);
      if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  } catch (e) {
    await Promise.allSettled(inFlight); // none still writing into the folder about to be removed
    throw e;
  }
  return rows;
}

type ManifestEntry = SyntheticPhotosManifest['files'][number];

/** The marker for the splits in `entries`, in SPLITS order. */
function manifestOf(entries: Map<string, ManifestEntry>, run: { seed: number; size: SyntheticSize; fonts: FontSet }): SyntheticPhotosManifest {
  const ordered = SPLITS.filter((s) => entries.has(s)).map((s) => entries.get(s)!);
  return {
    synthetic: true,
    note: SYNTHETIC_PHOTOS_NOTE,
    generator: {
      name: 'svhn synthetic photos',
      version: SYNTHETIC_PHOTOS_VERSION,
      fontSet: run.fonts.fontSetId,
      faces: run.fonts.faceCount,
      sharp: sharpVersion(),
      png: `every photo carries a tEXt chunk '${PNG_TEXT_KEYWORD}' starting '${PNG_TEXT_PREFIX}'`,
    },
    seed: run.seed,
    size: run.size,
    counts: Object.fromEntries(ordered.map((f) => [f.split, f.count])),
    files: ordered,
  };
}

/**
 * Writes <dataDir>/full/<split>/ and <split>.csv for each split asked, then
 * <dataDir>/full/SYNTHETIC.json. A split already made with the same seed, size and generator
 * is kept unless `force`; splits not asked for keep their entries while their CSVs are unchanged.
 */
export async function generateSyntheticPhotos(opts: GenerateSyntheticPhotosOptions): Promise<{ root: string; splits: SyntheticPhotoSplit[] }> {
  const { dataDir, size, seed } = opts;
  const splits = checkSampleOptions(opts);
  const root = join(dataDir, PHOTOS_DIR);
  try {
    await makeDirs(root);
  } catch (e) {
    throw ioError(root, 'create', e);
  }
  const markerPath = join(root, SYNTHETIC_MARKER_FILE);
  const previous = await readSyntheticManifest<SyntheticPhotosManifest>(markerPath);
  for (const split of splits) await checkOwnSplit(root, split, previous);
  const fonts = loadFontSet(); // after the checks: parsing ~550 faces takes seconds

  const entries = new Map<string, ManifestEntry>();
  for (const f of previous?.files ?? []) {
    if (!splits.includes(f.split as SourceSplit) && (await csvSha256(join(root, f.csv))) === f.sha256) entries.set(f.split, f);
  }
  const renderer = new PhotoSceneRenderer(fonts);
  const result: SyntheticPhotoSplit[] = [];
  for (const split of splits) {
    const count = opts.counts?.[split] ?? DEFAULTS.synthetic.photoSizes[size][split];
    if (!Number.isSafeInteger(count) || count < 1) throw new SvhnError('BAD_FLAG', `photos for ${split}: expected a positive integer, got ${count}`);
    const csv = `${split}.csv`;
    const old = previous?.files.find((f) => f.split === split);
    if (!opts.force && (await isUpToDate(root, old, previous, { seed, size, count, fontSet: fonts.fontSetId }))) {
      entries.set(split, old!);
      result.push({ split, csv: join(root, csv), dir: join(root, split), count, withNumber: count - old!.lengths[0]!, sha256: old!.sha256 });
      opts.onProgress?.(split, count, count);
      continue;
    }
    const seedOfSplit = splitSeed(seed, `${PHOTOS_DIR}/${split}`);
    const rng = new Rng(seedOfSplit);
    opts.onProgress?.(split, 0, count);
    const rows = await buildDirAtomic(join(root, split), (tmp) =>
      writeSplitPhotos({ dir: tmp, split, count, rng, renderer, text: (i) => pngText(seed, size, split, i), onProgress: (done) => opts.onProgress?.(split, done, count) }),
    );
    const text = formatPhotoLabels(rows);
    const lengths = new Array<number>(6).fill(0);
    for (const r of rows) lengths[r.number.length]!++;
    const entry: ManifestEntry = { split, csv, dir: split, count, bytes: Buffer.byteLength(text), sha256: sha256(text), seed, size, splitSeed: seedOfSplit, lengths };
    // The marker first, naming the CSV still there as the one this replaces: whenever a run
    // stops, the marker vouches for whichever of the two CSVs is on disk.
    const replaces = await csvSha256(join(root, csv));
    entries.set(split, replaces ? { ...entry, replaces } : entry);
    await writeJsonAtomic(markerPath, manifestOf(entries, { seed, size, fonts }));
    await writeFileAtomic(join(root, csv), text);
    entries.set(split, entry);
    result.push({ split, csv: join(root, csv), dir: join(root, split), count, withNumber: count - lengths[0]!, sha256: entry.sha256 });
  }
  await writeJsonAtomic(markerPath, manifestOf(entries, { seed, size, fonts }));
  return { root, splits: result };
}
