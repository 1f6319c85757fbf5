/**
 * Where a path really is: symlinks resolved, so two spellings of one place compare equal
 * (`ln -s par parlink`: `parlink`, `./par/` and `/abs/par` are all `par`). A path that does
 * not exist yet resolves through its nearest existing ancestor.
 */
import { realpath } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { SvhnError } from '../errors.js';

/** The absolute path with every symlink in its existing part resolved. */
export async function realPath(path: string): Promise<string> {
  const abs = resolve(path);
  try {
    return await realpath(abs);
  } catch {
    const parent = dirname(abs);
    if (parent === abs) return abs;
    return join(await realPath(parent), basename(abs));
  }
}

/** True when path is dir itself or lies inside it, after resolving symlinks in both. */
export async function isSameOrInside(path: string, dir: string): Promise<boolean> {
  const [p, d] = await Promise.all([realPath(path), realPath(dir)]);
  return p === d || p.startsWith(d.endsWith(sep) ? d : d + sep);
}

/** A place an output may not be written into: a folder (or a file) and what it is, for the message. */
export interface OwnPlace {
  path: string;
  what: string;
}

/**
 * Refuses an output `flag PATH` that is, or lies inside, one of `places` (a model directory,
 * the preprocess cache, an input): writing there would replace what the run reads or what
 * svhn keeps. Compared with symlinks resolved. `kind` names what the flag takes, for the message.
 */
export async function assertOutside(flag: string, path: string, places: readonly OwnPlace[], kind: 'a file' | 'a folder' = 'a file'): Promise<void> {
  for (const place of places) {
    if (await isSameOrInside(path, place.path)) {
      throw new SvhnError('BAD_FLAG', `${flag} ${path}: expected ${kind} outside ${place.what}`, { suggestion: 'write to another folder' });
    }
  }
}
