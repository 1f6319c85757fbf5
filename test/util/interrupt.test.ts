/**
 * The interrupt handler (src/util/interrupt.ts) in a child process whose exit cannot finish:
 * a plain blocking open of a FIFO with no writer holds one of libuv's threads, which
 * process.exit waits for. The first Ctrl-C prints its line and exits 130 (here: tries to); a
 * second one must end the process all the same.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'svhn-interrupt-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

it('a second Ctrl-C ends a process whose exit waits on a blocked read', async () => {
  const fifo = join(tmp, 'fifo');
  spawnSync('mkfifo', [fifo]);
  const dist = pathToFileURL(join(import.meta.dirname, '../../dist/util/interrupt.js')).href;
  const script = `
    const { installInterruptHandler } = await import(${JSON.stringify(dist)});
    const { open } = await import('node:fs/promises');
    installInterruptHandler();
    open(${JSON.stringify(fifo)}, 'r'); // blocks a libuv thread until a writer comes: none will
    setTimeout(() => process.stdout.write('ready\\n'), 100);
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await new Promise<void>((ready) => child.stdout.once('data', () => ready()));
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => child.on('exit', (code, signal) => done({ code, signal })));
  child.kill('SIGINT');
  await new Promise((r) => setTimeout(r, 1000));
  child.kill('SIGINT');
  const { code, signal } = await ended;
  clearTimeout(killer);
  expect(stderr).toContain('svhn: interrupted');
  // Either exit went through (130) or the second signal ended it; never SIGKILL's timeout.
  expect(signal === 'SIGINT' || code === 130, `code ${code} signal ${signal}`).toBe(true);
});
