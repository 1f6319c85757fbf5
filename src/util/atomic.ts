/**
 * Nothing half-written under a final name: files are written to a temporary sibling and
 * renamed into place; directories are built under a temporary sibling and swapped in. A
 * temporary a killed run left behind is removed the next time its final name is written.
 */
import { createHash } from 'node:crypto';
import { open, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ioError } from '../errors.js';
import { getLogger } from '../log.js';
import { openRegularFile } from './files.js';
import { GONE_SUFFIX, trackTemp } from './interrupt.js';
import { makeDirs } from './mkdirs.js';
import { isProcessAlive } from './process.js';

/**
 * A temporary sibling name for `path` (same directory, so the final rename is atomic),
 * tracked so an interrupt removes it. Call release() once it is renamed or removed.
 */
export function tempSibling(path: string): { tmp: string; release: () => void } {
  const tmp = join(dirname(path), `.tmp-${basename(path)}-${process.pid}-${Date.now().toString(36)}`);
  return { tmp, release: trackTemp(tmp) };
}

/** What follows `.tmp-<name>-`: the pid, a time, and the suffix of an old final dir or of an interrupted temporary. */
const STALE_TAIL = new RegExp(`^(\\d+)-[0-9a-z]+(-old|${GONE_SUFFIX})?$`);

/**
 * Removes the temporaries of `path` a killed run left behind (SIGKILL, a crash: no handler
 * ran): siblings named by tempSibling for this very path whose pid is no longer alive.
 * Another live process's are left alone, and so are names of any other shape. Every writer
 * of a final name calls this first, so a leftover lives until that name is next written (the
 * preprocess cache's, until it is next read: data/cache/cache.ts openCache).
 */
export async function removeStaleTemps(path: string): Promise<void> {
  const dir = dirname(path);
  const prefix = `.tmp-${basename(path)}-`;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return; // no folder yet: nothing left behind
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const m = STALE_TAIL.exec(name.slice(prefix.length));
    if (!m || Number(m[1]) === process.pid || isProcessAlive(Number(m[1]))) continue;
    try {
      await rm(join(dir, name), { recursive: true, force: true });
      getLogger().info({ path: join(dir, name) }, `removed ${join(dir, name)}, left by an interrupted run (pid ${m[1]})`);
    } catch {
      // a read-only folder: left for a run that can write there
    }
  }
}

/** Writes data to path atomically (temp file, fsync, rename). */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await removeStaleTemps(path);
  const { tmp, release } = tempSibling(path);
  try {
    await makeDirs(dirname(path));
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw ioError(path, 'write', e);
  } finally {
    release();
  }
}

export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
}

/**
 * Builds a directory atomically: `build` fills a temporary sibling; on success it replaces
 * `finalDir` (an old one is moved aside, then removed). On failure the temp dir is removed
 * and the old directory, if any, is left as it was.
 */
export async function buildDirAtomic<T>(finalDir: string, build: (tmpDir: string) => Promise<T>): Promise<T> {
  await removeStaleTemps(finalDir);
  const { tmp, release } = tempSibling(finalDir);
  try {
    return await buildDirAtomicAt(finalDir, tmp, build);
  } finally {
    release();
  }
}

async function buildDirAtomicAt<T>(finalDir: string, tmp: string, build: (tmpDir: string) => Promise<T>): Promise<T> {
  try {
    await makeDirs(tmp);
  } catch (e) {
    throw ioError(dirname(finalDir), 'create a directory in', e);
  }
  let result: T;
  try {
    result = await build(tmp);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw e;
  }
  const old = `${tmp}-old`;
  let hadOld = false;
  try {
    await rename(finalDir, old);
    hadOld = true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      throw ioError(finalDir, 'replace', e);
    }
  }
  try {
    await rename(tmp, finalDir);
  } catch (e) {
    if (hadOld) await rename(old, finalDir).catch(() => undefined);
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw ioError(finalDir, 'move into place', e);
  }
  if (hadOld) await rm(old, { recursive: true, force: true }).catch(() => undefined);
  return result;
}

/** Streams a file (a regular one: util/files.ts) through sha256 (and md5 when asked); hex digests. */
export async function hashFile(path: string, algorithms: string[] = ['sha256']): Promise<Record<string, string>> {
  const hashes = algorithms.map((a) => createHash(a));
  const fh = await openRegularFile(path).catch((e: unknown) => {
    throw ioError(path, 'read', e);
  });
  await new Promise<void>((resolve, reject) => {
    const s = fh.createReadStream({ highWaterMark: 1 << 20 }); // closes fh when it ends or fails
    s.on('data', (chunk) => hashes.forEach((h) => h.update(chunk)));
    s.on('error', (e) => reject(ioError(path, 'read', e)));
    s.on('end', () => resolve());
  });
  return Object.fromEntries(algorithms.map((a, i) => [a, hashes[i]!.digest('hex')]));
}

export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function fileSize(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}

export async function writeFileSafe(path: string, data: string | Uint8Array): Promise<void> {
  try {
    await makeDirs(dirname(path));
    await writeFile(path, data);
  } catch (e) {
    throw ioError(path, 'write', e);
  }
}
