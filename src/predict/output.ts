/**
 * Prediction rows as CSV or JSON lines, written to a stream (stdout) or to a file that
 * appears under its final name only when complete (temp sibling, fsync, rename).
 *
 * CSV (RFC 4180 quoting), one header line, then per input:
 *   input,predicted,confidence,top1,top1_prob,...,topK,topK_prob,label,error,best,abstained
 * Empty cells where a value does not apply (no label known; no prediction for a failed input;
 * `predicted` of a row that abstained, below --min-confidence). `best` is the most probable
 * digit, abstained or not; `abstained` is true or false (false for a failed input). The two
 * came last so that every older column kept its index.
 * JSONL, one object per line:
 *   {"input":"a.png","predicted":3,"confidence":0.91,"top":[{"digit":3,"prob":0.91},...],"label":null,"error":null,"best":3,"abstained":false}
 * Probabilities carry 6 decimals.
 * Rows keep the exact input names (CSV quoting, JSON escaping), except on a terminal, where
 * they are shown rather than stored: there a name's control characters are escaped and a very
 * long one is cut (util/text.ts), so a file called `<ESC>[2J.png` cannot clear the screen.
 * The sink itself (openLineSink: atomic file or stream, back-pressure, terminal showing) takes
 * any kind of row through a RowFormatter; `svhn read` writes its own rows with it (read/rows.ts).
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Writable } from 'node:stream';
import { SvhnError, ioError } from '../errors.js';
import { removeStaleTemps, tempSibling } from '../util/atomic.js';
import { elideLong, printable } from '../util/text.js';
import type { PredictionRow } from './predict.js';
import { makeDirs } from '../util/mkdirs.js';

export type OutputFormat = 'csv' | 'jsonl';

const round6 = (p: number) => Math.round(p * 1e6) / 1e6;

export function csvCell(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

export function csvHeader(topK: number): string {
  const tops = Array.from({ length: topK }, (_, i) => `top${i + 1},top${i + 1}_prob`);
  return ['input', 'predicted', 'confidence', ...tops, 'label', 'error', 'best', 'abstained'].join(',') + '\n';
}

/** `terminal`: the row is shown to a person, not stored (see the top of this file). */
export function formatCsvRow(row: PredictionRow, topK: number, terminal = false): string {
  const text = terminal ? printable : (s: string) => s;
  const cells = [csvCell(text(row.input)), row.predicted === null ? '' : String(row.predicted), row.confidence === null ? '' : row.confidence.toFixed(6)];
  for (let i = 0; i < topK; i++) {
    const t = row.top[i];
    cells.push(t ? String(t.digit) : '', t ? t.prob.toFixed(6) : '');
  }
  cells.push(row.label === null ? '' : String(row.label), row.error === null ? '' : csvCell(text(row.error)));
  cells.push(row.best === null ? '' : String(row.best), String(row.abstained));
  return cells.join(',') + '\n';
}

/** A row as JSONL writes it (probabilities to 6 decimals); `svhn serve` answers with the same objects. */
export function jsonRow(row: PredictionRow) {
  return {
    input: row.input,
    predicted: row.predicted,
    confidence: row.confidence === null ? null : round6(row.confidence),
    top: row.top.map((t) => ({ digit: t.digit, prob: round6(t.prob) })),
    label: row.label,
    error: row.error,
    best: row.best,
    abstained: row.abstained,
  };
}

/**
 * JSON escapes control characters but DEL and C1 (U+0080..U+009F); on a terminal those get
 * \u escapes too (the same JSON value) and long names are cut.
 */
export function formatJsonlRow(row: PredictionRow, terminal = false): string {
  if (!terminal) return JSON.stringify(jsonRow(row)) + '\n';
  const shown = { ...row, input: elideLong(row.input), error: row.error === null ? null : elideLong(row.error) };
  return jsonLine(jsonRow(shown), true);
}

/** One JSON line; `terminal`: DEL and C1 as \u escapes too (the caller has cut long names already). */
export function jsonLine(value: unknown, terminal: boolean): string {
  const text = JSON.stringify(value);
  return (terminal ? text.replace(/[\x7f-\x9f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) : text) + '\n';
}

/** How one kind of row is written (predict's rows, read's): the CSV header line, and a row as CSV or as a JSON line. */
export interface RowFormatter<R> {
  csvHeader: string;
  /** `terminal`: the row is shown to a person, not stored (see the top of this file). */
  csvRow(row: R, terminal: boolean): string;
  jsonlRow(row: R, terminal: boolean): string;
}

/** Predict's rows with `topK` digits each. */
export function predictionRows(topK: number): RowFormatter<PredictionRow> {
  return { csvHeader: csvHeader(topK), csvRow: (row, terminal) => formatCsvRow(row, topK, terminal), jsonlRow: formatJsonlRow };
}

export interface RowSink<R = PredictionRow> {
  write(row: R): Promise<void>;
  /** Flushes; with a file, moves it into place. */
  close(): Promise<void>;
  /** Drops a half-written file (the stream is left open). */
  abort(): Promise<void>;
}

export interface LineSinkOptions {
  format: OutputFormat;
  /** File to write atomically; when absent rows go to `stream`. */
  out?: string;
  stream?: Writable;
  /** `stream` is a terminal: rows are shown, not stored (names escaped and cut). */
  terminal?: boolean;
}

export interface SinkOptions extends LineSinkOptions {
  topK: number;
}

/**
 * Writes text; when the stream's buffer is full, waits for the reader (a pipe, the disk)
 * before more rows are produced. The wait is on the write's own callback (called once the
 * chunk is handed on, which empties the buffer, or with the error that stopped it, EPIPE for
 * a reader that went away), not on 'drain' and 'error' listeners: stdout already carries an
 * 'error' listener per worker thread that pipes into it (tfjs wasm's and the conv helpers),
 * and one more per wait crossed ten (MaxListenersExceededWarning under `| head -1`).
 */
function writeChunk(stream: Writable, text: string, name: string): Promise<void> {
  const failed = (stream as Writable & { errored?: Error | null }).errored;
  if (failed) return Promise.reject(ioError(name, 'write', failed));
  return new Promise((resolve, reject) => {
    const room = stream.write(text, (err) => (err ? reject(ioError(name, 'write', err)) : resolve()));
    if (room) resolve(); // a later failure shows as stream.errored at the next write
  });
}

/** Predict's rows (openLineSink with predictionRows). */
export async function openRowSink(opts: SinkOptions): Promise<RowSink> {
  return openLineSink(opts, predictionRows(opts.topK));
}

/** A sink for any kind of row: CSV (header first) or JSON lines, to `out` atomically or to `stream`. */
export async function openLineSink<R>(opts: LineSinkOptions, rows: RowFormatter<R>): Promise<RowSink<R>> {
  const header = opts.format === 'csv' ? rows.csvHeader : '';
  const terminal = !opts.out && opts.terminal === true;
  const format = (row: R) => (opts.format === 'csv' ? rows.csvRow(row, terminal) : rows.jsonlRow(row, terminal));

  if (!opts.out) {
    const stream = opts.stream;
    if (!stream) throw new SvhnError('BAD_FLAG', 'output: expected --out FILE or a stream');
    let started = false;
    return {
      async write(row) {
        if (!started && header) await writeChunk(stream, header, 'stdout');
        started = true;
        await writeChunk(stream, format(row), 'stdout');
      },
      async close() {
        if (!started && header) await writeChunk(stream, header, 'stdout');
      },
      async abort() {},
    };
  }

  const out = opts.out;
  await removeStaleTemps(out);
  const { tmp, release } = tempSibling(out);
  try {
    await makeDirs(dirname(out));
  } catch (e) {
    throw ioError(dirname(out), 'create', e);
  }
  const file = createWriteStream(tmp, { flush: true }); // flush: fsync before close, so the rename publishes complete bytes
  // Errors surface through writeChunk (stream.errored) and close(); this keeps one from crashing the process meanwhile.
  file.on('error', () => undefined);
  try {
    await once(file, 'open');
  } catch (e) {
    throw ioError(out, 'write', e);
  }
  if (header) await writeChunk(file, header, out);
  return {
    write: (row) => writeChunk(file, format(row), out),
    async close() {
      try {
        await new Promise<void>((resolve, reject) => file.end((e?: Error | null) => (e ? reject(e) : resolve())));
        await rename(tmp, out);
      } catch (e) {
        await rm(tmp, { force: true }).catch(() => undefined);
        throw ioError(out, 'write', e);
      } finally {
        release();
      }
    },
    async abort() {
      if (!file.closed) {
        const closed = once(file, 'close').catch(() => undefined);
        file.destroy();
        await closed;
      }
      await rm(tmp, { force: true }).catch(() => undefined);
      release();
    },
  };
}
