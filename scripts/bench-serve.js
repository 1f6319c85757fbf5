#!/usr/bin/env node
/**
 * Serve benchmark: `svhn serve` (the CLI, as users start it) on loopback, loaded by autocannon.
 *
 *   npm run bench:serve                          # auto backend, 10 s a run, 100,000 requests for RSS
 *   npm run bench:serve -- --duration 5 --soak 20000 --backend cpu
 *
 * For a single 32x32 PNG (a raw image/png body) and a batch of 100 (multipart), at 1, 8 and
 * 64 connections: requests/s and p50 / p99 latency. Then the server's RSS (from /healthz)
 * before and after --soak single-PNG requests at 8 connections, and its tensor count (flat
 * when nothing leaks). Images: synthetic digits (dist/data/synthetic/synthetic.js). The model is
 * models/optimized when it exists, else a freshly initialised `optimized` network saved under
 * bench-out/ (same speed, random answers). Needs `npm run build` first (it runs dist/).
 */
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from './benchArgs.js';
import { benchModelDir } from './benchModel.js';
import autocannon from 'autocannon';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => join(ROOT, 'dist', p);

const args = benchArgs('serve', {
  duration: { type: 'string', default: '10' }, // seconds per (body, concurrency) run
  soak: { type: 'string', default: '100000' }, // requests between the two RSS readings
  backend: { type: 'string', default: 'auto' },
  batch: { type: 'string', default: '100' },
  json: { type: 'string' }, // also write the results here
});
const DURATION = Number(args.duration);
const SOAK = Number(args.soak);
const BATCH = Number(args.batch);
const CONCURRENCY = [1, 8, 64];

if (!existsSync(dist('cli/main.js'))) {
  process.stderr.write('bench:serve: dist/ is missing; run `npm run build` first\n');
  process.exit(2);
}


/** n synthetic digits as 32x32 PNGs. */
async function digitPngs(n) {
  const sharp = (await import('sharp')).default;
  const { Rng } = await import(dist('util/rng.js'));
  const { generateImages } = await import(dist('data/synthetic/synthetic.js'));
  const { images } = generateImages(new Rng(7), n);
  return Promise.all(Array.from({ length: n }, (_, i) => sharp(images.subarray(i * 3072, (i + 1) * 3072), { raw: { width: 32, height: 32, channels: 3 } }).png().toBuffer()));
}

function multipartBody(files) {
  const boundary = '----svhn-bench-boundary';
  const parts = files.flatMap((bytes, i) => [
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${i}.png"\r\nContent-Type: image/png\r\n\r\n`),
    bytes,
    Buffer.from('\r\n'),
  ]);
  return { body: Buffer.concat([...parts, Buffer.from(`--${boundary}--\r\n`)]), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** Starts the CLI and resolves with its URL and the child. */
function startServer(model) {
  const child = spawn(process.execPath, [join(ROOT, 'bin/svhn.js'), 'serve', '--model', model, '--port', '0', '--backend', args.backend, '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'ignore'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /^(http:\/\/\S+\/)\n/m.exec(out);
      if (m) resolve({ url: m[1], child });
    });
    child.on('exit', (code) => reject(new Error(`svhn serve exited ${code}`)));
  });
}

const health = async (url) => (await fetch(`${url}healthz`)).json();

function load(url, { body, contentType }, connections, opts) {
  return autocannon({ url: `${url}v1/predict`, method: 'POST', body, headers: { 'content-type': contentType }, connections, ...opts });
}

const model = await benchModelDir();
const pngs = await digitPngs(BATCH);
const single = { body: pngs[0], contentType: 'image/png' };
const batch = multipartBody(pngs);
const { url, child } = await startServer(model.dir);
const results = { model: model.trained ? 'models/optimized' : 'optimized (untrained)', cores: cpus().length, node: process.version, durationSec: DURATION, runs: [], soak: null };
try {
  const h0 = await health(url);
  process.stderr.write(`bench:serve: ${url} (${results.model}); ${DURATION} s per run\n`);
  await load(url, single, 8, { amount: 500 }); // warm up: first batches compile kernels
  for (const [name, body] of [['1 PNG', single], [`${BATCH} PNGs`, batch]]) {
    for (const c of CONCURRENCY) {
      const r = await load(url, body, c, { duration: DURATION });
      const run = {
        body: name,
        connections: c,
        reqPerSec: Math.round(r.requests.average * 10) / 10,
        imagesPerSec: Math.round(r.requests.average * (name === '1 PNG' ? 1 : BATCH)),
        p50ms: r.latency.p50,
        p99ms: r.latency.p99,
        requests: r.requests.total,
        non2xx: r.non2xx,
        errors: r.errors,
      };
      results.runs.push(run);
      process.stderr.write(`  ${name.padEnd(9)} c=${String(c).padEnd(3)} ${String(run.reqPerSec).padStart(8)} req/s  p50 ${run.p50ms} ms  p99 ${run.p99ms} ms  (${run.non2xx} non-2xx, ${run.errors} errors)\n`);
    }
  }
  const before = await health(url);
  const t0 = performance.now();
  const soak = await load(url, single, 8, { amount: SOAK });
  const after = await health(url);
  results.soak = {
    requests: soak.requests.total,
    seconds: Math.round((performance.now() - t0) / 100) / 10,
    non2xx: soak.non2xx,
    errors: soak.errors,
    rssStartMB: Math.round(h0.rssBytes / 2 ** 20),
    rssBeforeMB: Math.round(before.rssBytes / 2 ** 20),
    rssAfterMB: Math.round(after.rssBytes / 2 ** 20),
    tensorsBefore: before.tensors,
    tensorsAfter: after.tensors,
  };
  const s = results.soak;
  process.stderr.write(`  RSS ${s.rssBeforeMB} MB before, ${s.rssAfterMB} MB after ${s.requests} requests (${s.seconds} s, ${s.non2xx} non-2xx); tensors ${s.tensorsBefore} -> ${s.tensorsAfter}\n`);
} finally {
  child.kill('SIGTERM');
}

process.stdout.write('\n| body | connections | req/s | images/s | p50 ms | p99 ms |\n| --- | --- | --- | --- | --- | --- |\n');
for (const r of results.runs) process.stdout.write(`| ${r.body} | ${r.connections} | ${r.reqPerSec} | ${r.imagesPerSec} | ${r.p50ms} | ${r.p99ms} |\n`);
process.stdout.write(JSON.stringify(results) + '\n');
if (args.json) writeFileSync(args.json, JSON.stringify(results, null, 2));
