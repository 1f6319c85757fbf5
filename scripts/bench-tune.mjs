#!/usr/bin/env node
/**
 * Sampler benchmark: svhn tune's TPE and random search (dist/tune/samplers.js) against Optuna's
 * TPESampler and RandomSampler with their defaults (the independent reference), on two standard
 * test functions, minimised: Branin (2-D, minimum 0.397887) and Hartmann-6 (6-D on [0, 1]^6,
 * minimum -3.32237). Our samplers maximise, so they see -f. Each study runs N sequential trials;
 * per sampler and function, the best f after N trials over S seeds: median, quartiles, min, max
 * (lower is better), and the time per study. Prints a markdown table, then per function and
 * sampler how often svhn's best is the lower of the two (a draw is 50%).
 *
 *   npm run bench:tune                      # 20 seeds, 50 trials
 *   npm run bench:tune -- --seeds 5 --trials 100
 *
 * --real: the real thing instead. Optuna's TPE (with its SuccessiveHalvingPruner at svhn's ASHA
 * rungs) drives `svhn train` through a subprocess (scripts/peers/optuna_tune.py), then
 * `svhn tune` runs its own study: the same data, model, default space, trial 0 (train's own
 * recipe) and budget, one after the other, each with both cores. Prints the best validation
 * accuracy, trials complete and pruned, epochs trained, and the wall time of each.
 *
 *   npm run bench:tune -- --real --data-dir DIR [--budget 30m] [--model optimized] [--work DIR]
 *       [--svhn-study DIR]   # a svhn tune study already run on that data: read, not run again
 *
 * Needs `npm run build` first (it imports ../dist) and /usr/bin/python3 with optuna
 * (Debian: apt-get install python3-optuna); without it, only svhn's rows are printed.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { benchArgs } from './benchArgs.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { makeSampler } = await import(pathToFileURL(join(ROOT, 'dist', 'tune', 'samplers.js')).href);

const args = benchArgs('tune', {
  seeds: { type: 'string', default: '20' },
  trials: { type: 'string', default: '50' },
  real: { type: 'boolean', default: false },
  'data-dir': { type: 'string', default: 'data' },
  budget: { type: 'string', default: '30m' },
  model: { type: 'string', default: 'optimized' },
  seed: { type: 'string' }, // default: svhn tune's (DEFAULTS.train.seed)
  work: { type: 'string', default: 'bench-tune' },
  'svhn-study': { type: 'string' },
});
if (args.real) {
  await runReal();
  process.exit(0);
}
const SEEDS = Number(args.seeds);
const TRIALS = Number(args.trials);

// ---------------------------------------------------------------- test functions

const HARTMANN = {
  alpha: [1.0, 1.2, 3.0, 3.2],
  A: [
    [10, 3, 17, 3.5, 1.7, 8],
    [0.05, 10, 17, 0.1, 8, 14],
    [3, 3.5, 1.7, 10, 17, 8],
    [17, 8, 0.05, 10, 0.1, 14],
  ],
  P: [
    [1312, 1696, 5569, 124, 8283, 5886],
    [2329, 4135, 8307, 3736, 1004, 9991],
    [2348, 1451, 3522, 2883, 3047, 6650],
    [4047, 8828, 8732, 5743, 1091, 381],
  ].map((row) => row.map((v) => v * 1e-4)),
};

/** name, space (our form; Optuna gets the same bounds), f (minimised), known minimum. */
const PROBLEMS = [
  {
    name: 'Branin',
    minimum: 0.397887,
    space: [
      { name: 'x1', kind: 'float', low: -5, high: 10 },
      { name: 'x2', kind: 'float', low: 0, high: 15 },
    ],
    f: (p) => {
      const b = 5.1 / (4 * Math.PI ** 2);
      const c = 5 / Math.PI;
      const t = 1 / (8 * Math.PI);
      return (p.x2 - b * p.x1 ** 2 + c * p.x1 - 6) ** 2 + 10 * (1 - t) * Math.cos(p.x1) + 10;
    },
  },
  {
    name: 'Hartmann-6',
    minimum: -3.32237,
    space: Array.from({ length: 6 }, (_, j) => ({ name: `x${j}`, kind: 'float', low: 0, high: 1 })),
    f: (p) => {
      let sum = 0;
      for (let i = 0; i < 4; i++) {
        let inner = 0;
        for (let j = 0; j < 6; j++) inner += HARTMANN.A[i][j] * (p[`x${j}`] - HARTMANN.P[i][j]) ** 2;
        sum += HARTMANN.alpha[i] * Math.exp(-inner);
      }
      return -sum;
    },
  },
];

// ---------------------------------------------------------------- svhn's samplers

/** Best f after TRIALS sequential trials of one study. */
function svhnStudy(samplerName, problem, seed) {
  const sampler = makeSampler(samplerName);
  const trials = [];
  let best = Infinity;
  for (let i = 0; i < TRIALS; i++) {
    const params = sampler.propose(problem.space, trials, i, seed);
    const f = problem.f(params);
    best = Math.min(best, f);
    trials.push({ number: i, state: 'complete', params, value: -f, intermediates: [] });
  }
  return best;
}

function runSvhn(samplerName, problem) {
  const t0 = performance.now();
  const bests = Array.from({ length: SEEDS }, (_, s) => svhnStudy(samplerName, problem, s + 1));
  return { bests, msPerStudy: (performance.now() - t0) / SEEDS };
}

// ---------------------------------------------------------------- Optuna's samplers

const OPTUNA = `
import json, math, sys, time
import optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
cfg = json.loads(sys.argv[1])
H = cfg['hartmann']

def branin(t):
    x1, x2 = t.suggest_float('x1', -5, 10), t.suggest_float('x2', 0, 15)
    b, c, s = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - s) * math.cos(x1) + 10

def hartmann6(t):
    x = [t.suggest_float(f'x{j}', 0, 1) for j in range(6)]
    return -sum(H['alpha'][i] * math.exp(-sum(H['A'][i][j] * (x[j] - H['P'][i][j]) ** 2 for j in range(6))) for i in range(4))

out = {'version': optuna.__version__, 'runs': {}}
for problem, f in [('Branin', branin), ('Hartmann-6', hartmann6)]:
    for name in ['tpe', 'random']:
        bests = []
        t0 = time.perf_counter()
        for seed in range(1, cfg['seeds'] + 1):
            sampler = optuna.samplers.TPESampler(seed=seed) if name == 'tpe' else optuna.samplers.RandomSampler(seed=seed)
            study = optuna.create_study(direction='minimize', sampler=sampler)
            study.optimize(f, n_trials=cfg['trials'])
            bests.append(study.best_value)
        out['runs'][f'{problem}/{name}'] = {'bests': bests, 'msPerStudy': 1000 * (time.perf_counter() - t0) / cfg['seeds']}
print(json.dumps(out))
`;

function runOptuna() {
  const cfg = JSON.stringify({ seeds: SEEDS, trials: TRIALS, hartmann: HARTMANN });
  const r = spawnSync('/usr/bin/python3', ['-c', OPTUNA, cfg], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    console.error(`Optuna not run (/usr/bin/python3 -c 'import optuna' must work): ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`);
    return undefined;
  }
  return JSON.parse(r.stdout);
}

// ---------------------------------------------------------------- summary

/** The q-quantile, interpolated linearly (numpy's default). */
function quantile(sorted, q) {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

const fmt = (v) => v.toFixed(4);

function row(problem, sampler, { bests, msPerStudy }) {
  const s = [...bests].sort((a, b) => a - b);
  const cells = [quantile(s, 0.5), s[0], quantile(s, 0.25), quantile(s, 0.75), s[s.length - 1]].map(fmt);
  return `| ${problem} | ${sampler} | ${cells.join(' | ')} | ${msPerStudy.toFixed(0)} |`;
}

/**
 * How often a's best is lower than b's, over every pair of one study of each (ties count half):
 * the Mann-Whitney U over n_a * n_b, and its standard deviation when a and b do equally well
 * (sqrt((n_a + n_b + 1) / (12 n_a n_b)): 0.09 at 20 seeds a side, 0.04 at 100).
 */
function winRate(a, b) {
  let wins = 0;
  for (const x of a) for (const y of b) wins += x < y ? 1 : x === y ? 0.5 : 0;
  return { rate: wins / (a.length * b.length), sdIfEqual: Math.sqrt((a.length + b.length + 1) / (12 * a.length * b.length)) };
}

const optuna = runOptuna();
const lines = [
  `Best f after ${TRIALS} trials, ${SEEDS} seeds each (lower is better; Branin's minimum ${PROBLEMS[0].minimum}, Hartmann-6's ${PROBLEMS[1].minimum})${optuna ? `; Optuna ${optuna.version}` : ''}`,
  '',
  '| function | sampler | median | min | Q1 | Q3 | max | ms/study |',
  '|---|---|---:|---:|---:|---:|---:|---:|',
];
const wins = [];
for (const problem of PROBLEMS) {
  for (const name of ['tpe', 'random']) {
    const svhn = runSvhn(name, problem);
    lines.push(row(problem.name, `svhn ${name}`, svhn));
    if (!optuna) continue;
    const theirs = optuna.runs[`${problem.name}/${name}`];
    lines.push(row(problem.name, `Optuna ${name}`, theirs));
    const { rate, sdIfEqual } = winRate(svhn.bests, theirs.bests);
    wins.push(`${problem.name}, ${name}: svhn's best is the lower in ${(100 * rate).toFixed(1)}% of (svhn study, Optuna study) pairs (50 +- ${(100 * sdIfEqual).toFixed(0)} if they do equally well)`);
  }
}
if (wins.length) lines.push('', ...wins);
console.log(lines.join('\n'));

// ---------------------------------------------------------------- --real: Optuna driving svhn train vs svhn tune

async function runReal() {
  const { spawn } = await import('node:child_process');
  const { mkdirSync, readFileSync, writeFileSync } = await import('node:fs');
  const dist = (p) => import(pathToFileURL(join(ROOT, 'dist', p)).href);
  const { defaultSpace, defaultTrial } = await dist('tune/space.js');
  const { duration } = await dist('cli/tune.js');
  const { augmentsByDefault, recipeIsSynthetic } = await dist('train/resolve.js');
  const { DEFAULTS } = await dist('config.js');
  const svhn = [process.execPath, join(ROOT, 'bin', 'svhn.js')];
  const work = resolve(args.work);
  const dataDir = resolve(args['data-dir']);
  const budgetSec = duration(args.budget);
  const seed = args.seed ?? String(DEFAULTS.train.seed);
  const synthetic = await recipeIsSynthetic(args.model, dataDir);
  // as svhn tune builds its study (cli/tune.ts): the model's space on this data, trial 0 its recipe
  const space = defaultSpace(args.model, { augment: augmentsByDefault(args.model, synthetic) });
  const first = defaultTrial(space, args.model, { synthetic }) ?? null;
  mkdirSync(work, { recursive: true });

  /** Runs argv to its end, its stderr to ours; stdout returned. */
  const run = (argv) =>
    new Promise((done, fail) => {
      const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.on('error', fail);
      child.on('close', (code) => (code === 0 ? done(out) : fail(new Error(`${argv.slice(0, 3).join(' ')} exited ${code}`))));
    });

  const rows = [];
  const cfgFile = join(work, 'optuna-config.json');
  writeFileSync(cfgFile, JSON.stringify({ svhn, model: args.model, dataDir, outDir: join(work, 'optuna-trials'), budgetSec, trials: 10_000, seed: Number(seed), space, first, fixed: {} }));
  let t0 = performance.now();
  const optuna = JSON.parse(await run(['/usr/bin/python3', join(ROOT, 'scripts/peers/optuna_tune.py'), cfgFile]));
  rows.push(summarise(`Optuna ${optuna.version} TPE + successive halving, driving svhn train`, optuna.trials, (performance.now() - t0) / 1000));
  writeFileSync(join(work, 'optuna-trials.json'), JSON.stringify(optuna, null, 2));

  let studyDir = args['svhn-study'] && resolve(args['svhn-study']);
  let wall = null;
  if (!studyDir) {
    studyDir = join(work, 'svhn-study');
    t0 = performance.now();
    await run([...svhn, 'tune', '--model', args.model, '--data-dir', dataDir, '--budget', args.budget, '--trials', '10000', '--seed', seed, '--out', studyDir]);
    wall = (performance.now() - t0) / 1000;
  }
  const ours = JSON.parse(readFileSync(join(studyDir, 'trials.json'), 'utf8')).trials.map((t) => ({ ...t, epochs: t.intermediates.length }));
  rows.push(summarise(`svhn tune (TPE + ASHA)${wall === null ? `, study read from ${args['svhn-study']}` : ''}`, ours, wall));

  console.log(`--real on ${dataDir} (${synthetic ? 'offline sample' : 'real data'}), model ${args.model}, budget ${args.budget}, seed ${seed}\n`);
  console.log('| tuner | best val acc | best trial | complete | pruned | failed | epochs trained | wall time |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) console.log(r);
}

function summarise(name, trials, wallSec) {
  const count = (s) => trials.filter((t) => t.state === s).length;
  const complete = trials.filter((t) => t.state === 'complete' && t.value !== null);
  const best = complete.reduce((a, t) => (a === null || t.value > a.value ? t : a), null);
  const epochs = trials.reduce((n, t) => n + (t.epochs ?? 0), 0);
  return `| ${name} | ${best ? (100 * best.value).toFixed(2) + '%' : '-'} | ${best ? best.number : '-'} | ${count('complete')} | ${count('pruned')} | ${count('failed')} | ${epochs} | ${wallSec === null ? '-' : `${wallSec.toFixed(0)} s`} |`;
}
