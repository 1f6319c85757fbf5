#!/usr/bin/env node
/**
 * Data benchmark: our streaming MAT reader (dist/data/mat/mat.js) against scipy.io.loadmat + a
 * numpy transpose to contiguous NHWC, on the same train-sized file (73,257 images,
 * compressed, written by scipy) in the same run. Each timed run is a fresh child process, so
 * peak RSS is per run; runs alternate between the two readers so that load from other work
 * on the machine falls on both alike. Both results are checked against expected.json (sha256
 * of the NHWC bytes and of the digits) before any figure is believed.
 *
 *   npm run bench:data                 # train-size file, median of 3 runs each
 *   npm run bench:data -- --runs 5
 *   npm run bench:data -- --extra      # also stream an extra-sized file (531,131 images)
 *
 * Needs `npm run build` first (it imports ../dist) and python3 with numpy + scipy.
 * Targets (issue 2): at least as fast as scipy, peak RSS < 0.5 GB; extra streamed < 2 GB.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchFail } from './benchArgs.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'bench-out', 'mat');
const BIG = join(OUT, 'big_c_u8.mat');
const EXTRA = join(OUT, 'extra_c_u8.mat');
const EXTRA_EXPECTED = join(OUT, 'extra_expected.json');
const TRAIN_SIZE = 73257;
const EXTRA_SIZE = 531131;
const EXTRA_CHUNK = 10000; // images per chunk when streaming extra (30.7 MB of NHWC)
const GB = 1024 ** 3;

// ---------------------------------------------------------------- child runs

/** One timed read in this (fresh) process; prints one JSON line on stdout. */
async function childNode(file, mode) {
  const { readSvhnMat, readSvhnMatChunks } = await import(join(ROOT, 'dist', 'data', 'mat', 'mat.js'));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let count = 0;
  let nhwc, digits;
  if (mode === 'whole') {
    const m = await readSvhnMat(file);
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    count = m.count;
    // Hashing comes after the clock stops.
    nhwc = createHash('sha256').update(m.images).digest('hex');
    digits = createHash('sha256').update(m.labels).digest('hex');
    return { ms, cpuMs: (cpu.user + cpu.system) / 1000, count, nhwc, digits, maxRssKb: process.resourceUsage().maxRSS };
  }
  // Chunks: hashed as they arrive (the whole array is never held), so the hash is timed too.
  const hImages = createHash('sha256');
  const hDigits = createHash('sha256');
  for await (const c of readSvhnMatChunks(file, { chunk: EXTRA_CHUNK })) {
    hImages.update(c.images);
    hDigits.update(c.labels);
    count += c.count;
  }
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  nhwc = hImages.digest('hex');
  digits = hDigits.digest('hex');
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000, count, nhwc, digits, maxRssKb: process.resourceUsage().maxRSS };
}

const SCIPY_CHILD = `
import hashlib, json, os, resource, sys, time
import numpy as np, scipy.io as sio
t0 = time.perf_counter(); c0 = os.times()
m = sio.loadmat(sys.argv[1])
nhwc = np.ascontiguousarray(m["X"].transpose(3, 0, 1, 2))
digits = (m["y"].reshape(-1) % 10).astype(np.uint8)
ms = (time.perf_counter() - t0) * 1000; c1 = os.times()
print(json.dumps({"ms": ms, "cpuMs": (c1.user + c1.system - c0.user - c0.system) * 1000, "count": int(nhwc.shape[0]),
  "nhwc": hashlib.sha256(nhwc.data).hexdigest(), "digits": hashlib.sha256(digits.data).hexdigest(),
  "maxRssKb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
`;

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.slice(0, 2).join(' ')} failed (exit ${r.status}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1));
}

const runNode = (file, mode) => run(process.execPath, [fileURLToPath(import.meta.url), '--child', mode, file]);
const runScipy = (file) => run('python3', ['-c', SCIPY_CHILD, file]);

// ---------------------------------------------------------------- fixtures

function sh(cmd, args) {
  console.error(`$ ${cmd} ${args[0] === '-c' ? '-c <script> ' + args.slice(1).join(' ') : args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`${cmd} failed with exit ${r.status}`);
}

function findFixtureWriter() {
  const candidates = [join(ROOT, '..', 'shared', 'fixtures', 'make_mat_fixtures.py'), '/work/shared/fixtures/make_mat_fixtures.py'];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`make_mat_fixtures.py not found (looked in ${candidates.join(', ')})`);
  return found;
}

function ensureTrainFile() {
  const expectedPath = join(OUT, 'expected.json');
  const have = existsSync(BIG) && existsSync(expectedPath) && JSON.parse(readFileSync(expectedPath, 'utf8'))['big_c_u8.mat'];
  if (!have) {
    console.error(`building ${BIG} (${TRAIN_SIZE} images, about 230 MB raw; takes a minute)`);
    sh('python3', [findFixtureWriter(), OUT, '--big', String(TRAIN_SIZE)]);
  }
  return JSON.parse(readFileSync(expectedPath, 'utf8'))['big_c_u8.mat'];
}

/**
 * Extra-sized file, written by scipy.io.savemat with compression like the real one. Pixels:
 * a cheap pattern plus noise, made in batches (the fixture writer's int64 noise would need
 * 13 GB here); expected hashes of the NHWC bytes and digits are computed batch by batch.
 * savemat itself holds X, its uncompressed matrix and the compressed copy: about 5 GB peak.
 */
const EXTRA_WRITER = `
import hashlib, json, os, sys
import numpy as np, scipy.io as sio
n, out, exp_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
rng = np.random.default_rng(531)
X = np.empty((32, 32, 3, n), dtype=np.uint8, order="F")
h = np.arange(32, dtype=np.int64).reshape(32, 1, 1, 1); w = np.arange(32, dtype=np.int64).reshape(1, 32, 1, 1)
c = np.arange(3, dtype=np.int64).reshape(1, 1, 3, 1)
hx = hashlib.sha256()
B = 8192
for s in range(0, n, B):
    k = np.arange(s, min(n, s + B), dtype=np.int64).reshape(1, 1, 1, -1)
    block = ((h * 7 + w * 3 + c * 85 + (k * 29) % 251) % 256).astype(np.uint8)
    block += rng.integers(0, 4, size=block.shape, dtype=np.uint8)
    X[..., s:s + block.shape[3]] = block
    hx.update(np.ascontiguousarray(block.transpose(3, 0, 1, 2)).data)
y = rng.integers(1, 11, size=(n, 1)).astype(np.uint8); y[:10, 0] = np.arange(1, 11)
digits = (y.reshape(-1) % 10).astype(np.uint8)
tmp = out[:-len(".mat")] + ".partial.mat"  # savemat appends .mat to other names
sio.savemat(tmp, {"X": X, "y": y}, do_compression=True, format="5")
os.replace(tmp, out)  # never a half-written file under the final name
json.dump({"n": n, "nhwc_sha256": hx.hexdigest(), "digits_sha256": hashlib.sha256(digits.data).hexdigest()}, open(exp_path + ".tmp", "w"))
os.replace(exp_path + ".tmp", exp_path)
`;

function ensureExtraFile() {
  if (!existsSync(EXTRA) || !existsSync(EXTRA_EXPECTED)) {
    console.error(`building ${EXTRA} (${EXTRA_SIZE} images, 1.63 GB raw; several minutes, about 5 GB of RAM)`);
    mkdirSync(OUT, { recursive: true });
    sh('python3', ['-c', EXTRA_WRITER, String(EXTRA_SIZE), EXTRA, EXTRA_EXPECTED]);
  }
  return JSON.parse(readFileSync(EXTRA_EXPECTED, 'utf8'));
}

// ---------------------------------------------------------------- report

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const sec = (ms) => `${(ms / 1000).toFixed(2)} s`;
const gb = (kb) => `${((kb * 1024) / GB).toFixed(3)} GB`;

function check(label, r, expected) {
  const ok = r.count === expected.n && r.nhwc === expected.nhwc_sha256 && r.digits === expected.digits_sha256;
  if (!ok) {
    console.log(`${label}: WRONG RESULT (count ${r.count} vs ${expected.n}, nhwc ${r.nhwc.slice(0, 12)} vs ${expected.nhwc_sha256.slice(0, 12)}, digits ${r.digits.slice(0, 12)} vs ${expected.digits_sha256.slice(0, 12)})`);
    process.exitCode = 1;
  }
  return ok;
}

async function main() {
  const args = process.argv.slice(2);
  if (args[0] === '--child') {
    console.log(JSON.stringify(await childNode(args[2], args[1])));
    return;
  }
  // the flags it takes: --runs N and --extra (and --child for its own child runs, above)
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--runs') i++;
    else if (args[i] !== '--extra') benchFail('data', `unknown argument '${args[i]}' (it takes: --runs N --extra)`);
  }
  const runsAt = args.indexOf('--runs');
  const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 3;
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs takes a positive whole number, got ${args[runsAt + 1]}`);
  if (!existsSync(join(ROOT, 'dist', 'data', 'mat', 'mat.js'))) throw new Error('dist/data/mat/mat.js is missing: run `npm run build` first');

  const expected = ensureTrainFile();
  console.log(`file: ${BIG} (${expected.n} images, compressed, written by scipy.io.savemat)`);
  const ours = [];
  const scipy = [];
  for (let i = 0; i < runs; i++) {
    const a = runNode(BIG, 'whole');
    check(`svhn run ${i + 1}`, a, expected);
    ours.push(a);
    const b = runScipy(BIG);
    check(`scipy run ${i + 1}`, b, expected);
    scipy.push(b);
    console.log(`  run ${i + 1}: svhn ${sec(a.ms)} (cpu ${sec(a.cpuMs)}, peak RSS ${gb(a.maxRssKb)})   scipy ${sec(b.ms)} (cpu ${sec(b.cpuMs)}, peak RSS ${gb(b.maxRssKb)})`);
  }
  const oursMs = median(ours.map((r) => r.ms));
  const scipyMs = median(scipy.map((r) => r.ms));
  const oursRss = Math.max(...ours.map((r) => r.maxRssKb));
  const scipyRss = Math.max(...scipy.map((r) => r.maxRssKb));
  console.log(`readSvhnMat (node):                  median ${sec(oursMs)} of ${runs}, cpu ${sec(median(ours.map((r) => r.cpuMs)))}, peak RSS ${gb(oursRss)}`);
  console.log(`scipy.io.loadmat + NHWC (python3):   median ${sec(scipyMs)} of ${runs}, cpu ${sec(median(scipy.map((r) => r.cpuMs)))}, peak RSS ${gb(scipyRss)}`);
  console.log(`ratio scipy / svhn: ${(scipyMs / oursMs).toFixed(2)}x (above 1 means svhn is faster)`);
  const fast = oursMs <= scipyMs;
  const lean = (oursRss * 1024) / GB < 0.5;
  console.log(`targets: at least as fast as scipy: ${fast ? 'met' : 'MISSED'}; peak RSS < 0.5 GB: ${lean ? 'met' : 'MISSED'}`);

  if (args.includes('--extra')) {
    const exp = ensureExtraFile();
    console.log(`extra: ${EXTRA} (${exp.n} images) streamed with readSvhnMatChunks, chunk ${EXTRA_CHUNK}`);
    const r = runNode(EXTRA, 'chunks');
    const ok = check('extra', r, exp);
    const under = (r.maxRssKb * 1024) / GB < 2;
    console.log(`  ${sec(r.ms)} (cpu ${sec(r.cpuMs)}), peak RSS ${gb(r.maxRssKb)}${ok ? ', sha256 matches' : ''}`);
    console.log(`targets: extra peak RSS < 2 GB: ${under ? 'met' : 'MISSED'}`);
  } else {
    console.log('(pass --extra to also stream an extra-sized file: slow to build the first time)');
  }
}

main().catch((e) => {
  console.error(`bench-data: ${e.message}`);
  process.exit(1);
});
