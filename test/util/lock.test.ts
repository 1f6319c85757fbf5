import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withLock } from '../../src/util/lock.js';
import { rejection } from '../helpers.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'svhn-lock-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** The pid of a process that has exited. */
function deadPid(): number {
  return Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
}

describe('withLock', () => {
  it('refuses a second holder, naming the first one\'s pid, and releases when done', async () => {
    const lock = join(tmp, 'a.lock');
    const inner = await withLock(lock, '--out a', async () => {
      const owner = JSON.parse(await readFile(lock, 'utf8'));
      expect(owner).toMatchObject({ pid: process.pid, host: hostname() });
      const e = await rejection(withLock(lock, '--out a', async () => 'never'));
      expect(e.message).toMatch(new RegExp(`^--out a: another svhn run \\(pid ${process.pid}, since \\S+\\) is writing it; its lock is ${lock.replace(/[.]/g, '\\.')}$`));
      return 'ran';
    });
    expect(inner).toBe('ran');
    expect(existsSync(lock)).toBe(false);
    await expect(withLock(lock, '--out a', async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect(existsSync(lock)).toBe(false);
  });

  it('takes over a lock whose owner is gone, or that was left empty or half-written', async () => {
    const lock = join(tmp, 'b.lock');
    for (const content of [JSON.stringify({ pid: deadPid(), host: hostname(), startedAt: new Date().toISOString() }), '{"pi', '']) {
      await writeFile(lock, content);
      expect(await withLock(lock, '--out b', async () => JSON.parse(await readFile(lock, 'utf8')).pid)).toBe(process.pid);
    }
  });

  it('removes the temporary lock of a run killed while creating it, and leaves none of its own', async () => {
    const dir = join(tmp, 'c');
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir);
    const lock = join(dir, 'c.lock');
    await writeFile(join(dir, `.tmp-c.lock-${deadPid()}-lz1x2`), '');
    const seen = await withLock(lock, '--out c', async () => readdir(dir));
    expect(seen).toEqual(['c.lock']);
    expect(await readdir(dir)).toEqual([]);
  });
});
