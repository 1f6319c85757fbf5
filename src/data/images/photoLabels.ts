/**
 * Labelled whole photos ("format full"): the one shape every source of house-number photos
 * takes on disk, so that one reader serves them all. SVHN's format-1 archives (digitStruct.mat)
 * are converted to it, the synthetic photo sample is written in it, and your own labelled
 * photos come in it (`svhn preprocess --format full --labels FILE.csv`).
 *
 *   FILE.csv   file,number,boxes
 *              photos/1.png,19,246 77 327 296;323 81 419 300
 *              photos/7.png,,                       (a photo with no number)
 *
 *   file     the photo, relative to the CSV's folder (or absolute)
 *   number   its digits left to right ("207"), or empty for a photo without a number
 *   boxes    optional: each digit's box in the photo's own pixels, `left top right bottom`
 *            (right and bottom exclusive), in reading order, `;` between digits; as many as
 *            the number has digits
 *
 * A header row is required (it names the columns: `file,number` or `file,number,boxes`), so
 * a number such as 207 is never mistaken for one. Rows are parsed and checked here (digits
 * only, box count, each box non-empty); whether a box lies in its photo needs the photo's
 * size, and is checked by fitBoxes once it is decoded. SVHN's own boxes now and then cross
 * the photo's edge by a pixel or a few (photo 252 of train: left -1), so a box mostly inside
 * is clipped to the photo, and one mostly outside is an error.
 */
import { SvhnError } from '../../errors.js';
import { parseCsvLine } from './labelled.js';

/** One digit's box in photo pixels: [left, top, right, bottom), right and bottom exclusive. */
export type Box = [number, number, number, number];

export interface PhotoLabel {
  /** The file as the CSV names it. */
  file: string;
  /** Digits left to right; '' for a photo without a number. */
  number: string;
  /** One per digit, in reading order; null when the CSV has no boxes column (or the row leaves it empty for a number). */
  boxes: Box[] | null;
  /** CSV line (1-based), for messages. */
  line: number;
}

/** The longest number a photo may carry (SVHN's longest have 5 digits; one more for the rare longer ones). */
export const MAX_DIGITS = 6;

/** `l t r b;l t r b` for a row. */
export function formatBoxes(boxes: readonly Box[]): string {
  return boxes.map((b) => b.join(' ')).join(';');
}

/** A CSV cell: quoted when it holds a comma, a quote or a line break. */
function cell(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** The CSV text for rows (header first; a boxes column when any row has boxes). */
export function formatPhotoLabels(rows: ReadonlyArray<Pick<PhotoLabel, 'file' | 'number' | 'boxes'>>): string {
  const withBoxes = rows.some((r) => r.boxes !== null);
  const lines = [withBoxes ? 'file,number,boxes' : 'file,number'];
  for (const r of rows) lines.push([cell(r.file), r.number, ...(withBoxes ? [r.boxes ? formatBoxes(r.boxes) : ''] : [])].join(','));
  return lines.join('\n') + '\n';
}

/** Parses `l t r b;...`; a message (not thrown) says what is wrong. */
function parseBoxes(text: string): Box[] | string {
  const boxes: Box[] = [];
  for (const [i, part] of text.split(';').entries()) {
    const values = part.trim().split(/\s+/);
    if (values.length !== 4 || !values.every((v) => /^-?\d+$/.test(v))) {
      return `box ${i + 1} '${part.trim()}': expected four integers 'left top right bottom'`;
    }
    const [l, t, r, b] = values.map(Number) as Box;
    if (r <= l || b <= t) return `box ${i + 1} '${part.trim()}': expected right > left and bottom > top`;
    boxes.push([l, t, r, b]);
  }
  return boxes;
}

/**
 * Rows of a photo-labels CSV (text as read from `path`, which names it in errors). Every
 * problem is one error naming the file and line: a missing header, a wrong field count, a
 * number with a non-digit, boxes that do not match the number's length, a file listed twice.
 */
export function parsePhotoLabels(text: string, path: string): PhotoLabel[] {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const rows: PhotoLabel[] = [];
  const firstLine = new Map<string, number>();
  let columns: number | undefined;
  for (const [i, raw] of lines.entries()) {
    const line = i + 1;
    if (raw.trim() === '') continue;
    const at = `${path} line ${line}`;
    const fields = parseCsvLine(raw);
    if (!fields) throw new SvhnError('BAD_INPUT', `${at}: a quoted field is not closed`);
    if (columns === undefined) {
      const header = fields.map((f) => f.toLowerCase());
      if (!(header[0] === 'file' && header[1] === 'number' && (header.length === 2 || (header.length === 3 && header[2] === 'boxes')))) {
        throw new SvhnError('BAD_INPUT', `${at}: expected the header 'file,number' or 'file,number,boxes', got '${fields.join(',')}'`);
      }
      columns = header.length;
      continue;
    }
    if (fields.length !== columns) throw new SvhnError('BAD_INPUT', `${at}: expected ${columns} fields, got ${fields.length}`);
    const [file, number, boxText] = fields as [string, string, string | undefined];
    if (file === '') throw new SvhnError('BAD_INPUT', `${at}: the file is empty`);
    if (!/^\d*$/.test(number)) throw new SvhnError('BAD_INPUT', `${at}: number '${number}' for ${file}: expected digits 0-9 only (or nothing, for a photo without a number)`);
    if (number.length > MAX_DIGITS) throw new SvhnError('BAD_INPUT', `${at}: number '${number}' for ${file}: expected at most ${MAX_DIGITS} digits`);
    let boxes: Box[] | null = null;
    if (boxText !== undefined && boxText !== '') {
      const parsed = parseBoxes(boxText);
      if (typeof parsed === 'string') throw new SvhnError('BAD_INPUT', `${at}: ${file}: ${parsed}`);
      if (parsed.length !== number.length) {
        throw new SvhnError('BAD_INPUT', `${at}: ${file}: ${parsed.length} box${parsed.length === 1 ? '' : 'es'} for the ${number.length}-digit number '${number}': expected one box per digit`);
      }
      boxes = parsed;
    } else if (columns === 3 && number === '') {
      boxes = []; // no number, no boxes: known to hold none
    }
    const earlier = firstLine.get(file);
    if (earlier !== undefined) throw new SvhnError('BAD_INPUT', `${at}: ${file} is listed twice (first on line ${earlier})`, { suggestion: 'keep one row per photo' });
    firstLine.set(file, line);
    rows.push({ file, number, boxes, line });
  }
  if (columns === undefined) throw new SvhnError('BAD_INPUT', `${path}: no header: expected 'file,number' or 'file,number,boxes' on the first line`);
  return rows;
}

/** The part of a box that must lie inside its photo; less is an error rather than a clip. */
export const MIN_INSIDE = 0.5;

/**
 * The boxes clipped to a width x height photo, or what is wrong (a message for an error
 * naming the row) when a box has less than MIN_INSIDE of its area inside the photo.
 */
export function fitBoxes(boxes: readonly Box[], width: number, height: number): Box[] | string {
  const fitted: Box[] = [];
  for (const [i, [l, t, r, b]] of boxes.entries()) {
    const clipped: Box = [Math.max(0, l), Math.max(0, t), Math.min(width, r), Math.min(height, b)];
    const inside = Math.max(0, clipped[2] - clipped[0]) * Math.max(0, clipped[3] - clipped[1]);
    if (inside < MIN_INSIDE * (r - l) * (b - t)) return `box ${i + 1} '${l} ${t} ${r} ${b}' leaves the ${width}x${height} photo`;
    fitted.push(clipped);
  }
  return fitted;
}
