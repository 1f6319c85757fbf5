#!/usr/bin/env node
/**
 * Training and inference speed of the three models (the notebook's two CNNs and the resnet)
 * on every tfjs backend that loads, and of the same models in PyTorch
 * (scripts/peers/torch_bench.py, the resnet's twin in scripts/peers/torch_models.py) in the
 * same run when `/usr/bin/python3 -c "import torch"` works.
 *
 *   npm run build && npm run bench:train [-- --models optimized --backends wasm,wasm2 --profile]
 *   (wasm2: as `svhn train --threads 2` / `svhn predict --threads 2`; wasm2t: the threaded build for training too)
 *
 * Each (backend, model) runs in a child process (clean peak RSS, one backend per process).
 * Training: batch 64 on fixed random images in [0,1], `warmup` steps, then `reps` timed runs
 * of `steps` steps; images/s is the median. The cpu backend (~2 img/s) gets a short run.
 * Inference: batch 256, predict + dataSync on the model saved and loaded back as `svhn predict`
 * loads it (BatchNorms folded), the batch in one pass as predict runs it, median of `reps`. --profile prints a per-kernel table
 * (tf.profile) of one training step and one inference batch per model. Not a test: nothing
 * here asserts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from './benchArgs.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const TRAIN_BATCH = 64;
const INFER_BATCH = 256;
const PROFILE_STEPS = 3;

const opts = benchArgs('train', {
  models: { type: 'string', default: 'baseline,optimized,resnet' },
  backends: { type: 'string', default: 'tensorflow,wasm,wasm2,cpu' },
  warmup: { type: 'string', default: '5' },
  steps: { type: 'string', default: '20' },
  reps: { type: 'string', default: '3' },
  'cpu-steps': { type: 'string', default: '1' },
  'torch-n': { type: 'string', default: '2048' },
  // PyTorch's threads: all cores by default, as svhn's default trains on them (1.13 picks
  // one thread by itself on some 2-core hosts); 'default' leaves it to PyTorch
  'torch-threads': { type: 'string', default: String(availableParallelism()) },
  torch: { type: 'boolean', default: true },
  'no-torch': { type: 'boolean', default: false },
  profile: { type: 'boolean', default: false },
  // svhn and PyTorch alternate this many times per model (each round: PyTorch, then every
  // backend); the table has every round's row, the verdict each round's ratio and their median
  rounds: { type: 'string', default: '1' },
  json: { type: 'boolean', default: false },
  // internal: run one (backend, model) and print one JSON line
  worker: { type: 'string' },
});

const int = (name) => {
  const v = Number(opts[name]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name}: expected a positive integer, got '${opts[name]}'`);
  return v;
};

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// ---------------------------------------------------------------- worker (one child) --

/**
 * Backend specs: tensorflow, wasm, cpu (one thread); wasmN: what `svhn train --threads N`
 * and `svhn predict --threads N` run, i.e. training on N data-parallel replicas
 * (src/train/replicas.ts) and inference on the threaded wasm build with N threads (two child
 * processes, as one process can load only one wasm build); wasmNt: the threaded build for
 * training too (the earlier way to use N cores, for comparison).
 */
function parseSpec(name) {
  const m = /^wasm(\d+)(t?)$/.exec(name);
  if (!m) return { backend: name, replicas: 1, buildThreads: 1 };
  const n = Number(m[1]);
  return { backend: 'wasm', replicas: m[2] ? 1 : n, buildThreads: n, threadedTraining: Boolean(m[2]) };
}

async function loadBackend(spec, mode) {
  const { initBackend } = await import(join(ROOT, 'dist/backend/index.js'));
  // Replicas train on single-threaded backends; inference (and wasmNt) on the threaded build.
  const threads = mode === 'infer' || spec.threadedTraining ? spec.buildThreads : 1;
  const info = await initBackend(spec.backend, { threads });
  if (info.name !== spec.backend) throw new Error(`backend ${spec.backend} did not load (got ${info.name})`);
  return info.threads;
}

/** The models exactly as `svhn train` builds them (dist/ is built by npm install / npm run build). */
async function buildModel(tf, name) {
  const registry = join(ROOT, 'dist/models/registry.js');
  if (!existsSync(registry)) throw new Error('dist/ is missing: run `npm run build` first');
  const { buildModel: build } = await import(registry);
  return { model: build(name, { seed: 1 }), source: 'registry' };
}

/** `model` saved to a temporary directory and loaded back through loadModelDir, as predict loads a model. */
async function loadAsPredictDoes(model, modelName) {
  const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { saveLayersModel, loadModelDir } = await import(join(ROOT, 'dist/models/io.js'));
  const dir = mkdtempSync(join(tmpdir(), 'svhn-bench-train-'));
  try {
    await saveLayersModel(model, dir);
    writeFileSync(join(dir, 'metadata.json'), JSON.stringify({ name: modelName, architecture: modelName }));
    return (await loadModelDir(dir)).model;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runWorker(specText) {
  const [backend, modelName, mode] = specText.split(':'); // mode: both | train | infer
  const spec = parseSpec(backend);
  const tf = await import('@tensorflow/tfjs');
  const { setLogger } = await import(join(ROOT, 'dist/log.js'));
  const { default: pino } = await import('pino');
  setLogger(pino({ level: 'silent' }));
  const buildThreads = await loadBackend(spec, mode);
  const { model, source } = await buildModel(tf, modelName);
  // svhn's own training step (src/train/replicas.ts): fused Adam, `replicas` data-parallel replicas.
  const { FusedAdamOptimizer } = await import(join(ROOT, 'dist/train/adam.js'));
  const { createTrainer } = await import(join(ROOT, 'dist/train/replicas.js'));
  const optimizer = new FusedAdamOptimizer(1e-3);
  const doTrain = mode !== 'infer';
  const doInfer = mode !== 'train';
  const trainer = doTrain
    ? await createTrainer({ model, optimizer, modelName, modelSeed: 1, backend: spec.backend, replicas: spec.replicas, maxBatch: TRAIN_BATCH })
    : undefined;
  // The pure-JS cpu backend (~2 img/s): warm up on a small batch, time `cpu-steps` steps
  // once, infer one batch of 64; no profile.
  const slow = backend === 'cpu';
  const warmup = slow ? 1 : int('warmup');
  const steps = slow ? int('cpu-steps') : int('steps');
  const reps = slow ? 1 : int('reps');
  const inferBatch = slow ? TRAIN_BATCH : INFER_BATCH;

  // Fixed data: the benchmark measures the step, not data loading.
  const xt = tf.randomUniform([TRAIN_BATCH, 32, 32, 3], 0, 1, 'float32', 1);
  const xs = xt.dataSync().slice();
  xt.dispose();
  const ys = new Float32Array(TRAIN_BATCH * 10);
  for (let i = 0; i < TRAIN_BATCH; i++) ys[i * 10 + ((i * 7) % 10)] = 1;
  const xInfer = tf.randomUniform([inferBatch, 32, 32, 3], 0, 1, 'float32', 2);

  const train = [];
  let leaked = 0;
  if (trainer) {
    for (let i = 0; i < warmup; i++) await trainer.step(xs, ys, slow ? 8 : TRAIN_BATCH);
    const startTensors = tf.memory().numTensors;
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      for (let i = 0; i < steps; i++) await trainer.step(xs, ys, TRAIN_BATCH);
      train.push((steps * TRAIN_BATCH) / ((performance.now() - t0) / 1000));
    }
    leaked = tf.memory().numTensors - startTensors;
  }

  // Inference runs the model as `svhn predict` and `svhn evaluate` do: saved, then loaded by
  // loadModelDir (BatchNorms folded into the convolutions, models/inference.ts), the batch in
  // one pass (wholeBatch).
  const inferModel = doInfer ? await loadAsPredictDoes(model, modelName) : undefined;
  const { wholeBatch } = await import(join(ROOT, 'dist/models/inference.js'));
  const inferOnce = () => {
    const p = inferModel.predict(xInfer, wholeBatch(inferBatch));
    p.dataSync();
    p.dispose();
  };
  if (!slow && doInfer) inferOnce();
  const infer = [];
  const inferCalls = slow ? 1 : 5;
  for (let r = 0; r < (doInfer ? reps : 0); r++) {
    const t0 = performance.now();
    for (let i = 0; i < inferCalls; i++) inferOnce();
    infer.push((inferCalls * inferBatch) / ((performance.now() - t0) / 1000));
  }

  // --profile: kernel ms of PROFILE_STEPS training steps and of one inference batch, per step
  // or batch (one step alone is too noisy on a shared machine). With replicas, training's is
  // the main thread's kernels only (its shard of the batch).
  const byKernel = (info, per) => {
    const rows = new Map();
    for (const k of info.kernels) {
      const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
      const e = rows.get(k.name) ?? { name: k.name, calls: 0, ms: 0 };
      e.calls += 1 / per;
      e.ms += ms / per;
      rows.set(k.name, e);
    }
    return [...rows.values()].sort((a, b) => b.ms - a.ms);
  };
  let profile;
  let inferProfile;
  if (opts.profile && !slow && trainer) {
    profile = byKernel(await tf.profile(async () => {
      for (let i = 0; i < PROFILE_STEPS; i++) await trainer.step(xs, ys, TRAIN_BATCH);
    }), PROFILE_STEPS);
  }
  if (opts.profile && !slow && inferModel) inferProfile = byKernel(await tf.profile(() => inferOnce()), 1);

  await trainer?.close();
  inferModel?.dispose();
  const threads = Math.max(spec.replicas, buildThreads);
  process.stdout.write(
    `${JSON.stringify({
      backend, model: modelName, source, threads, replicas: spec.replicas, warmup, steps, reps, infer_batch: inferBatch,
      train_img_s: train, train_med: median(train), infer_img_s: infer, infer_med: median(infer),
      leaked_tensors: leaked, peak_rss_mb: process.resourceUsage().maxRSS / 1024, profile, infer_profile: inferProfile,
    })}\n`,
  );
}

// ------------------------------------------------------------------------- driver --

function lastJsonLine(text) {
  const lines = text.trim().split('\n').reverse();
  for (const l of lines) {
    if (l.startsWith('{')) {
      try {
        return JSON.parse(l);
      } catch {
        /* not ours */
      }
    }
  }
  return undefined;
}

/** One child, or for wasmN (replicas for training, threaded build for inference) two, merged. */
function runChild(backend, model) {
  const spec = parseSpec(backend);
  if (spec.replicas === 1) return runOneChild(backend, model, 'both');
  const t = runOneChild(backend, model, 'train');
  const i = runOneChild(backend, model, 'infer');
  if (t.error || i.error) return t.error ? t : i;
  return { ...t, infer_img_s: i.infer_img_s, infer_med: i.infer_med, infer_profile: i.infer_profile, peak_rss_mb: Math.max(t.peak_rss_mb, i.peak_rss_mb), wall_s: t.wall_s + i.wall_s };
}

function runOneChild(backend, model, mode) {
  const t0 = Date.now();
  const args = [fileURLToPath(import.meta.url), '--worker', `${backend}:${model}:${mode}`];
  for (const k of ['warmup', 'steps', 'reps', 'cpu-steps']) args.push(`--${k}`, opts[k]);
  if (opts.profile) args.push('--profile');
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  const res = lastJsonLine(r.stdout ?? '');
  if (!res) {
    const stderr = r.stderr ?? '';
    const why = /Cannot find (package|module) '@tensorflow\/tfjs-node'|tfjs-node is not installed/.test(stderr)
      ? 'not installed (@tensorflow/tfjs-node is optional)'
      : (stderr.split('\n').find((l) => /^\w*Error\b|^svhn: error/.test(l.trim())) ?? `exit ${r.status}`).trim().slice(0, 160);
    return { backend, model, error: why };
  }
  return { ...res, wall_s: (Date.now() - t0) / 1000 };
}

function torchAvailable() {
  if (opts['no-torch']) return false;
  return spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
}

function runTorch(model) {
  const script = join(HERE, 'peers/torch_bench.py');
  const args = ['-f', 'MAXRSS_KB=%M', '/usr/bin/python3', script, '--model', model, '--n', opts['torch-n'], '--reps', opts.reps, '--threads', opts['torch-threads']];
  const r = spawnSync('/usr/bin/time', args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  const res = lastJsonLine(r.stdout ?? '');
  if (!res) return { backend: 'pytorch', model, error: `torch_bench.py exit ${r.status}` };
  const rss = /MAXRSS_KB=(\d+)/.exec(r.stderr ?? '');
  return {
    backend: 'pytorch', model, threads: res.threads, train_med: res.train_med, infer_med: res.infer_med,
    train_img_s: res.train_img_s, infer_img_s: res.infer_img_s, peak_rss_mb: rss ? Number(rss[1]) / 1024 : undefined,
    torch: res.torch,
  };
}

/**
 * The host as the ratios depend on it: the CPU's model and whether it has AVX-512 (PyTorch's
 * oneDNN uses it where it is; wasm SIMD is 128 bits wide everywhere), AVX2 and FMA.
 */
function hostLine() {
  const info = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  const flags = new Set((/^flags\s*:\s*(.*)$/m.exec(info)?.[1] ?? '').split(/\s+/));
  const has = (f) => (flags.size > 1 ? (flags.has(f) ? 'yes' : 'no') : 'unknown');
  const model = /^model name\s*:\s*(.*)$/m.exec(info)?.[1] ?? cpus()[0]?.model ?? 'unknown';
  return `host: ${model}, ${availableParallelism()} cores; AVX-512 ${has('avx512f')}, AVX2 ${has('avx2')}, FMA ${has('fma')}; Node ${process.versions.node}`;
}

const fmt = (v, d = 1) => (v === undefined || Number.isNaN(v) ? '-' : v.toFixed(d));

async function main() {
  const models = opts.models.split(',');
  const backends = opts.backends.split(',');
  const rows = [];
  const torch = torchAvailable();
  const rounds = int('rounds');
  const host = hostLine();
  process.stderr.write(`${host}\n`);
  for (const model of models) {
    for (let round = 1; round <= rounds; round++) {
      // PyTorch first, then each tfjs backend, back to back: the same machine state.
      const tag = rounds > 1 ? ` (round ${round}/${rounds})` : '';
      if (torch) {
        process.stderr.write(`pytorch ${model}${tag} ...\n`);
        rows.push({ ...runTorch(model), round });
      }
      for (const backend of backends) {
        process.stderr.write(`${backend} ${model}${tag} ...\n`);
        rows.push({ ...runChild(backend, model), round });
      }
    }
  }

  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ host, rows }, null, 1)}\n`);
    return;
  }
  console.log(`${host}\n`);
  const peer = (model, round = 1) => rows.find((r) => r.backend === 'pytorch' && r.model === model && r.round === round && !r.error);
  const header = ['model', 'round', 'backend', 'threads', 'train img/s', 'x torch', 'infer img/s', 'x torch', 'peak RSS MB', 'notes'];
  const table = [header];
  for (const r of rows) {
    if (r.error) {
      table.push([r.model, String(r.round), r.backend, '-', '-', '-', '-', '-', '-', r.error]);
      continue;
    }
    const p = peer(r.model, r.round);
    const notes = [];
    if (r.steps) notes.push(`${r.reps}x${r.steps} steps`);
    if (r.infer_batch && r.infer_batch !== INFER_BATCH) notes.push(`infer batch ${r.infer_batch}`);
    if (r.leaked_tensors) notes.push(`LEAK ${r.leaked_tensors} tensors`);
    if (r.source) notes.push(`model: ${r.source}`);
    if (r.torch) notes.push(`torch ${r.torch}`);
    table.push([
      r.model, String(r.round), r.backend, String(r.threads ?? '-'), fmt(r.train_med),
      p && r.backend !== 'pytorch' ? fmt(r.train_med / p.train_med, 2) : '-', fmt(r.infer_med),
      p && r.backend !== 'pytorch' ? fmt(r.infer_med / p.infer_med, 2) : '-', fmt(r.peak_rss_mb, 0), notes.join(', '),
    ]);
  }
  const widths = header.map((_, i) => Math.max(...table.map((row) => row[i].length)));
  for (const row of table) console.log(row.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());

  const printProfile = (kernels, title) => {
    const total = kernels.reduce((s, k) => s + k.ms, 0);
    console.log(`\nprofile: ${title}; total ${fmt(total)})`);
    for (const k of kernels.slice(0, 15)) console.log(`  ${k.name.padEnd(24)} ${fmt(k.ms).padStart(7)} ms  ${fmt(k.calls, 0).padStart(4)} calls`);
  };
  for (const r of rows.filter((x) => x.profile)) {
    printProfile(r.profile, `${r.backend} ${r.model}, kernel ms per training step of ${TRAIN_BATCH} (mean of ${PROFILE_STEPS}`);
  }
  for (const r of rows.filter((x) => x.infer_profile)) {
    printProfile(r.infer_profile, `${r.backend} ${r.model}, kernel ms per inference batch of ${r.infer_batch} (one batch`);
  }
  // Issue 5's targets: svhn's default here (wasm on all cores, as `svhn train` runs without
  // flags) at least 1.0x PyTorch for training (batch 64) and inference (batch 256).
  const cores = availableParallelism();
  const defaultBackend = cores > 1 ? `wasm${cores}` : 'wasm';
  console.log('');
  for (const model of models) {
    const ratios = { train: [], infer: [] };
    for (let round = 1; round <= rounds; round++) {
      const r = rows.find((x) => x.backend === defaultBackend && x.model === model && x.round === round && !x.error);
      const p = peer(model, round);
      if (!r || !p) continue;
      ratios.train.push(r.train_med / p.train_med);
      ratios.infer.push(r.infer_med / p.infer_med);
    }
    if (!ratios.train.length) continue;
    const verdict = (xs) => {
      const m = median(xs);
      const each = xs.length > 1 ? ` (rounds: ${xs.map((x) => fmt(x, 2)).join(', ')})` : '';
      return `${fmt(m, 2)}x${each} (target 1.0x: ${m >= 1 ? 'met' : 'not met'})`;
    };
    console.log(`${model} on ${defaultBackend} (svhn's default here) vs PyTorch: training ${verdict(ratios.train)}, inference ${verdict(ratios.infer)}`);
  }
}

if (opts.worker) await runWorker(opts.worker);
else await main();
