/**
 * `svhn train` through the real CLI (node bin/svhn.js runs dist/: `npm test` builds it first),
 * in a temporary folder with a tiny hand-written cache (test/train/helpers.ts). Training runs
 * use the wasm backend (the one `auto` picks here) on 20 images so each takes seconds.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { availableParallelism, hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/config.js';
import { writeTinyCache } from '../train/helpers.js';
import { svhnAsync, SVHN_BIN } from '../helpers.js';

let tmp: string;

/** Async, so the vitest worker's event loop keeps answering its RPCs while a run takes its time (a blocked worker under load times out). */
const svhn = (args: string[]) => svhnAsync(args, { cwd: tmp });

const TINY = ['--data-dir', 'data', '--limit', '20', '--val-limit', '10', '--batch-size', '10', '--backend', 'wasm'];
/** Enough epochs (each a few ms here) that a kill lands mid-run; patience high so none stops early. */
const BASELINE = ['train', '--model', 'baseline', ...TINY, '--epochs', '6', '--patience', '100', '--seed', '3'];
/** History without the timings. */
const metrics = (h: Array<Record<string, number>>) => h.map(({ epoch, loss, acc, val_loss, val_acc }) => ({ epoch, loss, acc, val_loss, val_acc }));
let historyA: Array<Record<string, number>> = [];
const weights = (name: string) => readFile(join(tmp, 'models', name, 'weights.bin'));

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'svhn-cli-train-'));
  await writeTinyCache(join(tmp, 'data'), { train: 40, val: 20 });
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('svhn train', () => {
  it('trains, writes the model directory, prints a --json summary, and repeats bit for bit', async () => {
    const a = await svhn([...BASELINE, '--json', '--out', 'models/a']);
    expect(a.stderr).toMatch(/backend: wasm|"backend":"wasm"/);
    expect(a.stderr).toContain('SYNTHETIC');
    expect(a.stderr).toMatch(/epoch 6\/6 \[wasm, \d+ threads?\]/);
    // One thread per replica, then the replicas: not "1 thread" and then "2 threads".
    expect(a.stderr).toMatch(/backend: wasm \(1 thread per training replica\)/);
    expect(a.stderr).not.toMatch(/backend: wasm \(1 thread\)/);
    expect(a.code).toBe(0);
    const summary = JSON.parse(a.stdout);
    historyA = summary.history;
    expect(summary).toMatchObject({ outDir: 'models/a', model: 'baseline', backend: 'wasm', epochsRun: 6, synthetic: true });
    expect(summary.params.total).toBe(315_722);
    expect(summary.history).toHaveLength(6);
    expect((await readdir(join(tmp, 'models/a'))).sort()).toEqual(
      ['MODEL_CARD.md', 'args.json', 'curves.png', 'history.csv', 'history.json', 'metadata.json', 'model.json', 'weights.bin'].sort(),
    );
    const png = await readFile(join(tmp, 'models/a/curves.png'));
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(existsSync(join(tmp, 'models/a.checkpoint'))).toBe(false);

    // One throughput (training images / training seconds, validation excluded): the summary's is
    // metadata's, which is history's over the whole run, and each epoch's line shows history's.
    const meta = JSON.parse(await readFile(join(tmp, 'models/a/metadata.json'), 'utf8'));
    const history: Array<Record<string, number>> = JSON.parse(await readFile(join(tmp, 'models/a/history.json'), 'utf8'));
    expect(summary.trainImagesPerSec).toBe(meta.trainImagesPerSec);
    expect(meta.trainImagesPerSec).toBeGreaterThan(0);
    const seconds = history.reduce((t, r) => t + r.seconds!, 0);
    expect(meta.trainImagesPerSec).toBe((6 * 20) / seconds); // --limit 20 images an epoch
    expect(meta.trainImagesPerSec).toBeCloseTo(history.reduce((t, r) => t + r.imagesPerSec! * r.seconds!, 0) / seconds, 6);
    for (const r of history) expect(r.imagesPerSec).toBe(20 / r.seconds!);
    const lines = a.stderr.split('\n').filter((l) => /^epoch \d\/6 .*: 20\/20 \(100%\)/.test(l));
    expect(lines.map((l) => Number(/ (\d+)\/s /.exec(l)![1]))).toEqual(history.map((r) => Math.round(r.imagesPerSec!)));

    // The alias, same flags: the same bytes; its text summary gives metadata's figure.
    const b = await svhn(['train-baseline', ...BASELINE.slice(3), '--out', 'models/b']);
    expect(b.code).toBe(0);
    expect(b.stdout).toContain('best epoch');
    expect((await weights('a')).equals(await weights('b'))).toBe(true);
    const metaB = JSON.parse(await readFile(join(tmp, 'models/b/metadata.json'), 'utf8'));
    expect(b.stdout).toContain(`, ${metaB.trainImagesPerSec.toFixed(1)} images/s training`);
  });

  it('saves the resolved flags as args.json, which --config reads back to the same bytes; the command line wins; bad files are one line', async () => {
    const args = JSON.parse(await readFile(join(tmp, 'models/a/args.json'), 'utf8'));
    expect(args).toMatchObject({ model: 'baseline', epochs: 6, patience: 100, seed: 3, 'batch-size': 10, limit: 20, 'val-limit': 10, lr: 0.001, schedule: 'constant', backend: 'wasm' });
    expect(args).not.toHaveProperty('out');
    // the same run from the file alone (its threads and backend included): the same weights
    const c = await svhn(['train', '--config', 'models/a/args.json', '--out', 'models/c']);
    expect(c.code, c.stderr).toBe(0);
    expect((await weights('c')).equals(await weights('a'))).toBe(true);
    // a flag on the command line wins over the file; the alias takes the file when its model agrees
    const d = await svhn(['train-baseline', '--config', 'models/a/args.json', '--epochs', '1', '--json', '--out', 'models/d']);
    expect(d.code, d.stderr).toBe(0);
    expect(JSON.parse(d.stdout).epochsRun).toBe(1);
    await writeFile(join(tmp, 'bad1.json'), JSON.stringify({ epochs: 0 }));
    await writeFile(join(tmp, 'bad2.json'), JSON.stringify({ 'batch-sise': 64 }));
    await writeFile(join(tmp, 'bad3.json'), JSON.stringify({ out: 'models/z' }));
    await writeFile(join(tmp, 'bad4.json'), '[1, 2]');
    for (const [file, message] of [
      ['bad1.json', /--config bad1\.json: "epochs": expected a positive integer, got '0'/],
      ['bad2.json', /--config bad2\.json: "batch-sise": is not a flag of `svhn train`/],
      ['bad3.json', /--config bad3\.json: "out": is set on the command line only/],
      ['bad4.json', /--config bad4\.json: expected a JSON object of flags/],
    ] as Array<[string, RegExp]>) {
      const r = await svhn(['train', '--config', file, '--out', 'models/z']);
      expect(r.code, file).toBe(2);
      expect(r.stderr.trim().split('\n').filter((l) => l.startsWith('svhn: error'))[0], file).toMatch(message);
    }
    const alias = await svhn(['train-resnet', '--config', 'models/a/args.json', '--out', 'models/z']);
    expect(alias.stderr).toMatch(/"model": is "resnet" for `svhn train-resnet`, got "baseline"/);
    expect(existsSync(join(tmp, 'models/z'))).toBe(false);
  });

  it('never replaces what is not a model of its own, nor a model without --force, nor the --init model by another spelling', async () => {
    const listing = async (dir: string) => (await readdir(join(tmp, dir), { recursive: true })).sort();
    const dataBefore = await listing('data');
    const weightsA = await weights('a');
    const metaA = await readFile(join(tmp, 'models/a/metadata.json'), 'utf8');
    await mkdir(join(tmp, 'victim'));
    await writeFile(join(tmp, 'victim/keep.png'), 'mine');
    await writeFile(join(tmp, 'afile2'), 'mine');
    const cases: Array<[string[], RegExp]> = [
      [['--out', 'data'], /--out data: expected a new directory or an earlier model \(it is replaced whole\), got one holding cache; pass another --out/],
      [['--out', 'data/cache'], /--out data\/cache: expected a new directory or an earlier model \(it is replaced whole\), got one holding \S+ and \d+ more/],
      [['--out', 'victim'], /--out victim: expected a new directory or an earlier model \(it is replaced whole\), got one holding keep\.png;/],
      [['--out', 'victim', '--force'], /--out victim: .*got one holding keep\.png;/],
      [['--out', 'afile2'], /--out afile2: expected a directory for the model, got a file/],
      [['--out', 'models/a'], /--out models\/a: holds a trained model, which this run would replace; pass --force to replace it, or another --out/],
    ];
    // refusals write nothing, so they run side by side
    const runs = await Promise.all(cases.map(([flags]) => svhn([...BASELINE, ...flags])));
    for (const [i, [flags, message]] of cases.entries()) {
      const r = runs[i]!;
      expect(r.stderr, flags.join(' ')).toMatch(message);
      expect(r.code, flags.join(' ')).toBe(2);
      expect(r.stderr.split('\n').filter((l) => /error/i.test(l)), flags.join(' ')).toHaveLength(1);
    }
    expect(await listing('data')).toEqual(dataBefore);
    expect(await readFile(join(tmp, 'victim/keep.png'), 'utf8')).toBe('mine');
    expect(await readFile(join(tmp, 'afile2'), 'utf8')).toBe('mine');
    expect(await weights('a')).toEqual(weightsA);
    expect(await readFile(join(tmp, 'models/a/metadata.json'), 'utf8')).toBe(metaA);

    // The --init model under another spelling (a symlink to it) is the parent all the same.
    await symlink('a', join(tmp, 'models/a-link'));
    const spellings: Array<[string, string]> = [['models/a-link', 'models/a'], ['models/a', 'models/a-link/'], [join(tmp, 'models/a-link'), './models/a/']];
    const refused = await Promise.all(spellings.map(([init, out]) => svhn(['train', ...TINY, '--epochs', '1', '--init', init, '--out', out, '--force'])));
    for (const [i, [init, out]] of spellings.entries()) {
      const r = refused[i]!;
      expect(r.stderr, `${init} ${out}`).toContain(`--out ${out}: is the --init model ${init} itself or inside it; a fine-tune goes to a directory of its own`);
      expect(r.code, `${init} ${out}`).toBe(2);
    }
    expect(await weights('a')).toEqual(weightsA);

    // A file of the user's inside an evaluation folder is theirs: refused even with --force.
    await mkdir(join(tmp, 'models/a/evaluation'));
    await writeFile(join(tmp, 'models/a/evaluation/notes.txt'), 'mine');
    const inEval = await svhn([...BASELINE, '--out', 'models/a', '--force']);
    expect(inEval.stderr).toMatch(/--out models\/a: .*got one holding evaluation\/notes\.txt;/);
    expect(inEval.code).toBe(2);
    await rm(join(tmp, 'models/a/evaluation'), { recursive: true });

    // --force replaces an earlier model, and nothing else is needed.
    const forced = await svhn([...BASELINE, '--json', '--out', 'models/a', '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(await weights('a')).toEqual(weightsA); // same flags, same bytes
    expect(await readFile(join(tmp, 'models/a/metadata.json'), 'utf8')).not.toBe(metaA); // a new run's metadata (createdAt, timings)
    expect(JSON.parse(await readFile(join(tmp, 'models/a/metadata.json'), 'utf8')).madeBy).toBe('train');
  });

  it('survives a SIGKILL mid-run: no model under the final name, and --resume ends with the uninterrupted bytes', async () => {
    const state = join(tmp, 'models/k.checkpoint/state.json');
    const child = spawn(process.execPath, [SVHN_BIN, ...BASELINE, '--out', 'models/k'], { cwd: tmp, stdio: 'ignore' });
    const exited = new Promise((r) => child.on('exit', r));
    while (!existsSync(state) && child.exitCode === null) await new Promise((r) => setTimeout(r, 10));
    child.kill('SIGKILL');
    await exited;
    const done = JSON.parse(await readFile(state, 'utf8')).epoch as number;
    expect(done).toBeLessThan(6);
    expect(existsSync(join(tmp, 'models/k'))).toBe(false);

    const resumed = await svhn([...BASELINE, '--out', 'models/k', '--resume', '--json']);
    expect(resumed.code).toBe(0);
    const summary = JSON.parse(resumed.stdout);
    expect(summary.resumedFromEpoch).toBeGreaterThanOrEqual(done);
    // Every epoch's numbers, not only the kept (best val_acc) weights, match the uninterrupted run.
    expect(metrics(summary.history)).toEqual(metrics(historyA));
    expect((await weights('k')).equals(await weights('a'))).toBe(true);
    expect(existsSync(join(tmp, 'models/k.checkpoint'))).toBe(false);
  });

  it('trains the optimized model through its alias, augmenting the synthetic sample unless --no-augment, under the sample\'s own recipe', async () => {
    const r = await svhn(['train-optimized', ...TINY, '--epochs', '1', '--json', '--out', 'models/o']);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.params).toEqual({ total: 161_098, trainable: 160_650, nonTrainable: 448 });
    const meta = JSON.parse(await readFile(join(tmp, 'models/o/metadata.json'), 'utf8'));
    expect(meta.synthetic).toBe(true);
    expect(meta.hyperparameters.augment).toBe(true);
    // config.ts' recipe for the offline sample, not the notebook's constant rate.
    const { lr, schedule, warmupEpochs, patience } = DEFAULTS.train.syntheticRecipes.optimized;
    expect(schedule).not.toBe(DEFAULTS.train.recipes.optimized.schedule);
    expect(meta.hyperparameters).toMatchObject({ lr, schedule, warmupEpochs, patience });

    // Data that is not the offline sample keeps the notebook's recipe.
    await writeTinyCache(join(tmp, 'real'), { train: 40, val: 20 }, { synthetic: false });
    const n = await svhn(['train-optimized', ...TINY, '--data-dir', 'real', '--epochs', '1', '--json', '--out', 'models/o-real']);
    expect(n.code, n.stderr).toBe(0);
    const nb = DEFAULTS.train.recipes.optimized;
    expect(JSON.parse(n.stdout).hyperparameters).toMatchObject({ lr: nb.lr, schedule: nb.schedule, warmupEpochs: nb.warmupEpochs, patience: nb.patience, augment: false });

    const plain = await svhn(['train-optimized', ...TINY, '--epochs', '1', '--no-augment', '--out', 'models/o-plain']);
    expect(plain.code).toBe(0);
    const plainMeta = JSON.parse(await readFile(join(tmp, 'models/o-plain/metadata.json'), 'utf8'));
    expect(plainMeta.hyperparameters.augment).toBe(false);
    expect((await weights('o')).equals(await weights('o-plain'))).toBe(false);
  });

  it('trains the resnet with its own recipe, and its model predicts and evaluates like the others', async () => {
    const r = await svhn(['train-resnet', ...TINY, '--epochs', '2', '--json', '--out', 'models/rn']);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary).toMatchObject({ model: 'resnet', epochsRun: 2 });
    expect(summary.params).toEqual({ total: 274_042, trainable: 272_474, nonTrainable: 1568 });
    // config.ts' resnet recipe, --epochs given on the command line.
    expect(summary.hyperparameters).toMatchObject({ epochs: 2, lr: 0.002, schedule: 'cosine', warmupEpochs: 1, weightDecay: 0.05, labelSmoothing: 0.1, patience: 8 });
    const p = await svhn(['predict', 'cache:val', '--model', 'models/rn', '--format', 'jsonl']);
    expect(p.code, p.stderr).toBe(0);
    const rows = p.stdout.trim().split('\n').map((l) => JSON.parse(l) as { predicted: number; confidence: number });
    expect(rows).toHaveLength(20);
    expect(rows.every((row) => row.predicted >= 0 && row.predicted <= 9 && row.confidence > 0 && row.confidence <= 1)).toBe(true);
    const e = await svhn(['evaluate', '--model', 'models/rn', '--split', 'val', '--data-dir', 'data']);
    expect(e.code, e.stderr).toBe(0);
    // A flag overrides the recipe: a constant rate without decay or smoothing.
    const c = await svhn(['train', '--model', 'resnet', ...TINY, '--epochs', '1', '--schedule', 'constant', '--weight-decay', '0', '--label-smoothing', '0', '--json', '--out', 'models/rn-plain']);
    expect(c.code, c.stderr).toBe(0);
    expect(JSON.parse(c.stdout).hyperparameters).toMatchObject({ schedule: 'constant', weightDecay: 0, labelSmoothing: 0 });
  });

  it('rejects bad input with one line, a non-zero exit and nothing under the final name', async () => {
    const cases: Array<[string[], RegExp, number | null]> = [
      [['train', '--model', 'resnet50', '--out', 'models/x'], /--model: expected one of baseline, optimized, resnet, reader, got 'resnet50'/, 2],
      [['train', '--schedule', 'linear', '--out', 'models/x'], /--schedule.*expected one of constant, cosine, onecycle, got 'linear'/, 2],
      [['train', ...TINY, '--label-smoothing', '0.9', '--out', 'models/x'], /--label-smoothing: expected a number from 0 to 0\.5, got 0\.9/, 2],
      [['train', ...TINY, '--epochs', '2', '--warmup-epochs', '3', '--out', 'models/x'], /--warmup-epochs: expected a number from 0 to --epochs \(2\), got 3/, 2],
      [['train', ...TINY, '--augment-strength', '5', '--out', 'models/x'], /--augment-strength: expected a number from 0 to 3, got 5/, 2],
      [['train', '--weight-decay', '-1', '--out', 'models/x'], /--weight-decay.*expected a number >= 0, got '-1'/, 2],
      [['train', '--batch-size', '0', '--out', 'models/x'], /--batch-size.*positive integer/, 2],
      [['train', '--epochs', '-1', '--out', 'models/x'], /--epochs/, 2],
      [['train', '--data-dir', 'nowhere', '--out', 'models/x'], /no preprocessed data.*svhn preprocess/, 1],
      [['train', ...TINY, '--resume', '--out', 'models/x'], /--resume: no checkpoint at models\/x\.checkpoint/, 1],
      [['train', ...TINY, '--out', 'afile/x'], /cannot write the model directory in afile/, 1],
      [['train', ...TINY, '--threads', String(availableParallelism() + 1), '--out', 'models/x'], new RegExp(`--threads.*expected at most ${availableParallelism()} \\(the cores here\\), got ${availableParallelism() + 1}`), 2],
    ];
    await writeFile(join(tmp, 'afile'), 'not a directory');
    for (const [args, message, code] of cases) {
      const r = await svhn(args);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.code, args.join(' ')).toBe(code);
      expect(r.stderr.split('\n').filter((l) => /error/i.test(l)), args.join(' ')).toHaveLength(1);
    }
    expect(existsSync(join(tmp, 'models/x'))).toBe(false);

    // Another run holds --out (this test process stands in for it): refused, naming its pid.
    await writeFile(join(tmp, 'models/held.lock'), JSON.stringify({ pid: process.pid, host: hostname(), startedAt: '2026-01-01T00:00:00.000Z' }));
    const held = await svhn(['train', ...TINY, '--out', 'models/held']);
    expect(held.code).toBe(1);
    expect(held.stderr).toMatch(new RegExp(`(^|\\n)svhn: error: --out models/held: another svhn run \\(pid ${process.pid}, since 2026-01-01T00:00:00.000Z\\) is writing it; its lock is models/held\\.lock; wait for it to finish, or pass another --out\\n$`));
    expect(existsSync(join(tmp, 'models/held'))).toBe(false);
    expect(existsSync(join(tmp, 'models/held.lock'))).toBe(true); // not ours to remove

    // A corrupt cache: one byte flipped, so its sha256 no longer matches the manifest.
    const corrupt = join(tmp, 'bad');
    await writeTinyCache(corrupt, { train: 20, val: 10 });
    const imgs = await readFile(join(corrupt, 'cache/train.images.u8'));
    imgs[100] ^= 0xff;
    await writeFile(join(corrupt, 'cache/train.images.u8'), imgs);
    const r = await svhn(['train', '--data-dir', 'bad', '--backend', 'wasm', '--out', 'models/y']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/sha256 differs/);
    expect(existsSync(join(tmp, 'models/y'))).toBe(false);
  });
});
