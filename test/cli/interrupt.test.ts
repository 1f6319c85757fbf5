/**
 * Ctrl-C through the real CLI: the process exits 130 with one line, removes its temporary
 * files, and leaves nothing under a final name (util/interrupt.ts + util/atomic.ts).
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTinyCache } from '../train/helpers.js';
import { interruptWhen, svhnAsync } from '../helpers.js';

let tmp: string;

const temps = async (dir: string) => (existsSync(dir) ? (await readdir(dir)).filter((n) => n.startsWith('.tmp-')) : []);

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'svhn-cli-interrupt-'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('Ctrl-C', () => {
  it('during download --synthetic: exit 130, no temporary file, no file under the final name', async () => {
    const dir = join(tmp, 'synth');
    // The full-size extra split takes a minute or more; it is interrupted while its temp file grows.
    const r = await interruptWhen(['download', '--synthetic', '--size', 'full', '--split', 'extra', '--data-dir', dir], async () => (await temps(dir)).length > 0, { cwd: tmp, pollMs: 50 });
    expect(r.sent).toBe(true);
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/svhn: interrupted/);
    expect(await temps(dir)).toEqual([]);
    expect(existsSync(join(dir, 'extra_32x32.mat'))).toBe(false);
  });

  it('during train: exit 130 with the --resume hint, no model directory, checkpoint whole', async () => {
    await writeTinyCache(join(tmp, 'data'), { train: 40, val: 20 });
    const out = join(tmp, 'models', 'm');
    const args = ['train', '--model', 'baseline', '--data-dir', 'data', '--batch-size', '10', '--epochs', '200', '--patience', '500', '--backend', 'wasm', '--out', out];
    const r = await interruptWhen(args, async () => existsSync(join(`${out}.checkpoint`, 'state.json')), { cwd: tmp, pollMs: 50 });
    expect(r.sent).toBe(true);
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/svhn: interrupted; nothing was written to .*--resume/);
    expect(existsSync(out)).toBe(false);
    expect(await temps(join(tmp, 'models'))).toEqual([]);
    expect(await temps(`${out}.checkpoint`)).toEqual([]);
  });

  it('during train before the first checkpoint: no --resume hint, since there is nothing to resume', async () => {
    // Enough images that the first epoch (and its checkpoint) takes a while after start-up.
    await writeTinyCache(join(tmp, 'data-big'), { train: 3000, val: 20 });
    const out = join(tmp, 'models', 'early');
    const state = join(`${out}.checkpoint`, 'state.json');
    const args = ['train', '--model', 'baseline', '--data-dir', 'data-big', '--batch-size', '10', '--epochs', '5', '--backend', 'cpu', '--out', out];
    // Once it has logged anything, the handler is installed.
    const r = await interruptWhen(args, async (stderr) => stderr.length > 0 && !existsSync(state), { cwd: tmp, pollMs: 50 });
    expect(r.sent).toBe(true);
    expect(r.code).toBe(130);
    expect(existsSync(state)).toBe(false);
    expect(r.stderr).toMatch(/svhn: interrupted; nothing was written to .* and no checkpoint was saved yet\. Run the same command again to start over\n$/);
    expect(r.stderr).not.toMatch(/--resume/);
    expect(existsSync(out)).toBe(false);
  });

  it('during demo: the demo does not resume, so its checkpoint is removed and the line says so; a killed demo\'s is replaced', async () => {
    // A "real" data folder (the small MAT fixture as both files), so the demo generates nothing.
    const data = join(tmp, 'demo-data');
    await mkdir(data);
    const fixture = fileURLToPath(new URL('../fixtures/mat/small_c_u8.mat', import.meta.url));
    for (const s of ['train', 'test']) await copyFile(fixture, join(data, `${s}_32x32.mat`));
    const out = join(tmp, 'models', 'demo');
    const state = join(`${out}.checkpoint`, 'state.json');
    const args = ['demo', '--data-dir', data, '--out', out, '--limit', '40', '--val-limit', '10', '--backend', 'wasm'];
    const r = await interruptWhen([...args, '--epochs', '500'], async () => existsSync(state), { cwd: tmp, pollMs: 50 });
    expect(r.sent).toBe(true);
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(new RegExp(`svhn: interrupted; removed the demo's checkpoint ${out}\\.checkpoint and wrote nothing to ${out}\\. Run \`npx svhn demo\` again to start over\n$`));
    expect(existsSync(`${out}.checkpoint`)).toBe(false);
    expect(existsSync(out)).toBe(false);
    expect(await temps(join(tmp, 'models'))).toEqual([]);

    // Killed outright, no handler runs: the next demo says it starts over, and replaces the checkpoint.
    const killed = await interruptWhen([...args, '--epochs', '500'], async () => existsSync(state), { cwd: tmp, pollMs: 50, signal: 'SIGKILL' });
    expect(killed.sent).toBe(true);
    expect(existsSync(state)).toBe(true);
    const next = await svhnAsync([...args, '--epochs', '1', '--log-format', 'json'], { cwd: tmp });
    expect(next.code, next.stderr).toBe(0);
    expect(next.stderr).toContain(`a checkpoint exists at ${out}.checkpoint; starting a new run (the demo does not resume: it starts over); it will be replaced`);
    expect(next.stderr).not.toMatch(/--resume/);
    expect(existsSync(`${out}.checkpoint`)).toBe(false);
    expect(existsSync(join(out, 'weights.bin'))).toBe(true);
    // What to run next, as `npm install` leaves it: svhn is not on the PATH, npx finds it (README).
    const hints = next.stdout.slice(next.stdout.indexOf('next:')).split('\n').slice(1, 4).map((l) => l.trim());
    expect(hints[0]!.startsWith(`npx svhn train --model optimized --data-dir ${data}  `), hints[0]).toBe(true);
    expect(hints[1]).toBe(`npx svhn predict IMAGES --model ${out}`);
    expect(hints[2]).toBe(`npx svhn report --model ${out} --data-dir ${data} --out report.html`);
    expect(next.stdout).not.toMatch(/(^|[^x] )svhn (train|predict|report|download|demo)/m);
  });
});
