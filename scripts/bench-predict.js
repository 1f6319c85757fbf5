#!/usr/bin/env node
/**
 * Predict benchmark: images/second for `svhn predict` over a folder of 10,000 PNGs of mixed
 * sizes (20x30 up to 120x80), decoding, resizing and the model included: the same stage
 * call (dist/predict/run.js runPredict) the CLI makes, rows written to a null stream.
 *
 *   npm run bench:predict                       # auto backend, batch 256
 *   npm run bench:predict -- --backend cpu
 *   npm run bench:predict -- --count 2000 --batch-size 128 --concurrency 8
 *
 * The folder is made once under bench-out/predict-png-<count>/ (a DONE marker file says it is
 * complete): synthetic digits (dist/data/synthetic/synthetic.js, the offline sample's renderer) upscaled
 * with sharp to a random size each. The model is models/optimized when it exists, otherwise a
 * freshly initialised `optimized` network saved under bench-out/ (same speed, random answers).
 * Needs `npm run build` first (it imports ../dist).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { benchArgs } from './benchArgs.js';
import { benchModelDir } from './benchModel.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => join(ROOT, 'dist', p);

const args = benchArgs('predict', {
  count: { type: 'string', default: '10000' },
  backend: { type: 'string', default: 'auto' },
  'batch-size': { type: 'string', default: '256' },
  concurrency: { type: 'string', default: '32' }, // predict.ts DECODE_CONCURRENCY
  seed: { type: 'string', default: '7' },
});
const COUNT = Number(args.count);
const SEED = Number(args.seed);
const FOLDER = join(ROOT, 'bench-out', `predict-png-${COUNT}`);
const DONE = join(FOLDER, 'DONE');

if (!existsSync(dist('predict/run.js'))) {
  process.stderr.write('bench:predict: dist/ is missing; run `npm run build` first\n');
  process.exit(2);
}

/** Writes COUNT PNGs (once): synthetic 32x32 digits resized to 20..120 x 30..80. */
async function makeFolder() {
  if (existsSync(DONE)) return;
  const sharp = (await import('sharp')).default;
  const { Rng } = await import(dist('util/rng.js'));
  const { generateImages } = await import(dist('data/synthetic/synthetic.js'));
  await rm(FOLDER, { recursive: true, force: true });
  mkdirSync(FOLDER, { recursive: true });
  const rng = new Rng(SEED);
  const t0 = performance.now();
  const CHUNK = 500;
  for (let start = 0; start < COUNT; start += CHUNK) {
    const n = Math.min(CHUNK, COUNT - start);
    const { images, labels } = generateImages(rng, n);
    await Promise.all(
      Array.from({ length: n }, (_, i) => {
        const width = 20 + rng.int(101); // 20..120
        const height = 30 + rng.int(51); // 30..80
        const name = `${String(start + i).padStart(5, '0')}_d${labels[i]}.png`;
        return sharp(images.subarray(i * 3072, (i + 1) * 3072), { raw: { width: 32, height: 32, channels: 3 } })
          .resize(width, height, { fit: 'fill' })
          .png()
          .toFile(join(FOLDER, name));
      }),
    );
  }
  writeFileSync(DONE, `${COUNT} PNGs, seed ${SEED}\n`);
  process.stderr.write(`bench:predict: wrote ${COUNT} PNGs to ${FOLDER} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
}


await makeFolder();
const model = await benchModelDir();
const { runPredict } = await import(dist('predict/run.js'));
const devNull = new Writable({ write: (_chunk, _enc, cb) => cb() });
const summary = await runPredict({
  inputs: [FOLDER],
  modelDir: model.dir,
  format: 'csv',
  stream: devNull,
  topK: 3,
  recursive: false,
  batchSize: Number(args['batch-size']),
  dataDir: 'data',
  backend: args.backend,
  gridCount: 25,
  decodeConcurrency: Number(args.concurrency),
  progress: 'silent',
});
const result = {
  images: summary.predicted,
  failed: summary.failed,
  seconds: Number(summary.seconds.toFixed(2)),
  imagesPerSec: Math.round(summary.imagesPerSec),
  backend: summary.backend,
  model: model.trained ? 'models/optimized' : 'optimized (untrained)',
  batchSize: Number(args['batch-size']),
  decodeConcurrency: Number(args.concurrency),
  peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024), // whole process, PNG generation included on a first run
  cores: cpus().length,
  node: process.version,
};
process.stdout.write(
  `predict over ${result.images} PNGs (20x30..120x80, decode included): ${result.imagesPerSec} images/s ` +
    `in ${result.seconds} s on ${result.backend} (${result.model}, batch ${result.batchSize}, ${result.decodeConcurrency} decodes in flight, ${result.cores} cores, peak RSS ${result.peakRssMB} MB)\n`,
);
process.stdout.write(JSON.stringify(result) + '\n');
process.exit(summary.failed > 0 ? 3 : 0);
