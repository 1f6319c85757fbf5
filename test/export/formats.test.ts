/**
 * The export parity suite (STYLE 19): for every format in the table and every digit
 * architecture in the registry, the file runExport writes, run in the format's own runtime,
 * gives the probabilities predict gives on the proof images within 1e-5, and Debian's
 * python3-onnx checker accepts it (skipped where it is not installed). The models carry
 * BatchNorm statistics far from their initial 0 and 1, so a mistake in them shows.
 * Also: the calibration temperature inside the file, and a proof that fails removes the file.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { EXPORT_FORMATS, EXPORT_FORMAT_NAMES } from '../../src/export/formats.js';
import { calibrate, maxAbsDiff, predictProbabilities, PROOF_TOLERANCE, proofImages, scaledImages } from '../../src/export/proof.js';
import { runExport } from '../../src/export/run.js';
import { initBackend } from '../../src/backend/index.js';
import { loadLayersModel, loadModelDir, saveLayersModel } from '../../src/models/io.js';
import { buildModel, listModels } from '../../src/models/registry.js';
import { rejection } from '../helpers.js';
import { randomValues } from '../backend/helpers.js';
import { checkOnnx, HAS_ONNX_CHECKER } from './onnxChecker.js';

let tmp: string;

/**
 * The last Dense layer's kernel redrawn so the logits on the proof images have a standard
 * deviation near 2: probabilities spread over several digits, not one 1 and nine 0s (a
 * saturated softmax would hide any difference). The resnet's activations grow through its
 * blocks with random BatchNorm statistics; the notebook models' shrink.
 */
function spreadLogits(model: tf.LayersModel): void {
  const head = model.layers[model.layers.length - 1]!;
  const features = tf.tidy(() => {
    const body = tf.model({ inputs: model.inputs, outputs: head.input as tf.SymbolicTensor });
    const f = body.predict(tf.tensor4d(scaledImages(proofImages(64)), [64, 32, 32, 3])) as tf.Tensor;
    return tf.moments(f).variance.dataSync()[0]! + tf.moments(f).mean.square().dataSync()[0]!; // E[f^2]
  });
  const [kernel, bias] = head.getWeights();
  const [inUnits, units] = kernel!.shape as [number, number];
  const scale = 2 / Math.sqrt(inUnits * features);
  head.setWeights([tf.tensor2d(randomValues(9, inUnits * units, scale), [inUnits, units]), tf.zerosLike(bias!)]);
}

/** A model directory of `architecture` with BatchNorm statistics far from 0 and 1, informative probabilities, and a metadata.json. */
async function saveModelDir(dir: string, architecture: string, extra: object = {}): Promise<void> {
  await mkdir(dir, { recursive: true });
  const model = buildModel(architecture, { seed: 5 });
  let seed = 1;
  for (const layer of model.layers) {
    if (!layer.getClassName().endsWith('BatchNormalization')) continue;
    // gamma, beta, moving mean, moving variance (> 0)
    layer.setWeights(layer.getWeights().map((w, i) => tf.tensor(randomValues(seed++, w.size, 0.5).map((v) => (i === 3 ? 0.3 + v * v : i === 0 ? 1 + v : v)), w.shape)));
  }
  spreadLogits(model);
  await saveLayersModel(model, dir);
  model.dispose();
  await writeFile(join(dir, 'metadata.json'), JSON.stringify({ name: architecture, architecture, task: 'classify', synthetic: true, ...extra }));
}

beforeAll(async () => {
  await initBackend('wasm', { threads: 1 }); // runExport asks for the same: the models are built on it
  tmp = await mkdtemp(join(tmpdir(), 'svhn-export-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const ARCHITECTURES = listModels('classify');

describe.each(EXPORT_FORMAT_NAMES)('export --format %s', (formatName) => {
  const format = EXPORT_FORMATS[formatName];

  it.each(ARCHITECTURES)(`%s: the file in its runtime gives predict's probabilities within ${PROOF_TOLERANCE}`, async (architecture) => {
    const dir = join(tmp, formatName, architecture, 'model');
    await saveModelDir(dir, architecture);
    const summary = await runExport({ modelDir: dir, format: formatName, backend: 'wasm', threads: 1 });
    expect(summary.out).toBe(dir + format.suffix);
    expect(summary.maxAbsDiff).toBeLessThanOrEqual(PROOF_TOLERANCE);
    expect(summary.images).toBe(64);
    console.log(`${formatName} ${architecture}: max |diff| ${summary.maxAbsDiff.toExponential(2)} on ${summary.images} images (${summary.bytes} bytes)`);

    // Independently of runExport: the file from disk against predict's path on the same images.
    const images = proofImages(64);
    const got = await format.run(await readFile(summary.out), scaledImages(images), 64);
    const { model } = await loadModelDir(dir);
    const expected = await predictProbabilities(model, images, 1);
    model.dispose();
    expect(maxAbsDiff(got, expected)).toBeLessThanOrEqual(PROOF_TOLERANCE);
    // The batch dimension is free: one image alone gives its row of the batch.
    const one = await format.run(await readFile(summary.out), scaledImages(images.subarray(5 * 3072, 6 * 3072)), 1);
    expect(maxAbsDiff(one, expected.subarray(50, 60))).toBeLessThanOrEqual(PROOF_TOLERANCE);
    // The probabilities compared are informative: the typical top one well between 1/10 and 1.
    const tops = Array.from({ length: 64 }, (_, r) => Math.max(...expected.subarray(r * 10, r * 10 + 10))).sort((a, b) => a - b);
    expect(tops[32]).toBeGreaterThan(0.2);
    expect(tops[32]).toBeLessThan(0.99);
    expect(await readdir(join(tmp, formatName, architecture))).toEqual(['model', 'model' + format.suffix]); // no temporary or lock left
  });

  it.skipIf(!HAS_ONNX_CHECKER || formatName !== 'onnx').each(ARCHITECTURES)('%s: onnx.checker (python3-onnx) accepts the file; its input, output and metadata say what it is', (architecture) => {
    const path = join(tmp, formatName, architecture, 'model' + format.suffix);
    expect(existsSync(path)).toBe(true); // written by the test above
    const checked = checkOnnx(path);
    expect(checked.opset).toBe(13);
    expect(checked.input).toEqual({ name: 'input', dims: ['N', 32, 32, 3] });
    expect(checked.output).toEqual({ name: 'probabilities', dims: ['N', 10] });
    expect(checked.metadata).toMatchObject({ name: architecture, architecture, synthetic: 'true', temperature: '1', svhn_version: '0.1.0' });
    expect(checked.metadata.input).toMatch(/32x32 RGB .*\[0, 1\].*NHWC/);
    expect(checked.ops[0]).toBe('Transpose'); // NHWC in, NCHW inside
  });
});

describe('export: the calibration temperature', () => {
  it('metadata.json calibration.temperature is applied inside the file: softmax(log(max(p, 1e-12)) / T) equals calibrated predict', async () => {
    const dir = join(tmp, 'calibrated', 'optimized');
    await saveModelDir(dir, 'optimized', { calibration: { temperature: 2.5 } });
    const summary = await runExport({ modelDir: dir, format: 'onnx', backend: 'wasm', threads: 1 });
    expect(summary.temperature).toBe(2.5);
    expect(summary.maxAbsDiff).toBeLessThanOrEqual(PROOF_TOLERANCE);
    const images = proofImages(64);
    const got = await EXPORT_FORMATS.onnx.run(await readFile(summary.out), scaledImages(images), 64);
    // The model as saved, without the temperature (whether or not loadModelDir adds it).
    const model = await loadLayersModel(dir);
    const raw = await predictProbabilities(model, images, 1);
    model.dispose();
    expect(maxAbsDiff(got, calibrate(raw, 2.5))).toBeLessThanOrEqual(PROOF_TOLERANCE);
    expect(maxAbsDiff(got, raw)).toBeGreaterThan(1e-3); // the temperature did change them
    if (HAS_ONNX_CHECKER) {
      const checked = checkOnnx(summary.out);
      expect(checked.metadata.temperature).toBe('2.5');
      expect(checked.ops.slice(-5)).toEqual(['Max', 'Log', 'Div', 'Softmax', 'Identity']);
    }
  });

  it("a model that already ends with calibration's temperature layer (as loadModelDir may return it) is exported with it, once", async () => {
    // A stand-in for models/calibration.ts's TemperatureScaling: the same class name and config, the same map.
    class TemperatureScaling extends tf.layers.Layer {
      static className = 'SvhnTemperatureScaling';
      constructor(readonly temperature: number) {
        super({ name: 'temperature_scaling' });
      }
      override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
        return tf.tidy(() => tf.softmax(tf.div(tf.log(tf.maximum(Array.isArray(inputs) ? inputs[0]! : inputs, 1e-12)), this.temperature)));
      }
      override getConfig(): tf.serialization.ConfigDict {
        return { ...super.getConfig(), temperature: this.temperature };
      }
    }
    const dir = join(tmp, 'layerT', 'baseline');
    await saveModelDir(dir, 'baseline');
    const { model: plain } = await loadModelDir(dir);
    const model = tf.model({ inputs: plain.inputs, outputs: new TemperatureScaling(0.5).apply(plain.outputs[0]!) as tf.SymbolicTensor });
    const meta = { name: 'baseline', architecture: 'baseline', synthetic: true, temperature: 0.5, svhnVersion: '0.1.0' };
    const file = EXPORT_FORMATS.onnx.write(model, meta, { addTemperature: 1 });
    const images = proofImages(64);
    const got = await EXPORT_FORMATS.onnx.run(file, scaledImages(images), 64);
    const expected = await predictProbabilities(model, images, 1);
    const raw = await predictProbabilities(plain, images, 1);
    model.dispose();
    expect(maxAbsDiff(got, expected)).toBeLessThanOrEqual(PROOF_TOLERANCE);
    expect(maxAbsDiff(expected, calibrate(raw, 0.5))).toBeLessThanOrEqual(PROOF_TOLERANCE);
    expect(maxAbsDiff(got, raw)).toBeGreaterThan(1e-3);
  });

  it('a temperature that is not a positive number is refused with the file named', async () => {
    const dir = join(tmp, 'badT', 'm');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'metadata.json'), JSON.stringify({ name: 'm', architecture: 'baseline', calibration: { temperature: 0 } }));
    const e = await rejection(runExport({ modelDir: dir, format: 'onnx', backend: 'wasm', threads: 1 }));
    expect(e.message).toMatch(/metadata\.json calibration\.temperature is 0; expected a number > 0/);
  });
});

describe('export: the proof', () => {
  it('a file whose probabilities are off by more than the tolerance is removed and the export fails', async () => {
    const dir = join(tmp, 'off', 'baseline');
    await saveModelDir(dir, 'baseline');
    const run = EXPORT_FORMATS.onnx.run;
    const spy = vi.spyOn(EXPORT_FORMATS.onnx, 'run').mockImplementation(async (file, images, count) => {
      const p = await run(file, images, count);
      p[7] = p[7]! + 2e-5;
      return p;
    });
    try {
      const e = await rejection(runExport({ modelDir: dir, format: 'onnx', backend: 'wasm', threads: 1 }));
      expect(e.message).toMatch(/failed its proof: max \|probability - predict's\| is 2\.\d+e-5 on 64 images, expected <= 0\.00001; nothing written/);
    } finally {
      spy.mockRestore();
    }
    expect(await readdir(join(tmp, 'off'))).toEqual(['baseline']); // no file, no temporary, no lock
  });
});
