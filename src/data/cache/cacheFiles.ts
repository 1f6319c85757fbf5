/**
 * File handling both caches share: the digit cache (cache/, ./cache.ts, ./preprocess.ts) and
 * the photo cache (cache-full/, ./photoCache.ts, ./photoPreprocess.ts). Each is a folder of
 * flat uint8 files named in a manifest, built whole and replaced whole.
 */
import { createHash, type Hash } from 'node:crypto';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { SvhnError, ioError } from '../../errors.js';
import { firstAndCount, replaceTarget } from '../../util/dirs.js';
import { describeFileKind, notRegularFileError, readRegularFile } from '../../util/files.js';
import { parseJsonFile } from '../../util/json.js';

/** Size in bytes, or undefined when the file is missing; a FIFO or device (size 0, or endless) is refused. */
export async function cacheFileSize(path: string): Promise<number | undefined> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioError(path, 'read', e);
  }
  if (!st.isFile()) throw ioError(path, 'read', notRegularFileError(st));
  return st.size;
}

/**
 * A cache's manifest.json: its bytes (their sha256 names the data a model learned from) and
 * its parsed JSON, unchecked. Missing: `missing()`; not JSON: BAD_CACHE with `rerun`.
 */
export async function readManifestFile(path: string, missing: () => SvhnError, rerun: string): Promise<{ bytes: Buffer; parsed: unknown }> {
  let bytes: Buffer;
  try {
    bytes = await readRegularFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw missing();
    throw ioError(path, 'read', e);
  }
  return { bytes, parsed: parseJsonFile(bytes, path, { code: 'BAD_CACHE', suggestion: rerun }) };
}

/** A whole cache file that must hold exactly `expected` bytes; `bad` makes the error for another size. */
export async function readExact(path: string, expected: number, bad: (message: string) => SvhnError): Promise<Uint8Array> {
  let buf: Buffer;
  try {
    buf = await readRegularFile(path);
  } catch (e) {
    throw ioError(path, 'read', e);
  }
  if (buf.length !== expected) throw bad(`${path}: expected ${expected} bytes, got ${buf.length}`);
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

/**
 * A cache folder is replaced whole, so it must be absent or one of its writer's own (only
 * `ownFiles`): a file of anyone else's is refused, naming it, rather than removed with it.
 */
export async function assertReplaceable(dir: string, ownFiles: ReadonlySet<string>, what = 'an earlier cache'): Promise<void> {
  const refuse = (got: string, several = false) =>
    new SvhnError('BAD_INPUT', `${dir}: expected a new folder or ${what} (it is replaced whole), got ${got}`, {
      suggestion: `move ${several ? 'them' : 'it'}, or pass another --data-dir`,
    });
  let target;
  try {
    target = await replaceTarget(dir);
  } catch (e) {
    throw ioError(dir, 'read', e);
  }
  if (target.kind === 'missing') return;
  if (target.kind === 'not-dir') throw refuse(describeFileKind(await stat(dir)));
  const other = target.entries.filter((n) => !ownFiles.has(n));
  if (other.length) throw refuse(`one holding ${firstAndCount(other)}`, other.length > 1);
}

/** A new file written by appending, hashed (sha256) as it goes: a cache split's images or labels. */
export class HashedFileWriter {
  private readonly hash: Hash = createHash('sha256');

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
  ) {}

  static async create(path: string): Promise<HashedFileWriter> {
    try {
      return new HashedFileWriter(path, await open(path, 'w'));
    } catch (e) {
      throw ioError(path, 'create', e);
    }
  }

  async append(data: Uint8Array): Promise<void> {
    this.hash.update(data);
    try {
      await this.fh.write(data);
    } catch (e) {
      throw ioError(this.path, 'write', e);
    }
  }

  /** Synced and closed; the file's sha256 (hex). */
  async finish(): Promise<string> {
    try {
      await this.fh.sync();
    } catch (e) {
      throw ioError(this.path, 'write', e);
    } finally {
      await this.fh.close();
    }
    return this.hash.digest('hex');
  }

  async abort(): Promise<void> {
    await this.fh.close().catch(() => undefined);
  }
}

/** A split's two files, `<split>.images.u8` and `<split>.labels.u8` (names relative to the cache folder), appended together. */
export class SplitFiles {
  private constructor(
    readonly imagesFile: string,
    readonly labelsFile: string,
    private readonly images: HashedFileWriter,
    private readonly labels: HashedFileWriter,
  ) {}

  static async create(dir: string, split: string): Promise<SplitFiles> {
    const imagesFile = `${split}.images.u8`;
    const labelsFile = `${split}.labels.u8`;
    const images = await HashedFileWriter.create(join(dir, imagesFile));
    try {
      return new SplitFiles(imagesFile, labelsFile, images, await HashedFileWriter.create(join(dir, labelsFile)));
    } catch (e) {
      await images.abort();
      throw e;
    }
  }

  async append(images: Uint8Array, labels: Uint8Array): Promise<void> {
    await this.images.append(images);
    await this.labels.append(labels);
  }

  /** Both synced and closed; their sha256. */
  async finish(): Promise<{ images: string; labels: string }> {
    let images: string;
    try {
      images = await this.images.finish();
    } catch (e) {
      await this.labels.abort();
      throw e;
    }
    return { images, labels: await this.labels.finish() };
  }

  async abort(): Promise<void> {
    await this.images.abort();
    await this.labels.abort();
  }
}
