/**
 * `svhn tune --model NAME [--space FILE] [--sampler tpe|random|grid] [--trials N] [--budget 30m]
 * [--pruner asha|median|none] [--workers N] [--study NAME] [--storage URL] [--seed N]` and
 * train's data flags: a hyperparameter search of `svhn train` runs (tune/run.ts). A table row
 * per trial on stdout as each ends; the best trial's flags in <out>/best.json, for
 * `svhn train --config <out>/best.json`.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { BACKEND_CHOICES, DEFAULTS, MODEL_NAMES, type BackendChoice } from '../config.js';
import { nonNegativeInt, oneOf, positiveInt, threadCount } from './options.js';

const SAMPLERS = ['tpe', 'random', 'grid'] as const;
const PRUNERS = ['asha', 'median', 'none'] as const;

interface TuneFlags {
  model: string;
  space?: string;
  sampler: (typeof SAMPLERS)[number];
  trials: number;
  budget?: number;
  pruner: (typeof PRUNERS)[number];
  workers: number;
  study?: string;
  storage?: string;
  staleAfter: number;
  out?: string;
  seed: number;
  dataDir: string;
  limit?: number;
  valLimit?: number;
  extra: boolean;
  epochs?: number;
  backend: BackendChoice;
  threads?: number;
  defaultTrial: boolean;
  json: boolean;
}

/** `30m`, `90s`, `2h`, `1h30m` -> seconds. */
export function duration(value: string): number {
  const m = /^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*$/.exec(value);
  const sec = m ? Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0) : NaN;
  if (!m || !(m[1] ?? m[2] ?? m[3]) || !(sec > 0)) throw new InvalidArgumentError(`expected a duration such as 30m, 90s, 2h or 1h30m, got '${value}'`);
  return sec;
}

const signed = (v: number) => `${v >= 0 ? '+' : ''}${v.toFixed(2)}`;

function studyName(value: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(value)) throw new InvalidArgumentError(`expected a name of letters, digits, '.', '_' and '-' (at most 64), got '${value}'`);
  return value;
}

export function registerTune(program: Command): void {
  program
    .command('tune')
    .description('search train\'s hyperparameters: trials of `svhn train`, sampled (TPE, random, grid), pruned by epoch, kept in a study that resumes and can be shared through PostgreSQL')
    .option('--model <name>', `architecture: ${MODEL_NAMES.join(', ')}`, oneOf(MODEL_NAMES), 'optimized')
    .option('--space <file>', 'search space, JSON or YAML: {"lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": true}, "batch-size": {"type": "categorical", "choices": [32, 64]}} (default: the model\'s own, `svhn tune --help` lists it)')
    .option('--sampler <name>', `how trials are proposed: ${SAMPLERS.join(', ')} (TPE: Bergstra et al. 2011, 10 random trials first)`, oneOf(SAMPLERS), 'tpe')
    .option('--trials <n>', 'trials the study ends with (complete and pruned; failed ones are run again)', positiveInt, 20)
    .option('--budget <time>', 'start no trial after this long (30m, 2h, 1h30m); running ones finish', duration)
    .option('--pruner <name>', `stop poor trials after an epoch: ${PRUNERS.join(', ')} (ASHA: rungs at 1, 3, 9 epochs, the top third go on)`, oneOf(PRUNERS), 'asha')
    .option('--workers <n>', 'trials at once on this machine, the training threads split between them', positiveInt, 1)
    .option('--study <name>', 'the study\'s name (default: the model\'s); the same name continues it', studyName)
    .option('--storage <url>', 'postgres://user:pass@host/db: a study several machines share (default: embedded, in <out>/study.pglite)')
    .option('--stale-after <time>', 'a trial whose worker has not been heard from for this long (killed, cut off) is taken over by another: from its checkpoint where this machine has it, else from the start', duration, 60)
    .option('--out <dir>', 'the study\'s folder: trials/, trials.csv, best.json (default: tune/<study>)')
    .option('--seed <n>', 'the study\'s seed: the sampler\'s, and each trial\'s training seed is derived from it', nonNegativeInt, DEFAULTS.train.seed)
    .option('--data-dir <dir>', 'where `svhn preprocess` wrote its cache (<dir>/cache)', DEFAULTS.dataDir)
    .option('--limit <n>', 'train each trial on at most N cached training images, stratified (default: all)', positiveInt)
    .option('--val-limit <n>', 'validate on at most N cached validation images, stratified (default: all)', positiveInt)
    .option('--extra', 'also train on the extra split', false)
    .option('--epochs <n>', 'epochs of each trial, the pruner\'s resource (default: the model\'s recipe)', positiveInt)
    .option('--backend <name>', `engine: ${BACKEND_CHOICES.join(', ')}`, oneOf(BACKEND_CHOICES), DEFAULTS.train.backend)
    .option('--threads <n>', 'training threads in all, split between the workers (default: all cores)', threadCount)
    .option('--no-default-trial', 'let the sampler propose trial 0 too (default: trial 0 is train\'s own recipe for this model and data, the one to beat, where the space holds it; not with --sampler grid)')
    .option('--json', 'print a machine-readable summary on stdout instead of the table', false)
    .addHelpText('after', `
The objective is validation accuracy on the cache's validation split (never the test split).
Searched by default (per model): lr, batch-size, schedule, warmup-epochs, weight-decay,
label-smoothing, augment-strength. Ctrl-C, then the same command, continues the study.`)
    .action(async (flags: TuneFlags) => {
      const { readFile } = await import('node:fs/promises');
      const { SvhnError, ioError } = await import('../errors.js');
      const { checkSpaceFor, defaultSpace, defaultTrial, parseSpace } = await import('../tune/space.js');
      // the trials augment as train would on this data (config.ts: the offline sample on, other data off)
      const { augmentsByDefault, recipeIsSynthetic } = await import('../train/resolve.js');
      const synthetic = await recipeIsSynthetic(flags.model, flags.dataDir);
      const augment = augmentsByDefault(flags.model, synthetic);
      let space = defaultSpace(flags.model, { augment });
      if (flags.space) {
        const text = await readFile(flags.space, 'utf8').catch((e: unknown) => {
          throw ioError(flags.space!, 'read', e);
        });
        space = parseSpace(text, flags.space);
      }
      checkSpaceFor(space, { model: flags.model, epochs: flags.epochs, augment }, flags.space ? `--space ${flags.space}` : 'the default space');
      if (flags.sampler === 'grid') (await import('../tune/samplers.js')).checkGridSpace(space);
      const threads = flags.threads ?? availableParallelism();
      if (flags.workers > threads) throw new SvhnError('BAD_FLAG', `--workers: expected at most ${threads} (one training thread each), got ${flags.workers}`);
      const first = flags.defaultTrial && flags.sampler !== 'grid' ? defaultTrial(space, flags.model, { synthetic }) : undefined;
      const study = flags.study ?? flags.model; // a model's name is a study name
      const outDir = flags.out ?? join('tune', study);
      const local = { 'data-dir': flags.dataDir, backend: flags.backend };
      const fixed = {
        ...(flags.limit !== undefined ? { limit: flags.limit } : {}),
        ...(flags.valLimit !== undefined ? { 'val-limit': flags.valLimit } : {}),
        ...(flags.extra ? { extra: true } : {}),
        ...(flags.epochs !== undefined ? { epochs: flags.epochs } : {}),
      };
      const { runTune } = await import('../tune/run.js');
      const { printText, shellArg } = await import('./output.js');
      const names = space.map((p) => p.name);
      const fmt = (v: unknown) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(3)) : String(v));
      // columns as wide as their names (at least 9): a row per trial, printed as it ends
      const widths = ['trial', 'state', 'value', 'time', ...names].map((n) => Math.max(9, n.length + 2));
      const row = (cells: unknown[]) => cells.map((c, i) => String(c).padEnd(widths[i]!)).join('').trimEnd() + '\n';
      let header = !flags.json; // printed above the first row, so a study refused at its start prints only its error
      const summary = await runTune({
        model: flags.model,
        study,
        outDir,
        space,
        sampler: flags.sampler,
        pruner: flags.pruner,
        trials: flags.trials,
        budgetSec: flags.budget ?? null,
        workers: flags.workers,
        threads,
        storage: flags.storage,
        staleMs: flags.staleAfter * 1000,
        seed: flags.seed,
        first,
        fixed,
        local,
        onTrialEnd: (t, info) => {
          if (flags.json) return;
          if (header) printText(row(['trial', 'state', 'value', 'time', ...names]));
          header = false;
          const value = t.value === null ? '-' : `${(100 * t.value).toFixed(2)}%`;
          printText(row([t.number, t.state, value, `${info.wallTimeSec.toFixed(0)}s`, ...names.map((n) => fmt(t.params[n]))]));
          if (info.error) process.stderr.write(`trial ${t.number} failed: ${info.error}\n`);
        },
        onEpoch: (n, e, pruned) => process.stderr.write(`trial ${n}  epoch ${e.epoch}/${e.epochs}  val_acc ${(100 * e.valAcc).toFixed(2)}%${pruned ? '  pruned' : ''}\n`),
      });
      if (flags.json) {
        process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
        return;
      }
      const count = (s: string) => summary.trials.filter((t) => t.state === s).length;
      // trial 0 is train's recipe where its params are the recipe's (a study begun with --no-default-trial keeps its own)
      const zero = summary.trials.find((t) => t.number === 0);
      const recipe = first && zero && names.every((n) => zero.params[n] === first[n]) ? zero : undefined;
      const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
      printText(
        `study      '${summary.study}' in ${summary.outDir} (${summary.storage} store): ${count('complete')} complete, ${count('pruned')} pruned, ${count('failed')} failed; ${summary.ran} run now in ${summary.wallTimeSec.toFixed(0)} s${summary.outOfBudget ? ' (budget spent)' : ''}\n` +
          (recipe ? `recipe     trial 0, train's own recipe: ${recipe.value === null ? recipe.state : `${recipe.state}, validation accuracy ${pct(recipe.value)}`}\n` : '') +
          (summary.best
            ? `best       trial ${summary.best.number}: validation accuracy ${pct(summary.best.value)}` +
              (recipe?.state === 'complete' && recipe.value !== null && summary.best.number !== 0 ? ` (${signed(100 * (summary.best.value - recipe.value))} points on the recipe)` : '') +
              `\nnext       npx svhn train --config ${shellArg(summary.best.config)} --out models/${flags.model}-tuned\n`
            : 'best       no trial has completed yet\n'),
      );
    });
}
