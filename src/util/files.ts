/**
 * Named inputs that are not regular files. Reading a FIFO blocks until a writer comes (and a
 * blocked read on libuv's thread pool keeps the process alive past Ctrl-C); a device never
 * ends. So inputs are checked to be regular files before they are read.
 */
import type { Stats } from 'node:fs';
import { constants } from 'node:fs';
import { open, stat } from 'node:fs/promises';

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
 * Reads a whole file that must be a regular file. Opened non-blocking, so a FIFO without a
 * writer is refused at once rather than waited on; checked on the open handle (no race
 * between the check and the read). Other failures are the fs errors (ENOENT, EACCES, ...).
 */
export async function readRegularFile(path: string): Promise<Buffer> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    // A socket cannot be opened at all (ENXIO): say what it is.
    if ((e as NodeJS.ErrnoException).code === 'ENXIO') throw notRegularFileError(await stat(path));
    throw e;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw notRegularFileError(st);
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}
