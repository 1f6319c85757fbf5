/**
 * `svhn tune` through the real CLI on a tiny hand-written cache (test/train/helpers.ts): each
 * trial a real `svhn train` run of the baseline on 20 images, a few seconds each. The embedded
 * store throughout; test/tune/store.test.ts runs the store suite on PostgreSQL too.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTinyCache } from '../train/helpers.js';
import { interruptWhen, svhnAsync } from '../helpers.js';

let tmp: string;
const svhn = (args: string[]) => svhnAsync(args, { cwd: tmp, timeoutMs: 240_000 });
const TINY = ['--model', 'baseline', '--data-dir', 'data', '--limit', '20', '--val-limit', '10', '--backend', 'wasm', '--epochs', '3', '--seed', '5'];
/** A small space: batch size 10 so 20 images make two steps an epoch; --pruner none where trials must all complete. */
const SPACE = { lr: { type: 'float', low: 1e-4, high: 1e-2, log: true }, 'batch-size': { type: 'categorical', choices: [10] }, 'label-smoothing': { type: 'float', low: 0, high: 0.2 } };

interface Row { number: string; state: string; value: string; epochs: string }
async function rows(dir: string): Promise<Row[]> {
  const [head, ...lines] = (await readFile(join(tmp, dir, 'trials.csv'), 'utf8')).trim().split('\n');
  const names = head!.split(',');
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [names[i], v])) as unknown as Row);
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'svhn-cli-tune-'));
  await writeTinyCache(join(tmp, 'data'), { train: 40, val: 20 });
  await writeFile(join(tmp, 'space.json'), JSON.stringify(SPACE));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('svhn tune', () => {
  it('runs the trials asked for, writes trials.csv and best.json, and train --config best.json repeats the best trial bit for bit', async () => {
    const r = await svhn(['tune', ...TINY, '--space', 'space.json', '--sampler', 'random', '--pruner', 'none', '--trials', '3', '--threads', '1', '--out', 'tune/a']);
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/); // no stack
    expect(r.code).toBe(0);
    const table = r.stdout.split('\n').filter((l) => /^\d+ +(complete|pruned|failed) /.test(l));
    expect(table).toHaveLength(3);
    expect(r.stdout).toMatch(/3 complete, 0 pruned, 0 failed/);
    const trials = await rows('tune/a');
    expect(trials.map((t) => [t.number, t.state, t.epochs])).toEqual([['0', 'complete', '3'], ['1', 'complete', '3'], ['2', 'complete', '3']]);
    expect((await readdir(join(tmp, 'tune/a/trials'))).sort()).toEqual(['0000', '0001', '0002']);
    const best = JSON.parse(await readFile(join(tmp, 'tune/a/best.json'), 'utf8'));
    const values = trials.map((t) => Number(t.value));
    const bestNumber = values.indexOf(Math.max(...values));
    expect(best).toMatchObject({ model: 'baseline', 'data-dir': 'data', limit: 20, 'batch-size': 10, threads: 1 });
    const trained = await svhn(['train', '--config', 'tune/a/best.json', '--out', 'models/best', '--json']);
    expect(trained.code).toBe(0);
    const [mine, trial] = await Promise.all([readFile(join(tmp, 'models/best/weights.bin')), readFile(join(tmp, `tune/a/trials/000${bestNumber}/weights.bin`))]);
    expect(mine.equals(trial)).toBe(true);
    expect(JSON.parse(trained.stdout).validation.acc).toBe(values[bestNumber]);
  });

  it('--workers 2 runs the same trials as one worker, to the same values (random sampler: proposals depend on the seed and number only)', async () => {
    // the first test's study (tune/a), one worker, asked again of two
    const two = await svhn(['tune', ...TINY, '--space', 'space.json', '--sampler', 'random', '--pruner', 'none', '--trials', '3', '--workers', '2', '--threads', '2', '--out', 'tune/w2']);
    expect(two.code, two.stderr).toBe(0);
    expect(await rows('tune/w2')).toEqual(await rows('tune/a'));
  });

  it('Ctrl-C mid-trial exits 130; the same command continues the study, resuming the trial, to the values of an uninterrupted study', async () => {
    const args = ['tune', ...TINY, '--epochs', '6', '--space', 'space.json', '--sampler', 'tpe', '--pruner', 'none', '--trials', '2', '--threads', '1'];
    const whole = await svhn([...args, '--out', 'tune/whole']);
    expect(whole.code).toBe(0);
    const cut = await interruptWhen([...args, '--out', 'tune/cut'], (stderr) => /trial 1 {2}epoch 2\/6/.test(stderr), { cwd: tmp });
    expect(cut.sent).toBe(true);
    expect(cut.code).toBe(130);
    expect(cut.stderr).toMatch(/run the same command to continue the study/);
    expect(existsSync(join(tmp, 'tune/cut/trials/0001.checkpoint/state.json'))).toBe(true);
    const again = await svhn([...args, '--out', 'tune/cut']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout.split('\n').filter((l) => /^\d+ +(complete|pruned|failed) /.test(l)).map((l) => l.split(' ')[0])).toEqual(['1']); // trial 0 is not run again
    expect(await rows('tune/cut')).toEqual(await rows('tune/whole'));
  });

  it("trial 0 is train's own recipe, and the summary measures the best against it; ASHA prunes trials that fall behind at a rung", async () => {
    // lr and smoothing only, so the tiny cache's recipe (the notebook's: constant 1e-3, no smoothing) lies in the space
    await writeFile(join(tmp, 'space-recipe.json'), JSON.stringify({ lr: SPACE.lr, 'label-smoothing': SPACE['label-smoothing'] }));
    const args = ['tune', ...TINY, '--space', 'space-recipe.json', '--sampler', 'random', '--pruner', 'asha', '--trials', '4', '--threads', '1'];
    const r = await svhn([...args, '--out', 'tune/recipe']);
    expect(r.code).toBe(0);
    const trials = await rows('tune/recipe');
    const byNumber = (n: string) => trials.find((t) => t.number === n) as unknown as Record<string, string>;
    expect([Number(byNumber('0').lr), Number(byNumber('0')['label-smoothing'])]).toEqual([1e-3, 0]);
    expect(r.stdout).toMatch(/^recipe +trial 0, train's own recipe: (complete|pruned)/m);
    const best = JSON.parse(await readFile(join(tmp, 'tune/recipe/best.json'), 'utf8'));
    if (best.lr !== 1e-3) expect(r.stdout).toMatch(/points on the recipe\)/);
    // ASHA's first rung is epoch 1: a pruned trial stopped at 1 (or 3, past a later rung), before the 3 epochs asked for
    const pruned = trials.filter((t) => t.state === 'pruned');
    expect(pruned.length).toBeGreaterThan(0);
    for (const t of pruned) expect(Number(t.epochs)).toBeLessThan(3);
    expect(r.stdout).toMatch(new RegExp(`${trials.length - pruned.length} complete, ${pruned.length} pruned, 0 failed`));
    // --no-default-trial: the sampler's own trial 0, the same as a study that never had the recipe
    const own = await svhn([...args, '--trials', '1', '--no-default-trial', '--out', 'tune/own']);
    expect(own.code).toBe(0);
    expect(Number((await rows('tune/own'))[0]!.lr)).not.toBe(1e-3);
    expect(own.stdout).not.toMatch(/^recipe/m);
  });

  it.each([
    [['--space', 'bad-space.json'], /--space bad-space\.json: .*nope/],
    [['--storage', 'mysql://x'], /--storage/],
    [['--budget', 'soon'], /--budget.*30m/],
    [['--workers', '9'], /--workers/],
  ])('refuses %j with one line and exit 2, writing no study', async (bad, message) => {
    await writeFile(join(tmp, 'bad-space.json'), JSON.stringify({ nope: { type: 'float', low: 0, high: 1 } }));
    const r = await svhn(['tune', ...TINY, '--trials', '1', '--out', 'tune/bad', ...bad]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message);
    expect(existsSync(join(tmp, 'tune/bad'))).toBe(false);
  });

  it('a study name reused with another model is refused, and the study is left as it was', async () => {
    const before = await readFile(join(tmp, 'tune/a/trials.csv'), 'utf8');
    const r = await svhn(['tune', ...TINY.map((a) => (a === 'baseline' ? 'optimized' : a)), '--trials', '1', '--out', 'tune/a', '--study', 'baseline']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/baseline/);
    expect(await readFile(join(tmp, 'tune/a/trials.csv'), 'utf8')).toBe(before);
  });
});

const PG = process.env.SVHN_TEST_POSTGRES_URL;
describe.skipIf(!PG)('svhn tune --storage postgres:// (two machines, played by two processes with data folders of their own)', () => {
  it('one is killed mid-trial; the other takes its trial over, and the study ends with the trials asked for, each run to its end once', async () => {
    await writeTinyCache(join(tmp, 'data2'), { train: 40, val: 20 });
    const study = `shared-${process.pid}-${Date.now()}`;
    const args = (dataDir: string, out: string) => [
      'tune', ...TINY.map((a) => (a === 'data' ? dataDir : a)), '--epochs', '4', '--space', 'space.json', '--sampler', 'random', '--pruner', 'none',
      '--trials', '4', '--threads', '1', '--storage', PG!, '--study', study, '--stale-after', '2s', '--out', out,
    ];
    // A starts; once it is inside a trial, B starts; A is killed (SIGKILL: no handler runs, nothing given back) mid-trial.
    const b = new Promise<Awaited<ReturnType<typeof svhn>>>((resolve) => {
      setTimeout(() => resolve(svhn(args('data2', 'tune/pb'))), 0);
    });
    const a = await interruptWhen(args('data', 'tune/pa'), (stderr) => /trial \d+ {2}epoch 2\/4/.test(stderr), { cwd: tmp, signal: 'SIGKILL' });
    expect(a.sent).toBe(true);
    const killedIn = [...a.stderr.matchAll(/trial (\d+) {2}epoch 2\/4/g)].map((m) => m[1]).at(-1);
    const rb = await b;
    expect(rb.code).toBe(0);
    expect(rb.stderr).toMatch(new RegExp(`trial ${killedIn}: taken over`));
    const trials = await rows('tune/pb');
    expect(trials.map((t) => [t.number, t.state, t.epochs])).toEqual(['0', '1', '2', '3'].map((n) => [n, 'complete', '4']));
    expect(rb.stdout).toMatch(/4 complete, 0 pruned, 0 failed/);
  });
});

describe('svhn tune --storage, no server needed', () => {
  it('an unreachable server is one line and exit 2, and no study folder is made', async () => {
    const r = await svhn(['tune', ...TINY, '--trials', '1', '--storage', 'postgres://svhn:secret@127.0.0.1:9/none', '--out', 'tune/unreachable']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).not.toContain('secret');
    expect(existsSync(join(tmp, 'tune/unreachable'))).toBe(false);
  });
});
