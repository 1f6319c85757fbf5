/**
 * Labelled image sets: your own digits, read the way predict reads images (./decode.ts), so
 * a model trains on the pixels it will later be asked about. Two layouts:
 *
 *   DIR/0/ .. DIR/9/   one folder per digit; subfolders of a digit's folder are walked (each
 *                      folder once: a symlink loop is a skipped entry); files
 *                      with an image extension (IMAGE_EXTENSIONS) are decoded, other files are
 *                      skipped with a reason; dotfiles and files beside the digit folders are
 *                      not part of the set
 *   FILE.csv           `path,label` rows, paths relative to the CSV's folder (or absolute);
 *                      an optional header row (`file,label`); every listed file is tried,
 *                      whatever its extension (as predict tries files named on its command line)
 *
 * Three steps, each usable alone:
 *   listLabelledImages   names and labels; a digit folder or label outside 0..9, a malformed
 *                        row or a file listed twice is an error naming the folder or line
 *   hashLabelledImages   a content hash (labels, names, each file's sha256): the cache key
 *   decodeLabelledImages the pixels, N x 32 x 32 x 3 uint8; files that do not decode are
 *                        skipped and listed with their reason (an error with `strict`)
 */
import { stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { IMAGE_BYTES, NUM_CLASSES } from '../../config.js';
import { SvhnError } from '../../errors.js';
import { createProgress, type ProgressOptions } from '../../progress.js';
import { describeFileKind, readRegularFile } from '../../util/files.js';
import { mapOrdered } from '../../util/mapOrdered.js';
import { decodeImageFile, IMAGE_EXTENSIONS } from './decode.js';
import type { ImageSet } from '../cache/batches.js';
import { entryKind, sortedEntries, VisitedDirs } from '../../util/dirs.js';

export type LabelledKind = 'folder' | 'csv';

/** Where a set comes from, and the flag that named it (for messages: `--images DIR: ...`). */
export interface LabelledSource {
  kind: LabelledKind;
  path: string;
  flag: string;
}

export interface LabelledFile {
  /** The path to read (the folder or the CSV's folder joined with the name). */
  path: string;
  /** Relative to the folder, '/'-separated; for a CSV the path as written in it. Hashed, so a moved folder keeps its key. */
  name: string;
  label: number;
  /** CSV line (1-based). */
  line?: number;
  /** Set when the file is skipped without trying to decode it (a folder's non-image file). */
  skipReason?: string;
}

export interface LabelledListing {
  source: LabelledSource;
  files: LabelledFile[];
}

export interface SkippedFile {
  file: string; // the path, as `path` above
  label: number;
  reason: string;
}

export interface LabelledImages extends ImageSet {
  source: LabelledSource;
  files: string[]; // per image, its path
  skipped: SkippedFile[];
  classCounts: number[]; // images per digit
}

/** Files read (hashed or decoded) at once: libvips and fs work on libuv's thread pool. */
const CONCURRENCY = 16;
const IMAGE_EXT_SET = new Set<string>(IMAGE_EXTENSIONS);
const DIGIT_FOLDER = /^[0-9]$/;

function inputError(source: LabelledSource, message: string, suggestion?: string): SvhnError {
  return new SvhnError('BAD_INPUT', `${source.flag} ${source.path}: ${message}`, { suggestion });
}

/** Names and labels of every file of the set, in a stable order (folders: digit, then name). */
export async function listLabelledImages(source: LabelledSource): Promise<LabelledListing> {
  let st;
  try {
    st = await stat(source.path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw inputError(source, code === 'ENOENT' ? `no such ${source.kind === 'folder' ? 'folder' : 'file'}` : `cannot read (${code ?? (e as Error).message})`);
  }
  if (source.kind === 'folder') {
    if (!st.isDirectory()) {
      throw inputError(source, `expected a folder with subfolders 0..9, got ${describeFileKind(st)}`, st.isFile() ? 'pass a CSV of path,label rows with --labels instead' : undefined);
    }
    return { source, files: await listFolder(source) };
  }
  if (!st.isFile()) {
    throw inputError(source, `expected a CSV file of path,label rows, got ${describeFileKind(st)}`, st.isDirectory() ? 'pass a folder of digit folders with --images instead' : undefined);
  }
  return { source, files: await listCsv(source) };
}

async function listFolder(source: LabelledSource): Promise<LabelledFile[]> {
  const digitFolders: { path: string; label: number }[] = [];
  for (const e of await sortedEntries(source.path)) {
    if (e.name.startsWith('.')) continue;
    const path = join(source.path, e.name);
    if ((await entryKind(path, e)) !== 'dir') continue; // a README or labels.csv beside the digit folders
    if (!DIGIT_FOLDER.test(e.name)) {
      throw inputError(source, `folder '${e.name}' is not a digit: expected class folders named 0..9`, `move its images into ${join(source.path, '<digit>')}`);
    }
    digitFolders.push({ path, label: Number(e.name) });
  }
  // The root and every digit folder count as entered before the walk, so a link back to them
  // (a loop, or 3/more -> ../5) is skipped rather than listing files under the wrong digit.
  const visited = new VisitedDirs();
  await visited.enter(source.path);
  for (const d of digitFolders) await visited.enter(d.path);
  const files: LabelledFile[] = [];
  for (const d of digitFolders) await walkClass(source.path, d.path, d.label, files, visited);
  // Nothing to read: said here, as an empty CSV is, rather than as a set of no images later.
  if (digitFolders.length === 0) throw inputError(source, 'no digit folders: expected subfolders 0..9 holding the images');
  if (files.length === 0) {
    throw inputError(source, `no files in its digit folders (${digitFolders.map((d) => d.label).join(', ')}): expected images in ${join(source.path, '<digit>')}`);
  }
  return files;
}

async function walkClass(root: string, dir: string, label: number, out: LabelledFile[], visited: VisitedDirs): Promise<void> {
  for (const e of await sortedEntries(dir)) {
    if (e.name.startsWith('.')) continue;
    const path = join(dir, e.name);
    const kind = await entryKind(path, e);
    const name = relative(root, path).split(sep).join('/');
    if (kind === 'dir') {
      if (await visited.enter(path)) await walkClass(root, path, label, out, visited);
      else out.push({ path, name, label, skipReason: 'a folder already walked (a symlink loop, or a second link to the same folder)' });
    } else if (kind === 'file') {
      const ext = extname(e.name).toLowerCase();
      out.push({ path, name, label, ...(IMAGE_EXT_SET.has(ext) ? {} : { skipReason: `not an image file name (${ext || 'no extension'}; expected ${IMAGE_EXTENSIONS.join(' ')})` }) });
    }
  }
}

/** Fields of one CSV line: commas separate, double quotes quote ("" is a quote). Null when a quote is left open. */
export function parseCsvLine(line: string): string[] | null {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field.trim() === '') {
      field = '';
      quoted = true;
    } else if (c === ',') {
      fields.push(field.trim());
      field = '';
    } else field += c;
  }
  if (quoted) return null;
  fields.push(field.trim());
  return fields;
}

async function listCsv(source: LabelledSource): Promise<LabelledFile[]> {
  let text: string;
  try {
    text = (await readRegularFile(source.path)).toString('utf8');
  } catch (e) {
    throw inputError(source, `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const base = dirname(source.path);
  const files: LabelledFile[] = [];
  const firstLine = new Map<string, number>(); // resolved path -> line
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  let seenRow = false;
  for (const [i, raw] of lines.entries()) {
    const line = i + 1;
    if (raw.trim() === '') continue;
    const at = `${source.path} line ${line}`;
    const fields = parseCsvLine(raw);
    if (!fields) throw new SvhnError('BAD_INPUT', `${at}: a quoted field is not closed`);
    if (fields.length !== 2) throw new SvhnError('BAD_INPUT', `${at}: expected 2 fields 'path,label', got ${fields.length}`);
    const [name, labelText] = fields as [string, string];
    const first = !seenRow;
    seenRow = true;
    // A header: the first row, when its label is not a number (`file,label`, `path,digit`).
    if (first && !/^[+-]?\d+(\.\d*)?$/.test(labelText)) continue;
    if (name === '') throw new SvhnError('BAD_INPUT', `${at}: the path is empty`);
    if (!/^\d$/.test(labelText)) {
      throw new SvhnError('BAD_INPUT', `${at}: label '${labelText}' for ${name}: expected a digit 0..${NUM_CLASSES - 1}`, {
        suggestion: labelText === '10' ? 'SVHN\'s .mat files store digit 0 as 10; write it as 0 here' : undefined,
      });
    }
    const path = isAbsolute(name) ? name : join(base, name);
    const key = resolve(path);
    const earlier = firstLine.get(key);
    if (earlier !== undefined) throw new SvhnError('BAD_INPUT', `${at}: ${name} is listed twice (first on line ${earlier})`, { suggestion: 'keep one row per file' });
    firstLine.set(key, line);
    files.push({ path, name, label: Number(labelText), line });
  }
  if (files.length === 0) throw inputError(source, 'no rows: expected path,label lines (a header row is optional)');
  return files;
}

/**
 * The set's content hash: sha256 over every file's label, name and sha256, in listing order,
 * plus the byte count. Changed pixels, labels, names or files give a new hash (and a new cache key).
 */
export async function hashLabelledImages(listing: LabelledListing, mode?: ProgressOptions['mode']): Promise<{ sha256: string; bytes: number }> {
  const progress = createProgress({ label: `hash ${listing.source.path}`, total: listing.files.length, unit: 'files', mode: listing.files.length < 2000 ? 'silent' : mode, plainEverySec: 5 });
  const hash = createHash('sha256');
  let bytes = 0;
  let done = 0;
  const read = async (f: LabelledFile): Promise<{ f: LabelledFile; digest: string; size: number }> => {
    try {
      const buf = await readRegularFile(f.path);
      return { f, digest: createHash('sha256').update(buf).digest('hex'), size: buf.length };
    } catch (e) {
      return { f, digest: `unreadable:${(e as NodeJS.ErrnoException).code ?? 'error'}`, size: 0 }; // decoding reports it
    }
  };
  for await (const { f, digest, size } of mapOrdered(listing.files, read, CONCURRENCY)) {
    hash.update(`${f.label}\t${f.name}\t${digest}\n`);
    bytes += size;
    progress.update(++done);
  }
  progress.stop();
  return { sha256: hash.digest('hex'), bytes };
}

export interface DecodeLabelledOptions {
  /** A file that does not decode is an error instead of a skipped file. */
  strict?: boolean;
  /** Every digit must have at least one image (a training set: stratified split, 10 outputs). */
  requireEveryDigit?: boolean;
  progress?: ProgressOptions['mode'];
  /** Told about each skipped file, in order. */
  onSkipped?: (s: SkippedFile) => void;
}

/** Decodes every file of the listing to 32x32x3 uint8, skipping (or, strict, refusing) the ones that do not decode. */
export async function decodeLabelledImages(listing: LabelledListing, opts: DecodeLabelledOptions = {}): Promise<LabelledImages> {
  const { source } = listing;
  const n = listing.files.length;
  const images = new Uint8Array(n * IMAGE_BYTES); // trimmed below if files are skipped
  const labels = new Uint8Array(n);
  const files: string[] = [];
  const skipped: SkippedFile[] = [];
  const progress = createProgress({ label: `decode ${source.path}`, total: n, unit: 'img', mode: opts.progress, plainEverySec: 5 });
  const decode = async (f: LabelledFile): Promise<{ f: LabelledFile; image?: Uint8Array; reason?: string }> => {
    if (f.skipReason) return { f, reason: f.skipReason };
    try {
      return { f, image: await decodeImageFile(f.path) };
    } catch (e) {
      if (!(e instanceof SvhnError)) throw e;
      return { f, reason: e.message };
    }
  };
  let done = 0;
  try {
    for await (const { f, image, reason } of mapOrdered(listing.files, decode, CONCURRENCY)) {
      progress.update(++done, { skipped: skipped.length });
      if (!image) {
        const where = f.line ? ` (${source.path} line ${f.line})` : '';
        if (opts.strict) {
          throw new SvhnError('BAD_INPUT', `${f.path}${where}: ${reason}`, { suggestion: 'remove or fix the file, or drop --strict to skip unreadable files' });
        }
        const s = { file: f.path, label: f.label, reason: reason! };
        skipped.push(s);
        opts.onSkipped?.(s);
        continue;
      }
      images.set(image, files.length * IMAGE_BYTES);
      labels[files.length] = f.label;
      files.push(f.path);
    }
  } catch (e) {
    progress.abort?.();
    throw e;
  }
  progress.stop({ skipped: skipped.length });
  const count = files.length;
  const classCounts = new Array<number>(NUM_CLASSES).fill(0);
  for (let i = 0; i < count; i++) classCounts[labels[i]!]!++;
  if (opts.requireEveryDigit) checkEveryDigit(listing, classCounts, skipped);
  else if (count === 0) {
    const first = skipped[0]; // listings are never empty (listFolder, listCsv), so every file was skipped
    throw inputError(source, `no readable images: all ${skipped.length} file(s) were skipped${first ? ` (first ${first.file}: ${first.reason})` : ''}`);
  }
  return { source, count, images: images.slice(0, count * IMAGE_BYTES), labels: labels.slice(0, count), files, skipped, classCounts };
}

/** Training needs all ten digits: the split is stratified and the model has ten outputs. */
function checkEveryDigit(listing: LabelledListing, classCounts: number[], skipped: SkippedFile[]): void {
  const digit = classCounts.findIndex((c) => c === 0);
  if (digit < 0) return;
  const { source } = listing;
  const listed = listing.files.filter((f) => f.label === digit).length;
  const where = source.kind === 'folder' ? `${join(source.path, String(digit))} has` : 'the CSV has';
  const first = skipped.find((s) => s.label === digit);
  const why = listed === 0 ? `${where} no files for it` : `all ${listed} of its files were skipped (${first?.file}: ${first?.reason})`;
  throw inputError(source, `no images for digit ${digit}: ${why}; a training set needs every digit 0..9 (the train/val split is stratified and the model has 10 outputs)`);
}

/** Digits with no image in a set, for a warning where all ten are not required (test sets, evaluate). */
export function missingDigits(classCounts: number[]): number[] {
  return classCounts.flatMap((c, d) => (c === 0 ? [d] : []));
}
