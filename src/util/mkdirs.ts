/**
 * `mkdir -p` that says why it failed. Node's recursive mkdir reports ENOENT when a folder
 * cannot be made for another reason, a read-only file system (EROFS) among them; the
 * nearest existing ancestor then tells the real reason: not a folder, or not writable.
 */
import { constants } from 'node:fs';
import { access, mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/** Creates dir and its missing parents; a failure carries the real errno (EROFS, EACCES, ENOTDIR, ...). */
export async function makeDirs(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    throw (await whyNotCreatable(dir)) ?? e;
  }
}

/** Why dir's nearest existing ancestor cannot hold new folders, or undefined when it looks as if it could. */
async function whyNotCreatable(dir: string): Promise<unknown> {
  let path = resolve(dir);
  for (let parent = dirname(path); parent !== path; path = parent, parent = dirname(path)) {
    try {
      if (!(await stat(parent)).isDirectory()) {
        return Object.assign(new Error(`${parent} is not a directory`), { code: 'ENOTDIR' });
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      return e;
    }
    try {
      await access(parent, constants.W_OK); // EROFS on a read-only mount, even for root
    } catch (e) {
      return e;
    }
    return undefined;
  }
  return undefined;
}
