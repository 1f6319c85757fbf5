#!/usr/bin/env node
/**
 * How well svhn reads real SVHN digits: accuracy, per-digit recall and wall time on the 554
 * real digits of ../shared/realsvhn (README there) for three models made with the committed
 * defaults:
 *
 *   offline     the model trained offline (--offline-model, default models/optimized; on the
 *               synthetic sample: `svhn download --synthetic && svhn preprocess && svhn train
 *               --model optimized`), evaluated on all 554 digits
 *   fine-tuned  `svhn train --init OFFLINE`, cross-validated: k stratified, seeded folds; each
 *               fold's model learns from the other k - 1 folds (`svhn preprocess --labels`, whose
 *               own stratified split, --val-fraction default, gives the validation set) and is
 *               evaluated on the held-out fold (`svhn evaluate --labels`); results pooled
 *   scratch     the same folds and recipe from fresh weights (`svhn train --model <the offline
 *               model's architecture>`, its default epochs)
 *
 *   npm run build && npm run bench:real
 *   npm run bench:real -- --offline-model models/optimized --folds 5 --seed 42 --json real.json
 *   npm run bench:real -- --quick             # smoke test: 2 folds, 1 epoch each
 *
 * Everything goes through the CLI (bin/svhn.js, which runs dist/), in a temporary folder
 * removed at the end (--keep keeps it). Reading only: nothing from realsvhn is copied into the
 * repository. Not a test: nothing here asserts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from './benchArgs.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'svhn.js');
const DIGITS = 10;

const opts = benchArgs('real', {
  real: { type: 'string', default: resolve(ROOT, '../shared/realsvhn') },
  'offline-model': { type: 'string', default: 'models/optimized' },
  folds: { type: 'string' },
  epochs: { type: 'string' }, // both trainings; default: each one's own default
  'train-flags': { type: 'string', default: '' }, // more flags for both trainings, e.g. '--lr 3e-4 --augment'
  seed: { type: 'string', default: '42' },
  backend: { type: 'string', default: 'auto' },
  threads: { type: 'string' },
  json: { type: 'string' },
  quick: { type: 'boolean', default: false },
  keep: { type: 'boolean', default: false },
  verbose: { type: 'boolean', default: false },
});

function fail(message) {
  process.stderr.write(`bench:real: ${message}\n`);
  process.exit(1);
}

function positiveInt(name, value) {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) fail(`--${name}: expected a positive integer, got '${value}'`);
  return n;
}

const REAL = resolve(opts.real);
const OFFLINE = resolve(opts['offline-model']);
const FOLDS = positiveInt('folds', opts.folds ?? (opts.quick ? 2 : 5));
const EPOCHS = opts.epochs !== undefined ? positiveInt('epochs', opts.epochs) : opts.quick ? 1 : undefined;
const TRAIN_FLAGS = opts['train-flags'].split(/\s+/).filter(Boolean);
const SEED = Number(opts.seed);
if (!Number.isInteger(SEED) || SEED < 0) fail(`--seed: expected a non-negative integer, got '${opts.seed}'`);
if (FOLDS < 2) fail('--folds: expected at least 2 (one held out, the others to learn from)');

if (!existsSync(join(REAL, 'labels.csv'))) {
  fail(`${REAL}/labels.csv not found: this benchmark reads the real SVHN digits in ../shared/realsvhn (or --real DIR)`);
}
if (!existsSync(join(ROOT, 'dist', 'data', 'images', 'labelled.js'))) fail('dist/ is missing or old; run `npm run build` first');
if (!existsSync(join(OFFLINE, 'metadata.json'))) {
  fail(
    `no offline model at ${OFFLINE}; build one with \`svhn download --synthetic && svhn preprocess && svhn train --model optimized\`` +
      ' (or pass --offline-model DIR)',
  );
}

const { listLabelledImages } = await import(join(ROOT, 'dist', 'data', 'images', 'labelled.js'));
const { Rng } = await import(join(ROOT, 'dist', 'util', 'rng.js'));
const { readModelMetadata } = await import(join(ROOT, 'dist', 'models', 'io.js'));
const { csvCell } = await import(join(ROOT, 'dist', 'predict', 'output.js'));

/** A failed step: reported in one line after the work folder is removed. */
class StepFailed extends Error {}

/** Runs `svhn ARGS --json` and returns its parsed stdout and wall time; a failure stops the benchmark with svhn's own message. */
function svhn(args, what) {
  const extra = [...(opts.backend ? ['--backend', opts.backend] : []), ...(opts.threads ? ['--threads', opts.threads] : [])];
  const needsBackend = args[0] === 'train' || args[0] === 'evaluate';
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [BIN, ...args, ...(needsBackend ? extra : []), '--json', '--log-format', 'json'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', opts.verbose ? 'inherit' : 'pipe'],
    maxBuffer: 256 << 20,
  });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) {
    const line = (r.stderr ?? '').split('\n').find((l) => l.startsWith('svhn: error')) ?? `exit code ${r.status}`;
    throw new StepFailed(`${what} failed: ${line}`);
  }
  return { out: JSON.parse(r.stdout), seconds };
}

/** Stratified, seeded folds: each digit's files shuffled, then dealt round-robin (fold sizes within one per digit). */
function stratifiedFolds(files, k, seed) {
  const rng = new Rng(seed);
  const folds = Array.from({ length: k }, () => []);
  let next = 0;
  for (let d = 0; d < DIGITS; d++) {
    const ofDigit = Uint32Array.from(files.flatMap((f, i) => (f.label === d ? [i] : [])));
    for (const i of rng.shuffle(ofDigit)) folds[next++ % k].push(files[i]);
  }
  return folds;
}

function writeCsv(path, files) {
  writeFileSync(path, ['file,label', ...files.map((f) => `${csvCell(f.path)},${f.label}`)].join('\n') + '\n');
}

const zeros = () => Array.from({ length: DIGITS }, () => new Array(DIGITS).fill(0));
const addInto = (into, m) => m.forEach((row, i) => row.forEach((v, j) => (into[i][j] += v)));

function summarise(name, confusion, seconds, extra = {}) {
  const support = confusion.map((row) => row.reduce((a, b) => a + b, 0));
  const correct = confusion.reduce((s, row, i) => s + row[i], 0);
  const total = support.reduce((a, b) => a + b, 0);
  return {
    name,
    images: total,
    accuracy: total ? correct / total : 0,
    recall: confusion.map((row, d) => (support[d] ? row[d] / support[d] : null)),
    support,
    confusion,
    seconds,
    ...extra,
  };
}

// ------------------------------------------------------------------------------------------

const started = performance.now();
const offlineMeta = await readModelMetadata(OFFLINE);
const architecture = String(offlineMeta.architecture);
const { files } = await listLabelledImages({ kind: 'csv', path: join(REAL, 'labels.csv'), flag: '--real' });
const work = mkdtempSync(join(tmpdir(), 'svhn-bench-real-'));
const log = (line) => process.stderr.write(`bench:real: ${line}\n`);
log(`${files.length} real digits from ${REAL}; offline model ${OFFLINE} (${architecture}${offlineMeta.synthetic ? ', trained on the synthetic sample' : ''}); ${FOLDS} folds, seed ${SEED}${EPOCHS ? `, ${EPOCHS} epoch(s)` : ''}; work in ${work}`);

try {
  // 1. The offline model on all the real digits.
  log('offline model: evaluate on all digits');
  const offline = svhn(['evaluate', '--model', OFFLINE, '--labels', join(REAL, 'labels.csv'), '--strict', '--out', join(work, 'offline-eval')], 'evaluate the offline model');
  const results = [summarise('offline', offline.out.models[0].confusionMatrix, offline.seconds)];

  // 2. Cross-validation: fine-tuned from the offline model, and from scratch, on the same folds.
  const folds = stratifiedFolds(files, FOLDS, SEED);
  const pooled = { finetuned: zeros(), scratch: zeros() };
  const seconds = { finetuned: 0, scratch: 0, preprocess: 0 };
  const epochsRun = { finetuned: [], scratch: [] };
  for (let k = 0; k < FOLDS; k++) {
    const dir = join(work, `fold-${k + 1}`);
    const train = folds.flatMap((f, j) => (j === k ? [] : f));
    const dataDir = join(dir, 'data');
    writeCsv(join(work, `fold-${k + 1}-train.csv`), train);
    writeCsv(join(work, `fold-${k + 1}-test.csv`), folds[k]);
    const at = `fold ${k + 1}/${FOLDS}`;
    log(`${at}: ${train.length} digits to learn from, ${folds[k].length} held out`);
    const pre = svhn(['preprocess', '--labels', join(work, `fold-${k + 1}-train.csv`), '--data-dir', dataDir, '--seed', String(SEED), '--strict'], `${at} preprocess`);
    seconds.preprocess += pre.seconds;

    const common = ['--data-dir', dataDir, '--seed', String(SEED), ...(EPOCHS ? ['--epochs', String(EPOCHS)] : []), ...TRAIN_FLAGS];
    log(`${at}: fine-tune from the offline model`);
    const ft = svhn(['train', '--init', OFFLINE, ...common, '--out', join(dir, 'finetuned')], `${at} fine-tune`);
    log(`${at}: train from scratch`);
    const sc = svhn(['train', '--model', architecture, ...common, '--out', join(dir, 'scratch')], `${at} train from scratch`);
    const ev = svhn(
      ['evaluate', '--model', join(dir, 'finetuned'), '--model', join(dir, 'scratch'), '--labels', join(work, `fold-${k + 1}-test.csv`), '--strict', '--out', join(dir, 'eval')],
      `${at} evaluate`,
    );
    const [ftEval, scEval] = ev.out.models;
    addInto(pooled.finetuned, ftEval.confusionMatrix);
    addInto(pooled.scratch, scEval.confusionMatrix);
    // Evaluation time per model: its own share of the run (both models see the same images).
    seconds.finetuned += ft.seconds + ftEval.seconds;
    seconds.scratch += sc.seconds + scEval.seconds;
    epochsRun.finetuned.push(ft.out.epochsRun);
    epochsRun.scratch.push(sc.out.epochsRun);
    log(`${at}: held-out accuracy fine-tuned ${ftEval.accuracy.toFixed(4)}, scratch ${scEval.accuracy.toFixed(4)}`);
  }
  results.push(summarise('fine-tuned', pooled.finetuned, seconds.finetuned, { folds: FOLDS, epochsRun: epochsRun.finetuned }));
  results.push(summarise('scratch', pooled.scratch, seconds.scratch, { folds: FOLDS, epochsRun: epochsRun.scratch }));

  // 3. The table.
  const head = ['model', 'images', 'accuracy', ...Array.from({ length: DIGITS }, (_, d) => `r${d}`), 'wall s'];
  const rows = results.map((r) => [
    r.name,
    String(r.images),
    r.accuracy.toFixed(4),
    ...r.recall.map((x) => (x === null ? '-' : x.toFixed(2))),
    r.seconds.toFixed(1),
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const fmt = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const lines = [
    `real SVHN digits (${files.length}, ${REAL}): accuracy and per-digit recall (r0..r9)`,
    `offline: ${OFFLINE} on all digits; fine-tuned and scratch: pooled held-out predictions of ${FOLDS}-fold stratified cross-validation (seed ${SEED})`,
    '',
    fmt(head),
    ...rows.map(fmt),
    '',
    `wall s: evaluation (offline), or training + evaluation summed over the folds; preprocessing the folds took ${seconds.preprocess.toFixed(1)} s, the whole benchmark ${((performance.now() - started) / 1000).toFixed(1)} s`,
    `epochs run per fold: fine-tuned ${epochsRun.finetuned.join(', ')}; scratch ${epochsRun.scratch.join(', ')}`,
  ];
  if (offlineMeta.synthetic) lines.push(`the offline model was trained on the synthetic sample (${OFFLINE}/metadata.json)`);
  process.stdout.write(lines.join('\n') + '\n');

  if (opts.json) {
    const summary = {
      real: REAL,
      images: files.length,
      offlineModel: OFFLINE,
      architecture,
      folds: FOLDS,
      seed: SEED,
      epochs: EPOCHS ?? null,
      backend: opts.backend,
      results,
      preprocessSeconds: seconds.preprocess,
      totalSeconds: (performance.now() - started) / 1000,
      createdAt: new Date().toISOString(),
    };
    const tmp = `${opts.json}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(summary, null, 2) + '\n');
    renameSync(tmp, opts.json);
    log(`wrote ${opts.json}`);
  }
} catch (e) {
  if (!(e instanceof StepFailed)) throw e;
  process.stderr.write(`bench:real: ${e.message}${opts.verbose ? '' : ' (--verbose shows svhn\'s logs)'}\n`);
  process.exitCode = 1;
} finally {
  if (opts.keep) log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
