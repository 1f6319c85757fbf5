/**
 * One format-1 archive (`<split>.tar.gz`, verified) into the labelled-photos shape
 * (images/photoLabels.ts):
 *
 *   <out>/<split>/1.png ... N.png   the photos, as the archive holds them
 *   <out>/<split>.csv               file,number,boxes: `<split>/1.png,19,246 77 327 296;...`, in
 *                                   digitStruct's order, boxes clipped to the photo (fitBoxes)
 *
 * Streamed: file -> gunzip -> tar-stream, each photo written as it arrives (its size read from
 * its PNG header on the way), so memory stays flat for extra's 2 GB; digitStruct.mat goes to a
 * temporary file and is read from disk (mat/digitStruct.ts) once the archive ends. The folder is
 * built under a temporary sibling and renamed into place (util/atomic.ts, which also removes it
 * on Ctrl-C), then the CSV is written beside it: the CSV is the mark of a finished folder. A
 * folder whose CSV lists only files it holds is complete, and left alone.
 *
 * Refused, one line naming the archive and the entry: an absolute path, a path with `..`, a
 * path outside `<split>/`, a symlink or anything else that is not a file or a folder, an entry
 * listed twice, a photo that is not a PNG; a file that is not gzip or holds no tar; a photo
 * digitStruct names that the archive lacks.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile, rm, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { extract as tarExtract, type Extract } from 'tar-stream';
import type { SourceSplit } from '../../config.js';
import { SvhnError, ioError } from '../../errors.js';
import { getLogger } from '../../log.js';
import { buildDirAtomic, fileSize, writeFileAtomic } from '../../util/atomic.js';
import { openRegularFile } from '../../util/files.js';
import { makeDirs } from '../../util/mkdirs.js';
import { MAX_DIGITS, fitBoxes, formatPhotoLabels, parsePhotoLabels, type Box, type PhotoLabel } from '../images/photoLabels.js';
import { readDigitStruct } from '../mat/digitStruct.js';
import { hasSyntheticMark } from '../synthetic/photoSample.js';

export interface ExtractOptions {
  archive: string; // the verified <split>.tar.gz
  split: SourceSplit;
  outDir: string; // <data-dir>/full: gets <split>/ and <split>.csv
  force?: boolean; // extract again even when the folder is complete
  onEvent?: (event: ExtractEvent) => void;
}

export type ExtractEvent =
  | { type: 'extract-start'; split: SourceSplit; archive: string; dir: string; size: number } // size: the archive's bytes
  | { type: 'extract-bytes'; split: SourceSplit; archive: string; done: number; total: number } // compressed bytes read
  | { type: 'extract-label'; split: SourceSplit; archive: string } // the archive is read: now digitStruct.mat
  | { type: 'extract-done' | 'extract-skip'; split: SourceSplit; archive: string; result: ExtractResult };

export interface ExtractResult {
  split: SourceSplit;
  dir: string; // <outDir>/<split>
  csv: string; // <outDir>/<split>.csv
  photos: number; // rows in the CSV
  digits: number; // boxes in the CSV
  clipped: number; // boxes that crossed their photo's edge and were clipped to it
  status: 'extracted' | 'skipped';
}

/** One tar entry: its header and a readable of its bytes. */
type Entry = Extract extends AsyncIterable<infer T> ? T : never;

const DIGIT_STRUCT = 'digitStruct.mat';
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const PNG_HEAD = 24; // signature (8) + IHDR length and type (8) + width and height (8)

/** The folder and CSV for `split` under outDir, extracted from the archive unless already complete. */
export async function extractArchive(opts: ExtractOptions): Promise<ExtractResult> {
  const dir = join(opts.outDir, opts.split);
  const csv = join(opts.outDir, `${opts.split}.csv`);
  await refuseSyntheticSample(dir);
  if (!opts.force) {
    const rows = await completeRows(dir, csv, opts.split);
    if (rows) {
      const result: ExtractResult = { split: opts.split, dir, csv, photos: rows.length, digits: countDigits(rows), clipped: 0, status: 'skipped' };
      opts.onEvent?.({ type: 'extract-skip', split: opts.split, archive: opts.archive, result });
      return result;
    }
  }
  try {
    await makeDirs(opts.outDir);
  } catch (e) {
    throw ioError(opts.outDir, 'create', e);
  }
  const built = await buildDirAtomic(dir, async (tmp) => {
    const size = (await fileSize(opts.archive)) ?? 0;
    opts.onEvent?.({ type: 'extract-start', split: opts.split, archive: opts.archive, dir, size });
    const unpacked = await unpackArchive(opts, tmp);
    opts.onEvent?.({ type: 'extract-label', split: opts.split, archive: opts.archive });
    const labelled = await labelPhotos(opts, unpacked);
    // All went well: the old CSV goes just before the folders are swapped, so from here until
    // the new CSV is written the folder counts as unfinished (a failure before this point
    // leaves an earlier folder and its CSV as they were).
    await rm(csv, { force: true }).catch((e: unknown) => {
      throw ioError(csv, 'remove', e);
    });
    return labelled;
  });
  await writeFileAtomic(csv, formatPhotoLabels(built.rows));
  const result: ExtractResult = { split: opts.split, dir, csv, photos: built.rows.length, digits: countDigits(built.rows), clipped: built.clipped, status: 'extracted' };
  opts.onEvent?.({ type: 'extract-done', split: opts.split, archive: opts.archive, result });
  return result;
}

/**
 * The offline photo sample (`download --synthetic --format full`) writes the same folders; it
 * refuses to replace SVHN's photos, and SVHN's photos do not replace it either (nor take its
 * folder for their own): its photos carry a tEXt mark.
 */
async function refuseSyntheticSample(dir: string): Promise<void> {
  let head: Buffer;
  try {
    const fh = await openRegularFile(join(dir, '1.png'));
    try {
      head = Buffer.alloc(128);
      const { bytesRead } = await fh.read(head, 0, head.length, 0);
      head = head.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  } catch {
    return; // no photo 1 there: not the sample's
  }
  if (hasSyntheticMark(head)) {
    throw new SvhnError('BAD_INPUT', `${dir}/: holds the synthetic photo sample, which SVHN's photos would replace`, {
      suggestion: 'move it, or pass another --data-dir',
    });
  }
}

function countDigits(rows: ReadonlyArray<Pick<PhotoLabel, 'number'>>): number {
  return rows.reduce((n, r) => n + r.number.length, 0);
}

/** The CSV's rows when the CSV parses and every photo it lists is in the folder; else undefined. */
async function completeRows(dir: string, csv: string, split: string): Promise<PhotoLabel[] | undefined> {
  let text: string;
  try {
    text = await readFile(csv, 'utf8');
  } catch {
    return undefined;
  }
  let rows: PhotoLabel[];
  try {
    rows = parsePhotoLabels(text, csv);
  } catch {
    return undefined; // not ours, or damaged: made again
  }
  for (const row of rows) {
    const name = row.file.startsWith(`${split}/`) ? row.file.slice(split.length + 1) : undefined;
    if (!name || name.includes('/')) return undefined;
    const size = await fileSize(join(dir, name));
    if (size === undefined || size < PNG_HEAD) return undefined;
  }
  return rows;
}

interface Unpacked {
  sizes: Map<string, { width: number; height: number }>; // photo file name -> its size, from the PNG header
  digitStruct: string | undefined; // its temporary path in the build folder
}

/** The entry's name inside `<split>/`, or an error naming the archive and the entry. */
function entryName(archive: string, split: string, entry: Entry): string | undefined {
  const name = entry.header.name;
  const type = entry.header.type ?? 'file';
  const at = `${archive}: entry '${name}'`;
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name) || name.includes('\\')) throw new SvhnError('BAD_INPUT', `${at} is an absolute path: refused (expected paths under ${split}/)`);
  const parts = name.split('/').filter((p: string) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new SvhnError('BAD_INPUT', `${at} climbs out with '..': refused (expected paths under ${split}/)`);
  if (type !== 'file' && type !== 'directory') throw new SvhnError('BAD_INPUT', `${at} is a ${type}: refused (expected only files and folders)`);
  if (parts[0] !== split) throw new SvhnError('BAD_INPUT', `${at} lies outside ${split}/: expected SVHN's format-1 layout (${split}/1.png ..., ${split}/${DIGIT_STRUCT})`);
  if (type === 'directory' || parts.length !== 2) return undefined; // the folder itself, or something deeper: not ours to keep
  return parts[1]!;
}

/** Passes bytes through while reading a PNG's width and height from its first 24 bytes. */
class PngHeader extends Transform {
  private head = Buffer.alloc(0);
  size?: { width: number; height: number };
  constructor(private readonly what: string) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.head.length < PNG_HEAD) {
      this.head = Buffer.concat([this.head, chunk.subarray(0, PNG_HEAD - this.head.length)]);
      if (this.head.length === PNG_HEAD) {
        const error = this.read24();
        if (error) return done(error);
      }
    }
    done(null, chunk);
  }
  override _flush(done: TransformCallback): void {
    done(this.size ? null : new SvhnError('BAD_INPUT', `${this.what}: not a PNG (${this.head.length} bytes: too short for a PNG header)`));
  }
  private read24(): SvhnError | undefined {
    const h = this.head;
    if (!h.subarray(0, 8).equals(PNG_SIGNATURE) || h.toString('latin1', 12, 16) !== 'IHDR') {
      return new SvhnError('BAD_INPUT', `${this.what}: not a PNG (expected the PNG signature and IHDR)`);
    }
    const width = h.readUInt32BE(16);
    const height = h.readUInt32BE(20);
    if (width === 0 || height === 0) return new SvhnError('BAD_INPUT', `${this.what}: a PNG of ${width}x${height} pixels`);
    this.size = { width, height };
    return undefined;
  }
}

/** gzip / tar failures as one line naming the archive. */
function archiveError(archive: string, e: unknown): unknown {
  if (e instanceof SvhnError) return e;
  const code = (e as NodeJS.ErrnoException)?.code ?? '';
  const message = (e as Error)?.message ?? String(e);
  if (code === 'Z_DATA_ERROR' || code === 'Z_STREAM_ERROR') return new SvhnError('BAD_INPUT', `${archive}: not a gzip file (${message}): expected a .tar.gz`, { cause: e });
  if (code === 'Z_BUF_ERROR' || /unexpected end of (file|data)/i.test(message)) return new SvhnError('BAD_INPUT', `${archive}: the archive ends early (${message}): expected a whole .tar.gz`, { cause: e });
  if (/invalid tar header|unknown format/i.test(message)) return new SvhnError('BAD_INPUT', `${archive}: the gzip does not hold a tar archive (${message.split('.')[0]})`, { cause: e });
  if (code.startsWith('E')) return ioError(archive, 'extract', e);
  return e;
}

/** Streams the archive into `tmp`: photos as `<tmp>/<name>`, digitStruct.mat as a temporary beside them. */
async function unpackArchive(opts: ExtractOptions, tmp: string): Promise<Unpacked> {
  const { archive, split } = opts;
  const total = (await stat(archive).catch((e: unknown) => { throw ioError(archive, 'read', e); })).size;
  const input = createReadStream(archive);
  let read = 0;
  input.on('data', (chunk) => {
    read += chunk.length;
    opts.onEvent?.({ type: 'extract-bytes', split, archive, done: read, total });
  });
  const tar = tarExtract();
  let feedError: unknown;
  const feeding = pipeline(input, createGunzip(), tar).catch((e: unknown) => {
    feedError ??= e;
  });
  const out: Unpacked = { sizes: new Map(), digitStruct: undefined };
  const seen = new Set<string>();
  try {
    for await (const entry of tar) {
      const name = entryName(archive, split, entry);
      if (name !== undefined && seen.has(name)) throw new SvhnError('BAD_INPUT', `${archive}: entry '${entry.header.name}' appears twice: refused`);
      if (name !== undefined) seen.add(name);
      if (name === DIGIT_STRUCT) {
        out.digitStruct = join(tmp, `.${DIGIT_STRUCT}`);
        await writeEntry(entry, out.digitStruct);
      } else if (name !== undefined && /\.png$/i.test(name)) {
        const header = new PngHeader(`${archive}: ${split}/${name}`);
        await writeEntry(entry, join(tmp, name), header);
        out.sizes.set(name, header.size!);
      } else {
        entry.resume(); // see_bboxes.m, folders: drained
      }
    }
  } catch (e) {
    input.destroy();
    await feeding;
    throw archiveError(archive, feedError && !(e instanceof SvhnError) ? feedError : e);
  }
  await feeding;
  if (feedError) throw archiveError(archive, feedError);
  return out;
}

/** One entry's bytes to `path` (a new file: never over another), through `through` when given. */
async function writeEntry(entry: Entry, path: string, through?: Transform): Promise<void> {
  const file = createWriteStream(path, { flags: 'wx' });
  try {
    await (through ? pipeline(entry, through, file) : pipeline(entry, file));
  } catch (e) {
    if (e instanceof SvhnError) throw e;
    const code = (e as NodeJS.ErrnoException)?.code ?? '';
    if (code.startsWith('E') && !code.startsWith('ERR_')) throw ioError(path, 'write', e);
    throw e;
  }
}

/** digitStruct's photos as CSV rows: each named photo must be in the archive; boxes clipped to it. */
async function labelPhotos(opts: ExtractOptions, unpacked: Unpacked): Promise<{ rows: PhotoLabel[]; clipped: number }> {
  const { archive, split } = opts;
  const structName = `${split}/${DIGIT_STRUCT}`;
  if (!unpacked.digitStruct) {
    throw new SvhnError('BAD_INPUT', `${archive}: no ${structName} in it: expected SVHN's format-1 layout (${split}/1.png ..., ${structName})`);
  }
  const entries = await readDigitStruct(unpacked.digitStruct, { name: `${archive}: ${structName}` });
  await rm(unpacked.digitStruct, { force: true });
  const rows: PhotoLabel[] = [];
  const listed = new Set<string>();
  let clipped = 0;
  for (const [i, entry] of entries.entries()) {
    const at = `${archive}: ${structName}: photo ${i + 1} (${entry.name})`;
    const size = unpacked.sizes.get(entry.name);
    if (!size) throw new SvhnError('BAD_INPUT', `${archive}: ${split}/${entry.name}, photo ${i + 1} in ${structName}, is not in the archive`);
    if (listed.has(entry.name)) throw new SvhnError('BAD_INPUT', `${at}: the photo is listed twice`);
    listed.add(entry.name);
    if (entry.digits.length > MAX_DIGITS) throw new SvhnError('BAD_INPUT', `${at}: ${entry.digits.length} digits: expected at most ${MAX_DIGITS}`);
    const fitted = fitBoxes(entry.boxes, size.width, size.height);
    if (typeof fitted === 'string') throw new SvhnError('BAD_INPUT', `${at}: ${fitted}`);
    clipped += fitted.filter((b, j) => !sameBox(b, entry.boxes[j]!)).length;
    rows.push({ file: posix.join(split, entry.name), number: entry.digits.join(''), boxes: fitted, line: i + 2 });
  }
  const unlisted = unpacked.sizes.size - listed.size;
  if (unlisted > 0) getLogger().warn(`${archive}: ${unlisted} photo${unlisted === 1 ? '' : 's'} in ${split}/ not named in ${structName}: kept, left out of ${split}.csv`);
  return { rows, clipped };
}

function sameBox(a: Box, b: Box): boolean {
  return a.every((v, k) => v === b[k]);
}
