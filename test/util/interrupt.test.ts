/**
 * The interrupt handler (src/util/interrupt.ts) in a child process whose exit cannot finish:
 * a plain blocking open of a FIFO with no writer holds one of libuv's threads, which
 * process.exit waits for. The first Ctrl-C prints its line and exits 130 (here: tries to); a
 * second one must end the process all the same.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
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

it('Ctrl-C removes a tracked folder whole while writes into it are still landing, and leaves no renamed copy', async () => {
  const dir = join(tmp, 'writes');
  const temp = join(dir, '.tmp-photos-1-abc');
  const dist = pathToFileURL(join(import.meta.dirname, '../../dist/util/interrupt.js')).href;
  // Many writes in flight on libuv's pool at every moment, as the photo writer keeps: each one
  // done starts the next, so entries keep appearing until the signal.
  const script = `
    const { installInterruptHandler, trackTemp } = await import(${JSON.stringify(dist)});
    const { mkdir, writeFile } = await import('node:fs/promises');
    installInterruptHandler();
    await mkdir(${JSON.stringify(temp)}, { recursive: true });
    trackTemp(${JSON.stringify(temp)});
    let i = 0;
    const payload = Buffer.alloc(64 * 1024, 7);
    const next = () => writeFile(${JSON.stringify(temp)} + '/' + (i++) + '.png', payload).then(next, () => {});
    for (let k = 0; k < 16; k++) next();
    setTimeout(() => process.stdout.write('ready\\n'), 300);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await new Promise<void>((ready) => child.stdout.once('data', () => ready()));
  const ended = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  child.kill('SIGINT');
  const code = await ended;
  clearTimeout(killer);
  expect(code).toBe(130);
  expect(await readdir(dir)).toEqual([]);
});
