/**
 * Predict's INPUT arguments -> a stream of items, one per image, in a stable order:
 *
 *   photo.png, scan.jpg ...   one item each, whatever the extension (tried; a bad one is an error row)
 *   folder/                   its image files (by extension, see IMAGE_EXTENSIONS), sorted by
 *                             name (code-unit order, the same on every machine); subfolders with
 *                             --recursive, walked depth-first in the same sorted order, each
 *                             folder once (a symlink loop is skipped and reported); dotfiles
 *                             and other extensions are skipped and counted
 *   test_32x32.mat            every image of an SVHN-layout MAT file, true labels known: id file.mat#i
 *   cache:test                a split of the preprocess cache under --data-dir: id cache:test#i
 *
 * Memory: a folder holds only one directory listing per level of the walk (names, not
 * images); MAT files and cache splits are read in chunks of `chunk` images.
 */
import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { CACHE_SUBDIR } from '../data/cache/cacheFormat.js';
import { CACHE_SPLITS, IMAGE_BYTES, type CacheSplit } from '../config.js';
import { SvhnError } from '../errors.js';
import { IMAGE_EXTENSIONS } from '../data/images/decode.js';
import { entryKind, sortedEntries, VisitedDirs } from '../util/dirs.js';
import { describeFileKind } from '../util/files.js';

export const CACHE_PREFIX = 'cache:';

export type InputSource =
  | { kind: 'file'; path: string }
  | { kind: 'dir'; path: string }
  | { kind: 'mat'; path: string }
  | { kind: 'cache'; split: CacheSplit };

/** One thing to predict: a file still to decode, pixels already decoded, or a failure to report. */
export type InputItem =
  | { kind: 'file'; id: string; path: string }
  | { kind: 'pixels'; id: string; image: Uint8Array; label: number | null } // image: 3072 bytes HWC
  | { kind: 'error'; id: string; error: string };

export interface ExpandOptions {
  recursive: boolean;
  dataDir: string;
  /** Images per read from MAT files and cache splits. */
  chunk?: number;
  /** Told once per folder about files skipped by extension or as dotfiles. */
  onSkipped?: (dir: string, count: number) => void;
  /** Told about each subfolder not walked because it was walked already (a symlink loop, or a second link to it). */
  onRevisit?: (dir: string) => void;
}

const DEFAULT_CHUNK = 2048; // 6 MB of uint8 images per read
const IMAGE_EXT_SET = new Set<string>(IMAGE_EXTENSIONS);

function isImageName(name: string): boolean {
  return !name.startsWith('.') && IMAGE_EXT_SET.has(extname(name).toLowerCase());
}

/**
 * Checks every INPUT exists and says what it is. A missing path or an unknown cache split is
 * a SvhnError before any work starts (`suggestion`: what the command takes, for those errors).
 */
export async function resolveInputs(args: string[], opts: { suggestion?: string } = {}): Promise<InputSource[]> {
  const suggestion = opts.suggestion ?? 'pass image files, folders, a .mat file or cache:test';
  if (args.length === 0) throw new SvhnError('BAD_FLAG', 'INPUT: expected at least one image, folder, .mat file or cache:SPLIT');
  const sources: InputSource[] = [];
  for (const arg of args) {
    if (arg.startsWith(CACHE_PREFIX)) {
      const split = arg.slice(CACHE_PREFIX.length);
      if (!(CACHE_SPLITS as readonly string[]).includes(split)) {
        throw new SvhnError('BAD_FLAG', `INPUT ${arg}: expected cache:${CACHE_SPLITS.join('|cache:')}, got cache:${split}`);
      }
      sources.push({ kind: 'cache', split: split as CacheSplit });
      continue;
    }
    let st;
    try {
      st = await stat(arg);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new SvhnError('BAD_INPUT', `INPUT ${arg}: ${code === 'ENOENT' ? 'no such file or directory' : code === 'EACCES' ? 'permission denied' : String((e as Error).message)}`, {
        suggestion,
        cause: e,
      });
    }
    if (!st.isDirectory() && !st.isFile()) {
      // A FIFO or device would block the read (and Ctrl-C) forever: refuse it before any work.
      throw new SvhnError('BAD_INPUT', `INPUT ${arg}: expected a regular file or a folder, got ${describeFileKind(st)}`, {
        suggestion,
      });
    }
    if (st.isDirectory()) sources.push({ kind: 'dir', path: arg });
    else if (extname(arg).toLowerCase() === '.mat') sources.push({ kind: 'mat', path: arg });
    else sources.push({ kind: 'file', path: arg });
  }
  return sources;
}

async function* walkDir(dir: string, opts: ExpandOptions, visited: VisitedDirs): AsyncGenerator<InputItem> {
  let entries: Dirent[];
  try {
    entries = await sortedEntries(dir);
  } catch (e) {
    yield { kind: 'error', id: dir, error: `cannot list folder: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
    return;
  }
  let skipped = 0;
  for (const e of entries) {
    const path = join(dir, e.name);
    const kind = await entryKind(path, e);
    if (kind === 'dir') {
      if (!opts.recursive || e.name.startsWith('.')) skipped++;
      else if (await visited.enter(path)) yield* walkDir(path, opts, visited);
      else opts.onRevisit?.(path);
    } else if (kind === 'file' && isImageName(e.name)) {
      yield { kind: 'file', id: path, path };
    } else {
      skipped++;
    }
  }
  if (skipped > 0) opts.onSkipped?.(dir, skipped);
}

/** A folder input's visited set: its own folder counts as entered, so a link back to it is not followed. */
async function rootVisited(dir: string): Promise<VisitedDirs> {
  const visited = new VisitedDirs();
  await visited.enter(dir);
  return visited;
}

async function* walkRoot(dir: string, opts: ExpandOptions): AsyncGenerator<InputItem> {
  yield* walkDir(dir, opts, await rootVisited(dir));
}

async function* matItems(path: string, chunk: number): AsyncGenerator<InputItem> {
  const { readSvhnMatChunks } = await import('../data/mat/mat.js');
  for await (const c of readSvhnMatChunks(path, { chunk })) {
    for (let i = 0; i < c.count; i++) {
      // subarray: a view into the chunk's fresh buffer, which lives as long as a view does.
      yield { kind: 'pixels', id: `${path}#${c.start + i}`, image: c.images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES), label: c.labels[i]! };
    }
  }
}

async function* cacheItems(split: CacheSplit, dataDir: string, chunk: number): AsyncGenerator<InputItem> {
  const { openCache, readCacheSplitChunks } = await import('../data/cache/cache.js');
  const cache = await openCache(dataDir);
  for await (const c of readCacheSplitChunks(cache, split, chunk)) {
    for (let i = 0; i < c.count; i++) {
      yield { kind: 'pixels', id: `${CACHE_PREFIX}${split}#${c.start + i}`, image: c.images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES), label: c.labels[i]! };
    }
  }
}

/** The items of every source, in argument order. */
export async function* expandInputs(sources: InputSource[], opts: ExpandOptions): AsyncGenerator<InputItem> {
  const chunk = opts.chunk ?? DEFAULT_CHUNK;
  for (const s of sources) {
    if (s.kind === 'file') yield { kind: 'file', id: s.path, path: s.path };
    else if (s.kind === 'dir') yield* walkRoot(s.path, opts);
    else if (s.kind === 'mat') yield* matItems(s.path, chunk);
    else yield* cacheItems(s.split, opts.dataDir, chunk);
  }
}

async function countDir(dir: string, recursive: boolean, visited: VisitedDirs): Promise<number> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return 1; // reported as one error row
  }
  let n = 0;
  for (const e of entries) {
    const path = join(dir, e.name);
    const kind = await entryKind(path, e);
    if (kind === 'dir') n += recursive && !e.name.startsWith('.') && (await visited.enter(path)) ? await countDir(path, recursive, visited) : 0;
    else if (kind === 'file' && isImageName(e.name)) n++;
  }
  return n;
}

/**
 * How many items expandInputs will yield, for the progress bar's total: folders are listed
 * (names only), MAT files' headers and the cache manifest give their counts. Bad MAT files
 * and caches throw here, before any work, with the readers' own messages; a cache split is
 * verified here (labels and sha256), as train and evaluate verify theirs.
 */
export async function countInputs(sources: InputSource[], opts: Pick<ExpandOptions, 'recursive' | 'dataDir'>): Promise<number> {
  let total = 0;
  for (const s of sources) {
    if (s.kind === 'file') total += 1;
    else if (s.kind === 'dir') total += await countDir(s.path, opts.recursive, await rootVisited(s.path));
    else if (s.kind === 'mat') {
      const { inspectMat } = await import('../data/mat/mat.js');
      const x = (await inspectMat(s.path)).variables.find((v) => v.name === 'X');
      total += x?.dims[3] ?? 0;
    } else {
      const { openCache } = await import('../data/cache/cache.js');
      const cache = await openCache(opts.dataDir, { verify: [s.split] }); // labels 0..9 and sha256, as train checks
      const entry = cache.manifest.splits[s.split];
      if (!entry) {
        throw new SvhnError('MISSING_DATA', `INPUT cache:${s.split}: the cache in ${opts.dataDir} has no '${s.split}' split (it has ${Object.keys(cache.manifest.splits).join(', ')})`, {
          suggestion: s.split === 'extra' ? 'run `svhn preprocess --extra`' : 're-run `svhn preprocess`',
        });
      }
      total += entry.count;
    }
  }
  return total;
}

/** Device and inode of an existing file; undefined when it does not exist or cannot be read. */
async function fileKey(path: string): Promise<string | undefined> {
  try {
    const st = await stat(path);
    return st.isFile() ? `${st.dev}:${st.ino}` : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The input that `target` is, if any: a file or .mat named as an input, a file the walk of a
 * folder input yields, or a file of the cache a cache:SPLIT input reads. Compared by device
 * and inode, so links and relative paths are seen through. For refusing an output path that
 * would replace an input; a target that does not exist yet is no input.
 */
export async function findInputFile(sources: InputSource[], target: string, opts: Pick<ExpandOptions, 'recursive' | 'dataDir'>): Promise<string | undefined> {
  const key = await fileKey(target);
  if (key === undefined) return undefined;
  for (const s of sources) {
    if (s.kind === 'file' || s.kind === 'mat') {
      if ((await fileKey(s.path)) === key) return s.path;
    } else if (s.kind === 'dir') {
      for await (const item of walkRoot(s.path, { recursive: opts.recursive, dataDir: opts.dataDir })) {
        if (item.kind === 'file' && (await fileKey(item.path)) === key) return item.path;
      }
    } else {
      const dir = join(opts.dataDir, CACHE_SUBDIR);
      const names = await readdir(dir).catch(() => [] as string[]);
      for (const name of names) if ((await fileKey(join(dir, name))) === key) return `${CACHE_PREFIX}${s.split} (${join(dir, name)})`;
    }
  }
  return undefined;
}

/**
 * One of N shards of the input list (`--shard I/N`, I counted from 0 like Kubernetes'
 * JOB_COMPLETION_INDEX): a contiguous block of the items in expandInputs' order, so the N
 * shards' rows, concatenated in shard order, are one run's rows.
 */
export interface Shard {
  index: number; // 0..count-1
  count: number;
}

/** `I/N` -> a shard, or a message saying what was expected (for the flag's one-line error). */
export function parseShard(value: string): Shard | string {
  const m = /^(\d+)\/(\d+)$/.exec(value.trim());
  const expected = `expected I/N, the I-th of N shards with I counted from 0 (0/3, 1/3, 2/3)`;
  if (!m) return `${expected}, got '${value}'`;
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(count) || count < 1) return `${expected}, with N >= 1, got '${value}'`;
  if (index >= count) return `${expected}, with I < N (the last of ${count} shards is ${count - 1}/${count}), got '${value}'`;
  return { index, count };
}

/** The items [start, end) of `total` that shard I/N handles: floor(total*I/N) to floor(total*(I+1)/N). */
export function shardRange(total: number, shard: Shard): { start: number; end: number } {
  // BigInt: total*I may pass 2^53 for huge inputs; exact either way.
  const at = (i: number) => Number((BigInt(total) * BigInt(i)) / BigInt(shard.count));
  return { start: at(shard.index), end: at(shard.index + 1) };
}

/**
 * Items [start, end) of a stream. The ones before are passed over as they come (a file item
 * is a name, decoded only later, so skipped files are never read); the stream is closed at `end`.
 */
export async function* sliceItems(items: AsyncIterable<InputItem>, start: number, end: number): AsyncGenerator<InputItem> {
  if (end <= start) return;
  let i = 0;
  for await (const item of items) {
    if (i >= start) yield item;
    if (++i >= end) return;
  }
}
