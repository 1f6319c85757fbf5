/**
 * JSON files a user can damage (model.json, metadata.json, history.json, report.json, the cache
 * manifest, checkpoint state): one parser whose error is one line naming the file and what was
 * wrong, and never echoes the file's bytes (V8's messages quote them, control characters
 * included).
 */
import { SvhnError, ioError, type ErrorCode } from '../errors.js';
import { readRegularFile } from './files.js';

export interface JsonFileOptions {
  /** The error code for text that is not JSON (BAD_MODEL, BAD_CACHE, ...). */
  code: ErrorCode;
  suggestion?: string;
}

/** What is wrong with text that JSON.parse rejected, without quoting it. */
function describeJsonError(text: string, e: unknown): string {
  const message = e instanceof Error ? e.message : '';
  if (text.trim() === '') return 'an empty file';
  if (/Unexpected end of JSON input/.test(message)) return 'JSON cut short at the end of the file';
  const at = /at position (\d+)/.exec(message);
  if (at) return `invalid JSON at position ${at[1]}`;
  // "Unexpected token 'x', "...text..." is not valid JSON" carries no position; when the
  // first character cannot start a JSON value, that is the position.
  const first = text.search(/\S/);
  if (first >= 0 && !/[[{"\-0-9tfn]/.test(text[first]!)) return `invalid JSON at position ${first}`;
  return 'invalid JSON';
}

/** Parses bytes read from path; text that is not JSON is a SvhnError naming path. */
export function parseJsonFile(bytes: string | Buffer, path: string, opts: JsonFileOptions): unknown {
  const text = typeof bytes === 'string' ? bytes : bytes.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new SvhnError(opts.code, `cannot read ${path}: expected JSON, got ${describeJsonError(text, e)}`, { suggestion: opts.suggestion });
  }
}

/** Reads and parses path; a read failure is an IO error naming path. */
export async function readJsonFile(path: string, opts: JsonFileOptions): Promise<unknown> {
  let bytes: Buffer;
  try {
    bytes = await readRegularFile(path);
  } catch (e) {
    throw ioError(path, 'read', e);
  }
  return parseJsonFile(bytes, path, opts);
}
