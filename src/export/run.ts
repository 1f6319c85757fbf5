/**
 * `svhn export` as one stage call: check the model directory and the output, write the
 * format's file beside the directory (a temporary sibling first), run it in the format's own
 * runtime on the proof images and compare with predict's probabilities, then rename it into
 * place, or remove it and fail when any probability differs by more than the tolerance.
 */
import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { IMAGE_BYTES, NUM_CLASSES, type BackendChoice } from '../config.js';
import { SvhnError, ioError } from '../errors.js';
import { getLogger } from '../log.js';
import { assertModelDir, loadModelDir, readModelMetadata } from '../models/io.js';
import { temperatureOf } from '../models/calibration.js';
import { READER_CLASSIFIER_DIR, type ModelMetadata } from '../models/modelDir.js';
import { removeStaleTemps, tempSibling } from '../util/atomic.js';
import { withLock } from '../util/lock.js';
import { makeDirs } from '../util/mkdirs.js';
import { assertOutside } from '../util/paths.js';
import { EXPORT_FORMATS, EXPORT_FORMAT_NAMES, type ExportFormat, type ExportFormatName, type ExportMetadata } from './formats.js';
import { maxAbsDiff, predictProbabilities, PROOF_IMAGES, PROOF_TOLERANCE, proofImages, scaledImages } from './proof.js';

export interface ExportRunOptions {
  modelDir: string;
  format: ExportFormatName;
  /** Default: the model directory's path plus the format's suffix (models/optimized.onnx). */
  out?: string;
  /** Replace an existing --out. */
  force?: boolean;
  backend: BackendChoice;
  threads?: number;
  /** Proof images (default PROOF_IMAGES). */
  images?: number;
}

export interface ExportSummary {
  format: ExportFormatName;
  out: string;
  bytes: number;
  model: string;
  architecture: string;
  temperature: number;
  args: Record<string, string | number>;
  runtime: string;
  /** The proof: images run, largest |file - predict| over all their probabilities, and the bound. */
  images: number;
  maxAbsDiff: number;
  tolerance: number;
  /** Images whose most probable digit the file and predict agree on. */
  agree: number;
  backend: string;
  seconds: number;
}

/** The model ends with calibration's temperature layer (models/calibration.ts, where loadModelDir adds it). */
function endsWithTemperature(model: tf.LayersModel): boolean {
  return model.layers[model.layers.length - 1]?.getClassName() === 'SvhnTemperatureScaling';
}

async function svhnVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** The output path, refused inside the model directory, or existing without force. */
async function checkOut(opts: ExportRunOptions, suffix: string): Promise<string> {
  const out = opts.out ?? resolve(opts.modelDir) + suffix;
  const flag = opts.out ? '--out' : 'the default output';
  await assertOutside(flag, out, [{ path: opts.modelDir, what: `the model directory ${opts.modelDir}, which holds only the model's own files` }]);
  const existing = await stat(out).catch(() => undefined);
  if (existing?.isDirectory()) throw new SvhnError('BAD_FLAG', `${flag} ${out}: is a directory; expected a file name`);
  if (existing && !opts.force) throw new SvhnError('BAD_FLAG', `${flag} ${out}: already exists`, { suggestion: 'pass --force to replace it, or --out another file' });
  return out;
}

function argmaxAgreement(a: Float32Array, b: Float32Array, classes: number): number {
  let agree = 0;
  for (let r = 0; r < a.length; r += classes) {
    const top = (p: Float32Array) => p.subarray(r, r + classes).reduce((best, v, i, row) => (v > row[best]! ? i : best), 0);
    if (top(a) === top(b)) agree++;
  }
  return agree;
}

export async function runExport(opts: ExportRunOptions): Promise<ExportSummary> {
  if (!EXPORT_FORMAT_NAMES.includes(opts.format)) throw new SvhnError('BAD_FLAG', `--format: expected one of ${EXPORT_FORMAT_NAMES.join(', ')}, got '${opts.format}'`);
  const format = EXPORT_FORMATS[opts.format];
  const count = opts.images ?? PROOF_IMAGES;
  if (!Number.isSafeInteger(count) || count < 1) throw new SvhnError('BAD_FLAG', `--images: expected a positive integer, got ${count}`);
  assertModelDir(opts.modelDir);
  const metadata = await readModelMetadata(opts.modelDir);
  if (metadata.task === 'read') {
    throw new SvhnError('BAD_MODEL', `--model ${opts.modelDir}: is a reader of whole photos; readers are not exportable yet, only digit models`, {
      suggestion: `export the digit model it reads boxes with: --model ${join(opts.modelDir, READER_CLASSIFIER_DIR)}`,
    });
  }
  const temperature = temperatureOf(metadata as ModelMetadata, opts.modelDir);
  const out = await checkOut(opts, format.suffix);

  await makeDirs(dirname(out));
  return withLock(`${out}.lock`, `export to ${out}`, async () => {
    await checkOut(opts, format.suffix); // again, now that no other export can write it
    const startedAt = performance.now();
    const { initBackend } = await import('../backend/index.js');
    const backend = await initBackend(opts.backend, { threads: opts.threads });
    const { model } = await loadModelDir(opts.modelDir);
    const meta: ExportMetadata = {
      name: metadata.name ?? basename(resolve(opts.modelDir)), architecture: String(metadata.architecture), synthetic: Boolean(metadata.synthetic), temperature, svhnVersion: await svhnVersion(),
    };
    const images = proofImages(count);
    // Where loadModelDir already ends the model with the temperature (as predict runs it), the
    // file and the reference both have it from there; else both add it here. Never twice.
    const pending = endsWithTemperature(model) ? 1 : temperature;
    let bytes: Uint8Array;
    let expected: Float32Array;
    try {
      bytes = format.write(model, meta, { addTemperature: pending });
      expected = await predictProbabilities(model, images, pending);
    } finally {
      model.dispose();
    }

    const { diff, agree } = await proveAndKeep({ format, bytes, images, expected, out, what: `${format.name} export of ${opts.modelDir}` });
    return {
      format: opts.format, out, bytes: bytes.byteLength, model: opts.modelDir, architecture: meta.architecture, temperature, args: format.args, runtime: format.runtime,
      images: count, maxAbsDiff: diff, tolerance: PROOF_TOLERANCE, agree, backend: backend.name, seconds: (performance.now() - startedAt) / 1000,
    };
  });
}

/**
 * Writes `bytes` to a temporary sibling of `out`, runs that file (read back from disk) in the
 * format's runtime on `images`, and renames it to `out` only when every probability is within
 * PROOF_TOLERANCE of `expected`; otherwise removes it and fails. A file already at `out` (with
 * --force) is replaced only by a proven one.
 */
async function proveAndKeep(p: { format: ExportFormat; bytes: Uint8Array; images: Uint8Array; expected: Float32Array; out: string; what: string }): Promise<{ diff: number; agree: number }> {
  await removeStaleTemps(p.out);
  const { tmp, release } = tempSibling(p.out);
  try {
    await writeSynced(tmp, p.bytes);
    const count = p.images.length / IMAGE_BYTES;
    const got = await p.format.run(await readFile(tmp), scaledImages(p.images), count);
    const diff = maxAbsDiff(got, p.expected);
    const agree = argmaxAgreement(got, p.expected, NUM_CLASSES);
    getLogger().debug({ diff, agree }, `proof: max |diff| ${diff.toExponential(2)} on ${count} images`);
    if (!(diff <= PROOF_TOLERANCE)) {
      throw new SvhnError('BAD_MODEL', `${p.what} failed its proof: max |probability - predict's| is ${diff.toExponential(3)} on ${count} images, expected <= ${PROOF_TOLERANCE}; nothing written`);
    }
    await rename(tmp, p.out).catch((e) => {
      throw ioError(p.out, 'write', e);
    });
    return { diff, agree };
  } finally {
    await rm(tmp, { force: true }).catch(() => undefined);
    release();
  }
}

async function writeSynced(path: string, data: Uint8Array): Promise<void> {
  const fh = await open(path, 'w').catch((e) => {
    throw ioError(dirname(path), 'write into', e);
  });
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}
