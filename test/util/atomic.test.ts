/**
 * Temporaries a killed run left (SIGKILL: no handler ran) are removed the next time their
 * final name is written: only names tempSibling makes, for that name, whose pid is gone.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDirAtomic, writeFileAtomic } from '../../src/util/atomic.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'svhn-atomic-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** The pid of a process that has exited. */
function deadPid(): number {
  return Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
}

describe('stale temporaries', () => {
  it('writing a file or a directory removes its own dead temporaries, and nothing else', async () => {
    const dead = deadPid();
    const live = process.ppid; // the runner's parent: alive for the whole test
    const left = [
      `.tmp-train_32x32.mat-${dead}-lz1x2`, // a killed download --synthetic
      `.tmp-optimized-${dead}-lz1x3`, // a killed train's model directory
      `.tmp-optimized-${dead}-lz1x4-old`,
      `.tmp-optimized-${dead}-lz1x7-gone`, // renamed by an interrupt handler whose removal failed
    ];
    const kept = [
      `.tmp-train_32x32.mat-${live}-lz1x5`, // another run, still going
      `.tmp-test_32x32.mat-${dead}-lz1x6`, // another final name: removed when that one is written
      '.tmp-train_32x32.mat-notes', // not a name tempSibling makes
      'train_32x32.mat.part',
    ];
    for (const name of [...left, ...kept]) {
      if (name.startsWith('.tmp-optimized')) await mkdir(join(tmp, name, 'sub'), { recursive: true });
      else await writeFile(join(tmp, name), 'x');
    }
    await writeFileAtomic(join(tmp, 'train_32x32.mat'), 'mat');
    await buildDirAtomic(join(tmp, 'optimized'), async (dir) => writeFile(join(dir, 'model.json'), '{}'));
    expect((await readdir(tmp)).sort()).toEqual([...kept, 'optimized', 'train_32x32.mat'].sort());
  });
});
