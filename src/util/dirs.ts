/**
 * Folder walking shared by predict (./predict/inputs.ts) and labelled sets (./data/images/labelled.ts):
 * sorted listings, symlink-resolving entry kinds, and a record of folders already walked so
 * that a symlink loop (`ln -s . self`) or a second link to the same folder is walked once.
 */
import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';

/** Directory entries sorted by name (code-unit order: the same on every machine); an unreadable directory throws. */
export async function sortedEntries(dir: string): Promise<Dirent[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Resolves symlinks (and unknown types) with stat; undefined for sockets, FIFOs, devices. */
export async function entryKind(path: string, e: Dirent): Promise<'file' | 'dir' | undefined> {
  if (e.isFile()) return 'file';
  if (e.isDirectory()) return 'dir';
  if (!e.isSymbolicLink()) return undefined;
  try {
    const st = await stat(path);
    return st.isDirectory() ? 'dir' : st.isFile() ? 'file' : undefined;
  } catch {
    return 'file'; // a dangling link: decoding reports it as unreadable
  }
}

/**
 * Folders entered during one walk, by device and inode (what a folder is, whatever the path
 * or links that reach it).
 */
export class VisitedDirs {
  private readonly seen = new Set<string>();

  /** Records dir; false when it was already entered (a loop, or another link to it). Unstatable folders count as new: listing them reports the error. */
  async enter(dir: string): Promise<boolean> {
    let key: string;
    try {
      const st = await stat(dir);
      key = `${st.dev}:${st.ino}`;
    } catch {
      return true;
    }
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    return true;
  }
}

/** What is at a path that is to be replaced whole by a directory: nothing, a non-directory, or a directory and its entries (sorted). */
export type ReplaceTarget = { kind: 'missing' } | { kind: 'not-dir' } | { kind: 'dir'; entries: string[] };

/** Looks at dir before it is replaced whole (buildDirAtomic): a failure other than "not there" or "not a folder" throws. */
export async function replaceTarget(dir: string): Promise<ReplaceTarget> {
  try {
    return { kind: 'dir', entries: (await sortedEntries(dir)).map((e) => e.name) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { kind: 'missing' };
    // ENOTDIR: dir is a file, or a parent of it is (then nothing is there: whoever creates it reports the parent)
    if (code === 'ENOTDIR') return (await stat(dir).then(() => true, () => false)) ? { kind: 'not-dir' } : { kind: 'missing' };
    throw e;
  }
}

/** "keep.png", "keep.png and 5 more": the first of some entries, for messages. */
export function firstAndCount(names: readonly string[]): string {
  return `${names[0]}${names.length > 1 ? ` and ${names.length - 1} more` : ''}`;
}
