/**
 * Saving and loading tfjs layers models without tfjs-node's file:// handler (which is absent
 * where tfjs-node does not install): model.json + weights.bin, the standard tfjs layers
 * format, readable by tf.loadLayersModel in a browser or by tfjs-node.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH, NUM_CLASSES } from '../config.js';
import { SvhnError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic.js';
import { isNotRegularFile, readRegularFile } from '../util/files.js';
import { parseJsonFile } from '../util/json.js';
import { temperatureOf, withTemperature } from './calibration.js';
import { foldBatchNorms } from './inference.js';
import { METADATA_JSON, MODEL_JSON, WEIGHTS_BIN, type ModelMetadata } from './modelDir.js';

interface ModelJson {
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  modelTopology: object;
  trainingConfig?: object;
  weightsManifest: Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }>;
}

interface LayerJson {
  class_name: string;
  config: Record<string, unknown>;
}
type ModelTopology = { config?: { layers?: LayerJson[] } } & Record<string, unknown>;

/**
 * Training uses svhn's SeededDropout (a fresh, reproducible mask per step); at inference it
 * is the identity, exactly like Keras' Dropout. model.json names it Dropout (same rate and
 * seed), so the saved model is plain Keras/tfjs layers that stock tf.loadLayersModel reads
 * anywhere, with no svhn classes registered (a functional model's layer keeps its name and
 * inbound nodes). Dropout has no weights: weights.bin is unchanged.
 * Likewise SyncBatchNormalization (whole-batch statistics across training replicas) is
 * BatchNormalization at inference, with the same config and weights: saved under that name.
 */
function portableTopology(topology: ModelTopology): ModelTopology {
  const layers = topology.config?.layers;
  if (!Array.isArray(layers)) return topology;
  return {
    ...topology,
    config: {
      ...topology.config,
      layers: layers.map((l) =>
        l.class_name === 'SeededDropout'
          ? { ...l, class_name: 'Dropout', config: { name: l.config.name, trainable: true, dtype: 'float32', rate: l.config.rate, noise_shape: null, seed: l.config.seed } }
          : l.class_name === 'SyncBatchNormalization'
            ? { ...l, class_name: 'BatchNormalization' }
            : l,
      ),
    },
  };
}

/** Writes model.json and weights.bin into dir (each file atomically). */
export async function saveLayersModel(model: tf.LayersModel, dir: string): Promise<void> {
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weightData = artifacts.weightData
        ? tf.io.CompositeArrayBuffer.join(artifacts.weightData as ArrayBuffer | ArrayBuffer[])
        : new ArrayBuffer(0);
      const json: ModelJson = {
        format: 'layers-model',
        generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
        convertedBy: null,
        modelTopology: portableTopology(artifacts.modelTopology as ModelTopology),
        ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig as object } : {}),
        weightsManifest: [{ paths: [WEIGHTS_BIN], weights: artifacts.weightSpecs ?? [] }],
      };
      await writeFileAtomic(join(dir, WEIGHTS_BIN), new Uint8Array(weightData));
      await writeFileAtomic(join(dir, MODEL_JSON), JSON.stringify(json));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: weightData.byteLength } };
    }),
    { includeOptimizer: false },
  );
}

/** The flag that named a model directory (errors name it as typed) and what to do when it is not a whole model. */
export type ModelDirFlag = '--model' | '--init' | '--classifier' | 'svhn info';
const INCOMPLETE_SUGGESTION: Record<ModelDirFlag, string> = {
  '--model': 'train one with `svhn train --model optimized` or pass --model DIR',
  '--init': 'pass a directory written by `svhn train`, e.g. models/optimized',
  '--classifier': 'pass a digit model directory written by `svhn train`, e.g. models/optimized',
  'svhn info': 'pass a directory written by `svhn train`, e.g. models/optimized',
};

async function readOrFail(path: string, what: string, from: { dir: string; flag: ModelDirFlag }): Promise<Buffer> {
  try {
    return await readRegularFile(path);
  } catch (e) {
    if (isNotRegularFile(e)) throw new SvhnError('BAD_MODEL', `cannot read ${what} ${path}: ${(e as Error).message}`, { cause: e });
    const code = (e as NodeJS.ErrnoException).code;
    throw new SvhnError('BAD_MODEL', `${from.flag} ${from.dir}: model directory is incomplete: cannot read ${what} ${path} (${code ?? String(e)})`, {
      suggestion: INCOMPLETE_SUGGESTION[from.flag],
      cause: e,
    });
  }
}

/** Bytes per element of each weight dtype in weights.bin (others: 4). */
const BYTES_PER: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1 };

/** A weights path of model.json, refused unless it names a file inside the model directory. */
function weightsPathIn(dir: string, p: unknown, jsonPath: string): string {
  const rel = typeof p === 'string' ? relative(resolve(dir), resolve(dir, p)) : '';
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
    throw new SvhnError('BAD_MODEL', `${jsonPath}: weights path ${JSON.stringify(p)} is outside the model directory; expected a file name inside ${dir}`);
  }
  return join(dir, rel);
}

/**
 * A NaN or infinite weight makes every prediction NaN (confidence NaN, accuracy by chance),
 * so a damaged weights file is refused at load, naming the file and the weight.
 */
function assertFiniteWeights(data: ArrayBuffer, specs: tf.io.WeightsManifestEntry[], files: Array<{ path: string; end: number }>): void {
  let offset = 0; // bytes
  for (const w of specs) {
    const n = w.shape.reduce((a, b) => a * b, 1);
    const size = n * (BYTES_PER[w.dtype] ?? 4);
    if (w.dtype === 'float32' && !w.quantization) {
      // Float32Array needs a 4-byte aligned offset; after a uint8 or bool weight it may not be.
      const values = offset % 4 === 0 ? new Float32Array(data, offset, n) : new Float32Array(data.slice(offset, offset + size));
      const i = values.findIndex((v) => !Number.isFinite(v));
      if (i >= 0) {
        const file = files.find((f) => offset + 4 * i < f.end)?.path ?? files[0]?.path;
        throw new SvhnError('BAD_MODEL', `${file}: weight ${w.name} holds ${values[i]} at element ${i} of ${n}; expected finite numbers`, {
          suggestion: 'the model is damaged: train it again or restore its files',
        });
      }
    }
    offset += size;
  }
}

/**
 * Loads model.json + weights.bin from dir; checks the weights' size against the manifest and
 * every float weight finite. predict, evaluate, report and train --init all load through here.
 * `files`, when given, receives the bytes the model was built from: model.json and each
 * weight file, keyed as model.json names them (serve hands the same bytes to the browser).
 * `flag` names dir in errors (default --model).
 */
export async function loadLayersModel(dir: string, opts: { files?: Map<string, Buffer>; flag?: ModelDirFlag } = {}): Promise<tf.LayersModel> {
  const { files } = opts;
  const from = { dir, flag: opts.flag ?? '--model' } as const;
  const jsonPath = join(dir, MODEL_JSON);
  const jsonBytes = await readOrFail(jsonPath, 'model', from);
  files?.set(MODEL_JSON, jsonBytes);
  const json = parseJsonFile(jsonBytes, jsonPath, { code: 'BAD_MODEL' }) as ModelJson | null;
  if (!json?.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new SvhnError('BAD_MODEL', `${jsonPath} is not a tfjs layers model: expected modelTopology and weightsManifest`);
  }
  const specs = json.weightsManifest.flatMap((g) => g.weights);
  const buffers: Buffer[] = [];
  const ranges: Array<{ path: string; end: number }> = []; // byte ranges of the concatenated weights, per file
  let end = 0;
  for (const group of json.weightsManifest) {
    for (const p of group.paths) {
      const path = weightsPathIn(dir, p, jsonPath);
      const bytes = await readOrFail(path, 'weights', from);
      buffers.push(bytes);
      files?.set(p, bytes);
      ranges.push({ path, end: (end += bytes.byteLength) });
    }
  }
  const all = Buffer.concat(buffers);
  const expected = specs.reduce((s, w) => s + w.shape.reduce((a, b) => a * b, 1) * (BYTES_PER[w.dtype] ?? 4), 0);
  if (all.byteLength !== expected) {
    throw new SvhnError('BAD_MODEL', `weights in ${dir} have ${all.byteLength} bytes, expected ${expected} from ${MODEL_JSON}`);
  }
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer;
  assertFiniteWeights(weightData, specs, ranges);
  try {
    // Custom layers must be registered before this call: import '../models/registry.js' does that.
    return await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: specs, weightData }));
  } catch (e) {
    throw new SvhnError('BAD_MODEL', `cannot build the model in ${jsonPath}: ${(e as Error).message}`, { cause: e });
  }
}

/** metadata.json of a model directory; `flag` names dir in errors (default --model). */
export async function readModelMetadata(dir: string, opts: { flag?: ModelDirFlag } = {}): Promise<ModelMetadata> {
  const path = join(dir, METADATA_JSON);
  const metadata = parseJsonFile(await readOrFail(path, 'metadata', { dir, flag: opts.flag ?? '--model' }), path, { code: 'BAD_MODEL' });
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw new SvhnError('BAD_MODEL', `cannot read ${path}: expected a JSON object`);
  }
  return metadata as ModelMetadata;
}

export interface LoadedModel {
  /** The model rearranged for inference (BatchNorms folded: inference.ts). */
  model: tf.LayersModel;
  metadata: ModelMetadata;
  /** Parameters of the model as saved (the folded model in memory holds fewer). */
  params: number;
  /** The temperature the model's output is divided by (models/calibration.ts): metadata's, or 1 with { calibration: false } or none recorded. */
  temperature: number;
  /** What metadata.json records (1 when absent), applied or not. */
  fittedTemperature: number;
  /** With { keepFiles: true }: model.json and its weight files as read, keyed as model.json names them. */
  files?: Map<string, Buffer>;
}

/** Fails with one line when --model (or what `flag` names) does not name a directory. */
export function assertModelDir(dir: string, flag: ModelDirFlag = '--model'): void {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new SvhnError('BAD_MODEL', `${flag} ${dir}: no such model directory`, {
      suggestion: 'train one with `svhn train --model optimized` (it writes models/optimized)',
    });
  }
}

/**
 * Loads a model directory for inference (evaluate, predict, report, serve), checks that it
 * takes 32x32x3 images and outputs 10 class probabilities, folds its BatchNorms into its
 * convolutions (inference.ts) and, unless { calibration: false }, ends it with the
 * temperature metadata.json records (calibration.ts; none recorded: T = 1, the model as
 * saved). The caller owns (and disposes) the model.
 */
export async function loadModelDir(dir: string, opts: { keepFiles?: boolean; calibration?: boolean } = {}): Promise<LoadedModel> {
  assertModelDir(dir);
  // Registers svhn's custom layers (SeededDropout, ...) so saved models that use them rebuild.
  await import('./registry.js');
  const metadata = await readModelMetadata(dir);
  if (metadata.task === 'read') {
    throw new SvhnError('BAD_MODEL', `--model ${dir}: is a reader of whole photos, not a digit model`, { suggestion: `use \`svhn read PHOTO --model ${dir}\`` });
  }
  const fittedTemperature = temperatureOf(metadata, dir);
  const temperature = opts.calibration === false ? 1 : fittedTemperature;
  const files = opts.keepFiles ? new Map<string, Buffer>() : undefined;
  const model = await loadLayersModel(dir, { files });
  const inShape = model.inputs[0]?.shape ?? [];
  const outShape = model.outputs[0]?.shape ?? [];
  const want = [IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_CHANNELS];
  if (inShape.length !== 4 || inShape.slice(1).some((d, i) => d !== want[i])) {
    model.dispose();
    throw new SvhnError('BAD_MODEL', `model in ${dir} takes input [${inShape.slice(1).join(', ')}], expected [${want.join(', ')}] (32x32 RGB digits)`);
  }
  if (outShape.length !== 2 || outShape[1] !== NUM_CLASSES) {
    model.dispose();
    throw new SvhnError('BAD_MODEL', `model in ${dir} outputs [${outShape.slice(1).join(', ')}], expected [${NUM_CLASSES}] class probabilities`);
  }
  const params = model.countParams();
  return { model: withTemperature(foldBatchNorms(model), temperature), metadata, params, temperature, fittedTemperature, ...(files ? { files } : {}) };
}
