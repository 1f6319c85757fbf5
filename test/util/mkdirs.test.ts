import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDirs } from '../../src/util/mkdirs.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'svhn-mkdirs-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('makeDirs', () => {
  it('creates missing parents and accepts an existing folder', async () => {
    await makeDirs(join(tmp, 'a', 'b', 'c'));
    await makeDirs(join(tmp, 'a', 'b', 'c'));
    expect(existsSync(join(tmp, 'a', 'b', 'c'))).toBe(true);
  });

  it('fails with ENOTDIR, not ENOENT, when an ancestor is a file', async () => {
    await writeFile(join(tmp, 'file'), 'x');
    await expect(makeDirs(join(tmp, 'file', 'sub', 'deeper'))).rejects.toMatchObject({ code: 'ENOTDIR' });
  });
});
