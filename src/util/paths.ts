/**
 * Where a path really is: symlinks resolved, so two spellings of one place compare equal
 * (`ln -s par parlink`: `parlink`, `./par/` and `/abs/par` are all `par`). A path that does
 * not exist yet resolves through its nearest existing ancestor.
 */
import { realpath } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';

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
