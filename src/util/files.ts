/**
 * Named inputs that are not regular files. Reading a FIFO blocks until a writer comes (and a
 * blocked open() or read() on libuv's thread pool keeps the process alive past Ctrl-C and
 * SIGTERM: process.exit waits for that thread); a device never ends. So every file svhn reads
 * (a model's, the cache's, a checkpoint, a lock, a source the user names) is opened here:
 * non-blocking, then checked to be a regular file on the open handle (no race between the
 * check and the read).
 */
import type { Stats } from 'node:fs';
import { constants } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { ioError } from '../errors.js';

/** What a path is, for messages: "a file" (regular), "a folder", "a FIFO", ... */
export function describeFileKind(st: Stats): string {
  return st.isFile() ? 'a file'
    : st.isDirectory() ? 'a folder'
    : st.isFIFO() ? 'a FIFO'
    : st.isSocket() ? 'a socket'
    : st.isCharacterDevice() ? 'a character device'
    : st.isBlockDevice() ? 'a block device'
    : st.isSymbolicLink() ? 'a symbolic link'
    : 'not a regular file';
}

/** The error for a path that is not a regular file: code ENOTREG, message "expected a regular file, got a FIFO". */
export function notRegularFileError(st: Stats): NodeJS.ErrnoException {
  return Object.assign(new Error(`expected a regular file, got ${describeFileKind(st)}`), { code: 'ENOTREG' });
}

/**
 * Whether e is the refusal of a path that is not a regular file. Readers that take an
 * unreadable file for a missing one (a stale marker, an optional chart) still report this.
 */
export function isNotRegularFile(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | undefined)?.code === 'ENOTREG';
}

const OPEN_FLAGS = {
  r: constants.O_RDONLY,
  w: constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC,
  a: constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND,
} as const;

/**
 * Opens a file that must be a regular file: for reading ('r', the default), or for writing
 * a file svhn keeps under its own name and appends to ('w' truncates or creates, 'a' appends
 * or creates, e.g. a download's .part). Opened non-blocking, so a FIFO without a writer (or,
 * to write, without a reader) is refused at once rather than waited on; O_NONBLOCK changes
 * nothing for a regular file. Other failures are the fs errors (ENOENT, EACCES, ...). The
 * caller closes the handle.
 */
export async function openRegularFile(path: string, flags: keyof typeof OPEN_FLAGS = 'r'): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    fh = await open(path, OPEN_FLAGS[flags] | constants.O_NONBLOCK);
  } catch (e) {
    // A socket cannot be opened at all, nor a FIFO for writing with no reader (ENXIO): say what it is.
    if ((e as NodeJS.ErrnoException).code === 'ENXIO') throw notRegularFileError(await stat(path));
    throw e;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw notRegularFileError(st);
    return fh;
  } catch (e) {
    await fh.close();
    throw e;
  }
}

/** Reads a whole file that must be a regular file (see openRegularFile). */
export async function readRegularFile(path: string): Promise<Buffer> {
  const fh = await openRegularFile(path);
  try {
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

/**
 * A file's bytes, or undefined when it cannot be read (missing, unreadable): for the optional
 * files of a folder (a model's evaluation, a study's trials.json). A FIFO or a device is
 * refused all the same, with an error naming it.
 */
export async function readRegularFileIfReadable(path: string): Promise<Buffer | undefined> {
  try {
    return await readRegularFile(path);
  } catch (e) {
    if (isNotRegularFile(e)) throw ioError(path, 'read', e);
    return undefined;
  }
}
