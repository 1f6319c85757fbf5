#!/usr/bin/env node
/**
 * How well a reader (`svhn train --model reader`) reads whole real SVHN photos: the 256 photos
 * of ../shared/realsvhn (photos.csv: file,number,boxes; README there), in four parts:
 *
 *   1 ceiling     the reader's own digit classifier (DIR/classifier) on the TRUE boxes, each cut
 *                 from its photo with tasks/read/letterbox.ts cropDigit (as SVHN cut its crops)
 *                 and classified by `svhn predict`: what the reader could reach with a perfect
 *                 detector. --classifier-only DIR adds the same for another digit model.
 *   2 offline     `svhn read` on all 256 photos: whole numbers exact, digit accuracy, length
 *                 right, accuracy against coverage over --min-confidence, and what it says on
 *                 a blank grey frame and a random-noise frame (no number there)
 *   3 fine-tuned  k-fold cross-validation (seeded folds of photos): per fold `svhn preprocess
 *                 --format full --labels <the other folds as CSV>` (photos referenced in place by
 *                 absolute path), `svhn train --model reader --init DIR` with the fine-tune
 *                 defaults, `svhn read` on the held-out fold
 *   4 speed       photos/s of `svhn read` on the 256 photos, median of --runs runs
 *   5 webcam      readings/s of the serve page's webcam loop (the reader in the browser) in
 *                 headless Chromium, its fake camera playing the first photo; skipped where
 *                 Chromium (Debian's chromium) or puppeteer-core is missing
 *
 *   npm run build && npm run bench:read
 *   npm run bench:read -- --reader models/reader --folds 5 --out read.json
 *   npm run bench:read -- --reader /tmp/tiny-reader --folds 2 --epochs 1   # smoke test
 *
 * Everything runs through the CLI (bin/svhn.js, which runs dist/; the page through `svhn serve`), in a temporary folder
 * removed at the end (--keep keeps it); every figure is printed with the command that made it.
 * Reading only: nothing from realsvhn is copied into the repository. Not a test: nothing here
 * asserts.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from './benchArgs.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'svhn.js');
/** --min-confidence values of the coverage table. */
const THRESHOLDS = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99];
/** The coverage whose threshold is reported on its own line. */
const KEEP = 0.8;

const opts = benchArgs('read', {
  real: { type: 'string', default: resolve(ROOT, '../shared/realsvhn') },
  reader: { type: 'string', default: 'models/reader' },
  'classifier-only': { type: 'string' },
  folds: { type: 'string', default: '5' },
  epochs: { type: 'string' }, // fine-tune epochs; default: the fine-tune default (DEFAULTS.finetune)
  seed: { type: 'string', default: '42' },
  runs: { type: 'string', default: '3' },
  backend: { type: 'string', default: 'auto' },
  threads: { type: 'string' },
  out: { type: 'string' },
  keep: { type: 'boolean', default: false },
  verbose: { type: 'boolean', default: false },
});

function fail(message) {
  process.stderr.write(`bench:read: ${message}\n`);
  process.exit(1);
}

function positiveInt(name, value) {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) fail(`--${name}: expected a positive integer, got '${value}'`);
  return n;
}

const REAL = resolve(opts.real);
const READER = resolve(opts.reader);
const CLASSIFIER_ONLY = opts['classifier-only'] === undefined ? null : resolve(opts['classifier-only']);
const FOLDS = positiveInt('folds', opts.folds);
const RUNS = positiveInt('runs', opts.runs);
const EPOCHS = opts.epochs === undefined ? undefined : positiveInt('epochs', opts.epochs);
const SEED = Number(opts.seed);
if (!Number.isInteger(SEED) || SEED < 0) fail(`--seed: expected a non-negative integer, got '${opts.seed}'`);
if (FOLDS < 2) fail('--folds: expected at least 2 (one held out, the others to learn from)');

if (!existsSync(join(REAL, 'photos.csv'))) {
  fail(`${join(REAL, 'photos.csv')} not found: this benchmark reads the 256 real SVHN photos in ../shared/realsvhn (or --real DIR)`);
}
if (!existsSync(join(ROOT, 'dist', 'tasks', 'read', 'letterbox.js'))) fail('dist/ is missing or old; run `npm run build` first');
if (!existsSync(join(READER, 'metadata.json'))) {
  fail(`no reader at ${READER}; train one with \`svhn download --synthetic --format full && svhn preprocess --format full && svhn train --model reader\` (or pass --reader DIR)`);
}
if (CLASSIFIER_ONLY && !existsSync(join(CLASSIFIER_ONLY, 'metadata.json'))) fail(`--classifier-only ${CLASSIFIER_ONLY}: no model directory there`);

const { parsePhotoLabels } = await import(join(ROOT, 'dist', 'data', 'images', 'photoLabels.js'));
const { decodePhotoFile } = await import(join(ROOT, 'dist', 'data', 'images', 'photo.js'));
const { cropDigit } = await import(join(ROOT, 'dist', 'tasks', 'read', 'letterbox.js'));
const { Rng } = await import(join(ROOT, 'dist', 'util', 'rng.js'));
const { readModelMetadata } = await import(join(ROOT, 'dist', 'models', 'io.js'));
const { csvCell } = await import(join(ROOT, 'dist', 'predict', 'output.js'));
const sharp = (await import('sharp')).default;

/** A failed step: reported in one line after the work folder is removed. */
class StepFailed extends Error {}

const backendFlags = () => [...(opts.backend ? ['--backend', opts.backend] : []), ...(opts.threads ? ['--threads', opts.threads] : [])];

/** The command as a person would type it (svhn for bin/svhn.js; paths as given); a long run of photo paths is shown as a count and the first one. */
function shown(args) {
  const quote = (a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`);
  const words = args.map(quote);
  const photos = args.findIndex((a) => a.endsWith('.png'));
  const count = photos < 0 ? 0 : args.slice(photos).findIndex((a) => !a.endsWith('.png'));
  if (count > 3) words.splice(photos, count, `<${count} photos: ${quote(args[photos])} ...>`);
  return ['svhn', ...words].join(' ');
}

/** Runs `svhn ARGS`; returns stdout, the JSON log lines of stderr, the wall time and the command. A failure stops the benchmark with svhn's own message. */
function svhn(args, what) {
  const full = [...args, '--log-format', 'json'];
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [BIN, ...full], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 256 << 20 });
  const seconds = (performance.now() - t0) / 1000;
  if (opts.verbose) process.stderr.write(r.stderr ?? '');
  if (r.status !== 0) {
    const line = (r.stderr ?? '').split('\n').find((l) => l.startsWith('svhn: error')) ?? `exit code ${r.status}`;
    throw new StepFailed(`${what} failed: ${line}\n  $ ${shown(args)}`);
  }
  const logs = (r.stderr ?? '').split('\n').flatMap((l) => {
    try {
      return l.startsWith('{') ? [JSON.parse(l)] : [];
    } catch {
      return [];
    }
  });
  return { stdout: r.stdout, logs, seconds, command: shown(args) };
}

const jsonl = (text) => text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
const pct = (x) => (x === null ? '-' : `${(100 * x).toFixed(1)}%`);
const ratio = (a, b) => (b ? a / b : null);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

/** The photos of photos.csv with absolute paths, their numbers and true boxes. */
function readPhotos() {
  const csv = join(REAL, 'photos.csv');
  return parsePhotoLabels(readFileSync(csv, 'utf8'), csv).map((r) => ({ file: r.file, path: resolve(REAL, r.file), number: r.number, boxes: r.boxes ?? [] }));
}

/** Seeded folds: the photos shuffled, then dealt round-robin (sizes within one). */
function photoFolds(photos, k, seed) {
  const order = new Rng(seed).shuffle(Uint32Array.from({ length: photos.length }, (_, i) => i));
  const folds = Array.from({ length: k }, () => []);
  order.forEach((i, n) => folds[n % k].push(photos[i]));
  return folds;
}

function writePhotosCsv(path, photos) {
  writeFileSync(path, ['file,number,boxes', ...photos.map((p) => `${csvCell(p.path)},${p.number},${p.boxes.map((b) => b.join(' ')).join(';')}`)].join('\n') + '\n');
}

/**
 * Scores `svhn read` rows against the truth. A row's reading is `best` (what it read, abstained
 * or not); exact when it equals the whole number. Digits: position by position, among photos
 * whose length was right, and over all true digits (a missing or extra digit is wrong).
 */
function scoreReadings(photos, rows) {
  const byPath = new Map(rows.map((r) => [resolve(r.input), r]));
  let exact = 0;
  let lengthRight = 0;
  let digitsRightSameLength = 0;
  let digitsSameLength = 0;
  let digitsRight = 0;
  let digits = 0;
  let failed = 0;
  const scored = photos.map((p) => {
    const row = byPath.get(p.path);
    if (!row || row.error) {
      failed++;
      digits += p.number.length;
      return { file: p.file, truth: p.number, read: null, confidence: null, exact: false };
    }
    const read = row.best ?? '';
    const right = [...p.number].filter((d, i) => read[i] === d).length;
    digits += p.number.length;
    digitsRight += right;
    if (read.length === p.number.length) {
      lengthRight++;
      digitsSameLength += p.number.length;
      digitsRightSameLength += right;
    }
    if (read === p.number) exact++;
    return { file: p.file, truth: p.number, read, confidence: row.confidence, exact: read === p.number };
  });
  const n = photos.length;
  return {
    photos: n,
    failed,
    exact: ratio(exact, n),
    lengthRight: ratio(lengthRight, n),
    digitAccuracyRightLength: ratio(digitsRightSameLength, digitsSameLength),
    digitAccuracyOverall: ratio(digitsRight, digits),
    readings: scored,
  };
}

/**
 * Accuracy against coverage: at --min-confidence t a row with a number abstains when its
 * confidence is below t (src/read/rows.ts; a no-number reading never abstains). Computed from
 * the rows' confidences (4 decimals), as `svhn read --min-confidence t` would decide.
 */
function coverageTable(readings) {
  const held = (r, t) => r.read !== null && r.read !== '' && r.confidence < t;
  const at = (t) => {
    const kept = readings.filter((r) => r.read !== null && !held(r, t));
    return { minConfidence: t, coverage: kept.length / readings.length, accuracy: ratio(kept.filter((r) => r.exact).length, kept.length), kept: kept.length };
  };
  // The highest threshold that keeps at least KEEP of the photos: half a rounding step (rows
  // carry 4 decimals) under one of the confidences, so svhn read, comparing the unrounded
  // confidence, keeps the same rows.
  const candidates = [...new Set(readings.filter((r) => r.read).map((r) => r.confidence))].sort((a, b) => b - a);
  let keep = at(0);
  for (const c of candidates) {
    const row = at(Math.max(0, Number((c - 0.00005).toFixed(5))));
    if (row.coverage >= KEEP) {
      keep = row;
      break;
    }
  }
  return { table: THRESHOLDS.map(at), keep };
}

/** Each true box cut from its photo (cropDigit) into DIR/<photo>-<i>.png; returns [{path, photo, digit}]. */
async function cutTrueBoxes(photos, dir) {
  mkdirSync(dir, { recursive: true });
  const crops = [];
  for (const [n, p] of photos.entries()) {
    const decoded = await decodePhotoFile(p.path);
    // boxes are in the photo's own pixels; the decoded photo is the same size unless over MAX_PHOTO_SIDE
    const sx = decoded.photo.width / decoded.width;
    const sy = decoded.photo.height / decoded.height;
    for (const [i, b] of p.boxes.entries()) {
      const pixels = await cropDigit(decoded.photo, [b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy]);
      const path = join(dir, `${String(n + 1).padStart(3, '0')}-${i}.png`);
      await sharp(Buffer.from(pixels), { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(path);
      crops.push({ path, photo: p.file, digit: Number(p.number[i]) });
    }
  }
  return crops;
}

/** A digit model on the true boxes: digit accuracy and whole numbers exact (every digit of the photo right). */
function ceilingOf(model, photos, crops, cropsDir) {
  const run = svhn(['predict', cropsDir, '--model', model, '--format', 'jsonl', ...backendFlags()], `predict the true boxes with ${model}`);
  const predicted = new Map(jsonl(run.stdout).map((r) => [resolve(r.input), r.predicted]));
  const wrongPhotos = new Set();
  let right = 0;
  for (const c of crops) {
    if (predicted.get(c.path) === c.digit) right++;
    else wrongPhotos.add(c.photo);
  }
  return { model, command: run.command, digits: crops.length, digitAccuracy: ratio(right, crops.length), exact: ratio(photos.length - wrongPhotos.size, photos.length) };
}

/** `svhn read` on photo paths (or a folder); rows as JSON objects. */
function readRows(model, inputs, what, extra = []) {
  const run = svhn(['read', ...inputs, '--model', model, '--format', 'jsonl', ...extra, ...backendFlags()], what);
  const summary = run.logs.find((l) => typeof l.photosPerSec === 'number');
  return { rows: jsonl(run.stdout), summary, seconds: run.seconds, command: run.command };
}

/** Random-noise frames, each of its own seed: one frame answered either way proves little. */
const NOISE_FRAMES = 8;

/** A blank grey frame and NOISE_FRAMES random-noise frames (seeds --seed, --seed + 1, ...), at the real photos' median size (104 x 47). */
async function noNumberFrames(dir) {
  const [w, h] = [104, 47];
  const grey = join(dir, 'blank-grey.png');
  await sharp({ create: { width: w, height: h, channels: 3, background: { r: 128, g: 128, b: 128 } } }).png().toFile(grey);
  const frames = [grey];
  for (let k = 0; k < NOISE_FRAMES; k++) {
    const rng = new Rng(SEED + k);
    const noise = Buffer.from(Array.from({ length: w * h * 3 }, () => Math.floor(rng.uniform(0, 256))));
    frames.push(join(dir, `random-noise-${SEED + k}.png`));
    await sharp(noise, { raw: { width: w, height: h, channels: 3 } }).png().toFile(frames[frames.length - 1]);
  }
  return frames;
}

// ------------------------------------------------------------------------------------------

const started = performance.now();
const readerMeta = await readModelMetadata(READER);
if (readerMeta.task !== 'read') fail(`--reader ${READER}: is a digit model, not a reader (svhn train --model reader)`);
const photos = readPhotos();
const work = mkdtempSync(join(tmpdir(), 'svhn-bench-read-'));
const log = (line) => process.stderr.write(`bench:read: ${line}\n`);
/** Seconds the webcam loop is timed for, after WEBCAM_WARMUP readings. */
const WEBCAM_SECONDS = 5;
const WEBCAM_WARMUP = 5;
/** The fake camera's frame (Chromium's default capture size). */
const FRAME = { width: 320, height: 240 };

/**
 * Readings a second of the serve page's webcam loop (page/reader.js in the browser, the
 * default), as a user sees it: `svhn serve --model READER`, headless Chromium (Debian's) with
 * its fake camera playing `photo` letterboxed into a 320x240 frame, the reader chosen and the
 * camera started; the page's own counters (#live data-readings, data-reading-ms) over
 * WEBCAM_SECONDS. Skipped, with the reason, where Chromium or puppeteer-core is missing.
 */
async function webcamRate(photo) {
  const { CHROMIUM: chromium, CHROMIUM_FLAGS } = await import('./chromium.js');
  if (!chromium) return { skipped: 'no Chromium at /usr/bin/chromium (apt-get install chromium)' };
  let puppeteer;
  try {
    puppeteer = (await import('puppeteer-core')).default;
  } catch {
    return { skipped: 'puppeteer-core is not installed' };
  }
  const { writeRgbVideo } = await import('./y4m.js');
  const { data } = await sharp(photo.path).removeAlpha().resize(FRAME.width, FRAME.height, { fit: 'contain', background: { r: 114, g: 114, b: 114 } }).raw().toBuffer({ resolveWithObject: true });
  const video = join(work, 'webcam.y4m');
  await writeRgbVideo(video, { ...FRAME, fps: 10, frames: Array.from({ length: 20 }, () => data) });
  const args = ['serve', '--model', READER, '--port', '0', ...backendFlags()];
  const server = spawn(process.execPath, [BIN, ...args, '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let browser;
  try {
    const url = await new Promise((resolveUrl, reject) => {
      let out = '';
      server.stdout.on('data', (d) => {
        out += d;
        const m = /^(http:\/\/\S+\/)\n/m.exec(out);
        if (m) resolveUrl(m[1]);
      });
      server.on('exit', (code) => reject(new StepFailed(`svhn serve exited ${code} before it listened\n  $ ${shown(args)}`)));
    });
    browser = await puppeteer.launch({
      executablePath: chromium,
      headless: true,
      userDataDir: join(work, 'chromium-profile'),
      args: [...CHROMIUM_FLAGS, '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-video-capture=${video}`],
    });
    const page = await browser.newPage();
    await page.goto(url);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
    await page.click('#tab-webcam');
    await page.select('#cam-model', READER.replace(/\/+$/, '').split('/').pop());
    await page.click('#cam-toggle');
    await page.waitForFunction((k) => Number(document.getElementById('live').dataset.readings ?? 0) >= k, { timeout: 120_000, polling: 50 }, WEBCAM_WARMUP);
    const m = await page.evaluate(async (seconds) => {
      const live = document.getElementById('live');
      const r0 = Number(live.dataset.readings);
      const t0 = performance.now();
      const times = [];
      while (performance.now() - t0 < seconds * 1000) {
        await new Promise((r) => setTimeout(r, 40));
        times.push(Number(live.dataset.readingMs));
      }
      times.sort((a, b) => a - b);
      return { rate: (Number(live.dataset.readings) - r0) / ((performance.now() - t0) / 1000), ms: times[Math.floor(times.length / 2)], number: live.dataset.number ?? '', backend: tf.getBackend() };
    }, WEBCAM_SECONDS);
    return {
      photo: photo.file, truth: photo.number, frame: `${FRAME.width}x${FRAME.height}`, seconds: WEBCAM_SECONDS,
      readingsPerSec: m.rate, medianMs: m.ms, lastNumber: m.number, tfBackend: m.backend,
      intervalNote: 'at least 40 ms between readings, so at most 25 a second',
      command: `${shown(args)}, then Chromium on its page: Webcam, the reader, Start camera`,
    };
  } finally {
    if (browser) await browser.close();
    server.kill('SIGTERM');
  }
}

const say = (line = '') => process.stdout.write(line + '\n');
log(`${photos.length} real photos from ${REAL}; reader ${READER}${readerMeta.synthetic ? ' (trained on the synthetic sample)' : ''}; ${FOLDS} folds, seed ${SEED}; work in ${work}`);

try {
  const results = { real: REAL, photos: photos.length, reader: READER, readerSynthetic: Boolean(readerMeta.synthetic), folds: FOLDS, seed: SEED, backend: opts.backend, threads: opts.threads ?? null };
  say(`bench:read: ${photos.length} real SVHN photos (${REAL}), reader ${READER}${readerMeta.synthetic ? ' (trained on the SYNTHETIC sample)' : ''}`);

  // 1. The ceiling: the classifier on the true boxes.
  log('1/5 ceiling: the classifier on the true boxes');
  const cropsDir = join(work, 'true-boxes');
  const crops = await cutTrueBoxes(photos, cropsDir);
  const cropNote = `the ${crops.length} true boxes cut from the photos with tasks/read/letterbox.ts cropDigit into ${cropsDir}`;
  results.ceiling = [ceilingOf(join(READER, 'classifier'), photos, crops, cropsDir)];
  if (CLASSIFIER_ONLY) results.ceiling.push(ceilingOf(CLASSIFIER_ONLY, photos, crops, cropsDir));
  say('');
  say(`1. ceiling: digit classifiers on the TRUE boxes (${cropNote})`);
  for (const c of results.ceiling) {
    say(`   ${c.model}: whole numbers exact ${pct(c.exact)}, digit accuracy ${pct(c.digitAccuracy)} (${c.digits} digits)`);
    say(`   $ ${c.command}`);
  }

  // 2. The offline reader on every photo.
  log('2/5 offline reader: svhn read on every photo');
  const offline = readRows(READER, [join(REAL, 'photos')], 'read the photos with the offline reader');
  const score = scoreReadings(photos, offline.rows);
  const coverage = coverageTable(score.readings);
  say('');
  say(`2. offline reader on all ${photos.length} photos`);
  say(`   $ ${offline.command}`);
  say(`   whole numbers exact ${pct(score.exact)}; length right ${pct(score.lengthRight)}; digit accuracy ${pct(score.digitAccuracyRightLength)} where the length was right, ${pct(score.digitAccuracyOverall)} overall${score.failed ? `; ${score.failed} photos failed` : ''}`);
  say('   accuracy against coverage: a number abstains when its confidence is below --min-confidence (computed from the rows above);');
  say('   a photo read as no number never abstains, so it stays covered, and wrong (every real photo has a number)');
  say('   min-confidence  coverage  exact');
  for (const r of coverage.table) say(`   ${r.minConfidence.toFixed(2).padStart(14)}  ${pct(r.coverage).padStart(8)}  ${pct(r.accuracy).padStart(5)}`);
  // The KEEP threshold through the CLI itself, as a check of the table's arithmetic.
  const keepRun = readRows(READER, [join(REAL, 'photos')], `read with --min-confidence ${coverage.keep.minConfidence}`, ['--min-confidence', String(coverage.keep.minConfidence)]);
  const keptRows = keepRun.rows.filter((r) => !r.abstained && !r.error);
  const keptExact = keptRows.filter((r) => photos.find((p) => p.path === resolve(r.input))?.number === r.number).length;
  coverage.keep.check = { command: keepRun.command, coverage: keptRows.length / photos.length, accuracy: ratio(keptExact, keptRows.length) };
  say(`   keeping ${pct(KEEP)}: --min-confidence ${coverage.keep.minConfidence} keeps ${pct(coverage.keep.coverage)} of the photos, ${pct(coverage.keep.accuracy)} of them exact (through the CLI: ${pct(coverage.keep.check.coverage)} kept, ${pct(coverage.keep.check.accuracy)} exact)`);
  say(`   $ ${keepRun.command}`);
  const frames = await noNumberFrames(work);
  const noNumber = readRows(READER, frames, 'read the no-number frames', ['--min-confidence', String(coverage.keep.minConfidence)]);
  say('   no number in the frame (104 x 47): does it say so?');
  const frameResults = noNumber.rows.map((r) => ({
    frame: r.input.split('/').pop(),
    read: r.best,
    confidence: r.confidence,
    saysNoNumber: r.best === '',
    abstainsAtKeep: r.abstained,
  }));
  const noise = frameResults.filter((f) => f.frame.startsWith('random-noise'));
  say(`   ${noise.filter((f) => f.saysNoNumber).length} of ${noise.length} random-noise frames read as no number; ${noise.filter((f) => f.saysNoNumber || f.abstainsAtKeep).length} say no number or abstain at --min-confidence ${coverage.keep.minConfidence}`);
  for (const f of frameResults) {
    say(`   ${f.frame.padEnd(20)} ${f.saysNoNumber ? `no number (confidence ${f.confidence})` : `reads '${f.read}' (confidence ${f.confidence}; ${f.abstainsAtKeep ? 'abstains' : 'does not abstain'} at --min-confidence ${coverage.keep.minConfidence})`}`);
  }
  say(`   $ ${noNumber.command}`);
  const { readings, ...offlineScore } = score;
  results.offline = { command: offline.command, ...offlineScore, coverage: coverage.table, keep: coverage.keep, noNumber: { command: noNumber.command, frames: frameResults }, readings };

  // 3. Fine-tuned, cross-validated.
  const folds = photoFolds(photos, FOLDS, SEED);
  const foldResults = [];
  for (let k = 0; k < FOLDS; k++) {
    const at = `fold ${k + 1}/${FOLDS}`;
    log(`3/5 ${at}: preprocess, fine-tune, read the held-out photos`);
    const dir = join(work, `fold-${k + 1}`);
    mkdirSync(dir, { recursive: true });
    const train = folds.flatMap((f, j) => (j === k ? [] : f));
    const csv = join(dir, 'train.csv');
    writePhotosCsv(csv, train);
    const pre = svhn(['preprocess', '--format', 'full', '--labels', csv, '--data-dir', join(dir, 'data'), '--seed', String(SEED), '--json'], `${at} preprocess`);
    const ft = svhn(
      ['train', '--model', 'reader', '--init', READER, '--data-dir', join(dir, 'data'), '--seed', String(SEED), ...(EPOCHS ? ['--epochs', String(EPOCHS)] : []), '--out', join(dir, 'reader'), '--json', ...backendFlags()],
      `${at} fine-tune`,
    );
    const held = readRows(join(dir, 'reader'), folds[k].map((p) => p.path), `${at} read the held-out photos`);
    const s = scoreReadings(folds[k], held.rows);
    const summary = JSON.parse(ft.stdout);
    foldResults.push({ fold: k + 1, train: train.length, heldOut: folds[k].length, heldOutFiles: folds[k].map((p) => p.file), exact: s.exact, lengthRight: s.lengthRight, digitAccuracyOverall: s.digitAccuracyOverall, epochsRun: summary.epochsRun, commands: [pre.command, ft.command, held.command] });
    log(`${at}: held-out exact ${pct(s.exact)}`);
  }
  const meanExact = foldResults.reduce((a, f) => a + f.exact, 0) / FOLDS;
  results.finetuned = { meanExact, folds: foldResults };
  say('');
  say(`3. fine-tuned from the reader, ${FOLDS}-fold cross-validation (seeded folds of photos, seed ${SEED}): held-out whole numbers exact, mean ${pct(meanExact)}`);
  for (const f of foldResults) {
    say(`   fold ${f.fold}: ${pct(f.exact)} exact of ${f.heldOut} held out (learnt from ${f.train}, ${f.epochsRun} epochs), length right ${pct(f.lengthRight)}, digits ${pct(f.digitAccuracyOverall)}`);
    for (const c of f.commands) say(`   $ ${c}`);
  }

  // 4. Speed.
  log(`4/5 speed: svhn read on every photo, ${RUNS} runs`);
  const runs = [];
  for (let i = 0; i < RUNS; i++) {
    const r = readRows(READER, [join(REAL, 'photos')], `speed run ${i + 1}`, ['--out', join(work, `speed-${i + 1}.jsonl`)]);
    runs.push({ photosPerSec: r.summary?.photosPerSec ?? null, wallSeconds: r.seconds, command: r.command });
  }
  const speed = { runs, medianPhotosPerSec: median(runs.map((r) => r.photosPerSec ?? 0)), medianWallSeconds: median(runs.map((r) => r.wallSeconds)), command: runs[0].command };
  results.speed = speed;
  say('');
  say(`4. speed: svhn read on the ${photos.length} photos, median of ${RUNS} runs: ${speed.medianPhotosPerSec.toFixed(1)} photos/s as read reports it (decode, letterbox, detect, crop, classify; the model loaded), ${speed.medianWallSeconds.toFixed(1)} s wall per run with start-up`);
  say(`   $ ${speed.command}`);

  // 5. The page's webcam.
  log('5/5 webcam: the serve page reading a fake camera in headless Chromium');
  results.webcam = await webcamRate(photos[0]);
  say('');
  if (results.webcam.skipped) say(`5. webcam: skipped (${results.webcam.skipped})`);
  else {
    const w = results.webcam;
    say(`5. webcam: the serve page's reader loop in headless Chromium (tfjs ${w.tfBackend} in the page), a fake camera looping ${w.photo} (${w.truth}) at ${w.frame}: ${w.readingsPerSec.toFixed(1)} readings/s over ${w.seconds} s, median ${w.medianMs.toFixed(1)} ms a reading (the loop waits ${w.intervalNote}); it read '${w.lastNumber}'`);
    say(`   $ ${w.command}`);
  }
  say('');
  say(`whole benchmark ${((performance.now() - started) / 1000).toFixed(1)} s`);

  if (opts.out) {
    const summary = { ...results, totalSeconds: (performance.now() - started) / 1000, createdAt: new Date().toISOString() };
    const tmp = `${opts.out}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(summary, null, 2) + '\n');
    renameSync(tmp, opts.out);
    log(`wrote ${opts.out}`);
  }
} catch (e) {
  if (!(e instanceof StepFailed)) throw e;
  process.stderr.write(`bench:read: ${e.message}${opts.verbose ? '' : "\n(--verbose shows svhn's logs)"}\n`);
  process.exitCode = 1;
} finally {
  if (opts.keep) log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
