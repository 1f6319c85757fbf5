/**
 * Where SVHN's cropped-digit files come from and what they must hash to: the one typed
 * source-of-truth table. `svhn download` verifies against it; a mirror or a test passes its
 * own table with the same shape (`--sources FILE.json`: readSourceTable). The format-1
 * archives' table is archives.ts beside it.
 *
 * Checksums as published: MD5 from torchvision's datasets/svhn.py, sizes and SHA-256 from
 * tensorflow-datasets' url_checksums for svhn_cropped.
 */
import { readFile } from 'node:fs/promises';
import { SPLITS, type SourceSplit } from '../../config.js';
import { SvhnError, ioError } from '../../errors.js';

export interface SourceFile {
  file: string; // name under --base-url and under --data-dir, e.g. train_32x32.mat
  size: number; // bytes
  md5: string; // lowercase hex
  sha256?: string; // lowercase hex; checked whenever present, absent only where none is published (the format-1 archives)
}

/** A cropped-digit .mat: SHA-256 is published for every one, so its table must carry it. */
export interface CroppedSourceFile extends SourceFile {
  sha256: string;
}

export type SourceTable<F extends SourceFile = SourceFile> = Record<SourceSplit, F>;

export const SVHN_SOURCES: SourceTable<CroppedSourceFile> = {
  train: {
    file: 'train_32x32.mat',
    size: 182_040_794,
    md5: 'e26dedcc434d2e4c54c9b2d4a06d8373',
    sha256: '435e94d69a87fde4fd4d7f3dd208dfc32cb6ae8af2240d066de1df7508d083b8',
  },
  test: {
    file: 'test_32x32.mat',
    size: 64_275_384,
    md5: 'eb5a983be6a315427106f1b164d9cef3',
    sha256: 'cdce80dfb2a2c4c6160906d0bd7c68ec5a99d7ca4831afa54f09182025b6a75b',
  },
  extra: {
    file: 'extra_32x32.mat',
    size: 1_329_278_602,
    md5: 'a93ce644f1a588dc4d68dda5feec44a7',
    sha256: 'a133a4beb38a00fcdda90c9489e0c04f900b660ce8a316a5e854838379a71eb3',
  },
};

/** `<baseUrl>/<file>`, tolerating a trailing slash on the base. */
export function sourceUrl(baseUrl: string, source: SourceFile): string {
  return `${baseUrl.replace(/\/+$/, '')}/${encodeURIComponent(source.file)}`;
}

/** The checks a file gets: 'size and md5', or 'size, sha256 and md5'. */
export function checksOf(source: SourceFile): string {
  return source.sha256 === undefined ? 'size and md5' : 'size, sha256 and md5';
}

/**
 * A sources table from a JSON file (a mirror whose files differ from SVHN's, or a test):
 * `{"train": {"file": "train.tar.gz", "size": 123, "md5": "...", "sha256": "..."}, "test": ...,
 * "extra": ...}`. `requireSha256` (the cropped .mat files) refuses an entry without one.
 */
export async function readSourceTable(path: string, requireSha256: boolean): Promise<SourceTable> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new SvhnError('BAD_FLAG', `--sources ${path}: ${ioError(path, 'read', e).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new SvhnError('BAD_FLAG', `--sources ${path}: not JSON (${(e as Error).message})`);
  }
  const bad = (what: string) => new SvhnError('BAD_FLAG', `--sources ${path}: ${what}`, {
    suggestion: 'expected {"train": {"file": NAME, "size": BYTES, "md5": HEX, "sha256": HEX}, "test": ..., "extra": ...}',
  });
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('expected an object keyed by split');
  const table: Partial<SourceTable> = {};
  for (const split of SPLITS) {
    const entry = (value as Record<string, unknown>)[split];
    if (typeof entry !== 'object' || entry === null) throw bad(`no entry for split '${split}'`);
    const { file, size, md5, sha256 } = entry as Record<string, unknown>;
    if (typeof file !== 'string' || !/^[^/\\\0]+$/.test(file) || file === '.' || file === '..') throw bad(`${split}.file: expected a plain file name, got ${JSON.stringify(file)}`);
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw bad(`${split}.size: expected a byte count, got ${JSON.stringify(size)}`);
    if (typeof md5 !== 'string' || !/^[0-9a-fA-F]{32}$/.test(md5)) throw bad(`${split}.md5: expected 32 hex digits, got ${JSON.stringify(md5)}`);
    if (sha256 === undefined && requireSha256) throw bad(`${split}.sha256: required for the cropped .mat files`);
    if (sha256 !== undefined && (typeof sha256 !== 'string' || !/^[0-9a-fA-F]{64}$/.test(sha256))) throw bad(`${split}.sha256: expected 64 hex digits, got ${JSON.stringify(sha256)}`);
    table[split] = { file, size, md5: md5.toLowerCase(), ...(sha256 === undefined ? {} : { sha256: (sha256 as string).toLowerCase() }) };
  }
  return table as SourceTable;
}
