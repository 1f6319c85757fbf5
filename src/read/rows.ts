/**
 * `svhn read`'s rows: one per photo, from a Reading (tasks/read/reading.ts) whose boxes are
 * already in the original photo's pixels.
 *
 * CSV (RFC 4180 quoting), one header line, then per photo:
 *   input,number,confidence,boxes,digit_confidences,abstained,best,error
 *   photos/1.png,19,0.8123,246 77 327 296;323 81 419 300,0.9012;0.9013,false,19,
 * JSONL, one object per line, the same fields with the digits as objects:
 *   {"input":"photos/1.png","number":"19","confidence":0.8123,"digits":[{"digit":1,"confidence":0.9012,"box":[246,77,327,296]},...],"abstained":false,"best":"19","error":null}
 *
 *   number      the digits left to right, as text ("07" keeps its zero). Empty in CSV for a photo
 *               with no number ("" in JSONL), for a row that abstained and for a failed photo
 *               (both null in JSONL)
 *   confidence  of the whole number (for no number: how sure the reader is there is none); 4 decimals
 *   boxes       each digit's box `left top right bottom` in the original photo's pixels, rounded
 *               to whole pixels (right and bottom exclusive), `;` between digits, as
 *               `svhn preprocess --format full --labels` reads them
 *   digit_confidences  each digit's confidence, 4 decimals, `;` between digits
 *   abstained   true when the number's confidence is below --min-confidence: `number` is empty
 *               and `best` holds the reading (its boxes and confidences are still given). A photo
 *               with no number never abstains; a failed photo neither
 *   best        the reader's number whether it abstained or not ('' for no number)
 *   error       why a photo could not be read (then every other cell is empty)
 * Names are kept exactly, except on a terminal (see predict/output.ts).
 */
import type { Box } from '../data/images/photoLabels.js';
import type { Reading } from '../tasks/read/reading.js';
import { csvCell, jsonLine, type RowFormatter } from '../predict/output.js';
import { elideLong, printable } from '../util/text.js';

export const READ_CSV_COLUMNS = ['input', 'number', 'confidence', 'boxes', 'digit_confidences', 'abstained', 'best', 'error'] as const;

/** One digit of a row: confidence to 4 decimals, box in whole original-photo pixels. */
export interface ReadDigit {
  digit: number;
  confidence: number;
  box: Box;
}

export interface ReadRow {
  input: string;
  /** '' for no number; null when the row abstained or the photo failed. */
  number: string | null;
  /** 4 decimals; null for a failed photo. */
  confidence: number | null;
  /** Left to right; the best reading's when the row abstained; [] for no number or a failure. */
  digits: ReadDigit[];
  abstained: boolean;
  /** The reader's number, abstained or not; null for a failed photo. */
  best: string | null;
  error: string | null;
}

const round4 = (p: number) => Math.round(p * 1e4) / 1e4;

/**
 * The row for a photo's reading (boxes already in its original pixels). Below `minConfidence`
 * a number abstains; a photo with no number does not (there is no number to hold back).
 */
export function readingRow(input: string, reading: Reading, minConfidence: number): ReadRow {
  const abstained = reading.number !== '' && reading.confidence < minConfidence;
  return {
    input,
    number: abstained ? null : reading.number,
    confidence: round4(reading.confidence),
    digits: reading.digits.map((d) => ({ digit: d.digit, confidence: round4(d.confidence), box: d.box.map((v) => Math.round(v)) as Box })),
    abstained,
    best: reading.number,
    error: null,
  };
}

/** The row of a photo that could not be read. */
export function failedRow(input: string, error: string): ReadRow {
  return { input, number: null, confidence: null, digits: [], abstained: false, best: null, error };
}

/** `terminal`: the row is shown to a person, not stored (names escaped and cut). */
export function formatReadCsvRow(row: ReadRow, terminal = false): string {
  const text = terminal ? printable : (s: string) => s;
  return (
    [
      csvCell(text(row.input)),
      row.number ?? '',
      row.confidence === null ? '' : row.confidence.toFixed(4),
      row.digits.map((d) => d.box.join(' ')).join(';'),
      row.digits.map((d) => d.confidence.toFixed(4)).join(';'),
      String(row.abstained),
      row.best ?? '',
      row.error === null ? '' : csvCell(text(row.error)),
    ].join(',') + '\n'
  );
}

export function formatReadJsonlRow(row: ReadRow, terminal = false): string {
  const shown = terminal ? { ...row, input: elideLong(row.input), error: row.error === null ? null : elideLong(row.error) } : row;
  return jsonLine(shown, terminal);
}

export const READ_ROWS: RowFormatter<ReadRow> = {
  csvHeader: READ_CSV_COLUMNS.join(',') + '\n',
  csvRow: formatReadCsvRow,
  jsonlRow: formatReadJsonlRow,
};
