/**
 * What a saved model is (`svhn info`): its layers as Keras' model.summary() lists them, the
 * FLOPs an image costs, the input it expects, the data it learned from and its metrics.
 *
 * The layers come from the model as tfjs rebuilds it from model.json (not from model.json's
 * topology text): model.json stores only the input shape, and every other output shape is
 * what each layer's computeOutputShape makes of its input, so rebuilding gives the exact
 * shapes (padding, strides, pooling rounding) the model runs with, and the parameter counts
 * of the weights it actually holds. The model is not folded (loadModelDir folds BatchNorms
 * for inference and so holds fewer parameters): this is the model as trained and saved.
 */
import type * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { SvhnError } from '../errors.js';
import { isNotRegularFile, readRegularFile } from '../util/files.js';
import { parseJsonFile } from '../util/json.js';
import { formatInterval, type Interval } from '../metrics/intervals.js';
import { assertModelDir, loadLayersModel, readModelMetadata } from './io.js';
import { EVALUATION_DIRS, REPORT_JSON, type ModelCalibration, type ModelMetadata, type ParentModel } from './modelDir.js';

/** The input every svhn model takes; README says the same ("Files on disk", "Predicting"). */
export const INPUT_PREPROCESSING = '32x32 RGB, NHWC [batch, 32, 32, 3], float32 pixels scaled to [0, 1] (uint8 / 255)';

/** How FLOPs are counted; printed with the number. */
export const FLOPS_CONVENTION = 'multiply-adds of Conv2D, DepthwiseConv2D and Dense kernels, 2 FLOPs each; biases, BatchNorm, activations and pooling not counted';

/** Layers whose kernel is applied once per output position: MACs = positions x kernel size. */
const KERNEL_LAYERS = new Set(['Conv1D', 'Conv2D', 'Conv3D', 'DepthwiseConv2D', 'Dense']);

export interface LayerSummary {
  name: string;
  /** The layer's class as model.json names it (Conv2D, BatchNormalization, ...). */
  type: string;
  /** Per output, with null for the batch dimension, as Keras prints (None, 30, 30, 32). */
  outputShape: Array<number | null> | Array<Array<number | null>>;
  params: number;
  trainableParams: number;
  /** FLOPs of one image through this layer (FLOPS_CONVENTION). */
  flops: number;
}

export interface ArchitectureSummary {
  layers: LayerSummary[];
  params: { total: number; trainable: number; nonTrainable: number };
  flopsPerImage: number;
}

export interface ModelInfo extends ArchitectureSummary {
  dir: string;
  name: string;
  architecture: string;
  input: { shape: Array<number | null>; preprocessing: string };
  flopsConvention: string;
  data: {
    synthetic: boolean;
    dataManifestSha256: string;
    /** Images per split as training saw them; null in models trained before metadata recorded them. */
    images: { train: number; val: number; extra: number } | null;
    /** The model a fine-tune (train --init) started from. */
    parent: ParentModel | null;
    /** The command that made it (train or demo); null when metadata predates the field. */
    madeBy: string | null;
  };
  metrics: {
    validation: { acc: number; loss: number };
    /** The temperature fitted at the end of training (metadata.json calibration); null in models without it (T = 1). */
    calibration: ModelCalibration | null;
    /** From <dir>/evaluation/report.json when `svhn evaluate` wrote one. */
    test: { accuracy: number; loss: number; synthetic: boolean; file: string; accuracyInterval?: Interval } | null;
  };
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Multiply-adds of one image through a layer (0 for layers FLOPS_CONVENTION does not count). */
function layerMacs(layer: tf.layers.Layer): number {
  if (!KERNEL_LAYERS.has(layer.getClassName())) return 0;
  const kernel = layer.weights.find((w) => /kernel$/.test(w.originalName ?? w.name));
  if (!kernel) return 0;
  const out = layer.outputShape as Array<number | null>;
  // Output positions per image: every dimension but the batch and the channels / units.
  // Conv2D kernel [kh, kw, in, out] and Dense kernel [in, units] are each one MAC per element
  // per position; DepthwiseConv2D's [kh, kw, in, multiplier] likewise.
  const positions = size(out.slice(1, -1).map((d) => d ?? 1));
  return positions * size(kernel.shape as number[]);
}

/** The layer table, parameter totals and FLOPs of a built or loaded model. */
export function summarizeArchitecture(model: tf.LayersModel): ArchitectureSummary {
  const layers = model.layers.map((layer): LayerSummary => {
    const trainableParams = weightCount(layer.trainableWeights);
    return {
      name: layer.name,
      type: layer.getClassName(),
      outputShape: layer.outputShape as LayerSummary['outputShape'],
      params: layer.countParams(),
      trainableParams,
      flops: 2 * layerMacs(layer),
    };
  });
  const trainable = weightCount(model.trainableWeights);
  const nonTrainable = weightCount(model.nonTrainableWeights);
  return {
    layers,
    params: { total: trainable + nonTrainable, trainable, nonTrainable },
    flopsPerImage: layers.reduce((s, l) => s + l.flops, 0),
  };
}

function weightCount(ws: tf.LayerVariable[]): number {
  return ws.reduce((s, w) => s + size(w.shape as number[]), 0);
}

/** report.json of the test-split evaluation, or null when there is none. */
async function readTestEvaluation(dir: string): Promise<ModelInfo['metrics']['test']> {
  const file = join(dir, EVALUATION_DIRS.test, REPORT_JSON);
  let bytes: Buffer;
  try {
    bytes = await readRegularFile(file);
  } catch (e) {
    // Absent: not evaluated yet. Anything else (a folder in its place, no permission) is said.
    if (!isNotRegularFile(e) && (e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new SvhnError('BAD_MODEL', `cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  const r = parseJsonFile(bytes, file, { code: 'BAD_MODEL' }) as { accuracy?: unknown; loss?: unknown; synthetic?: unknown; accuracyInterval?: { low?: unknown; high?: unknown } } | null;
  if (typeof r?.accuracy !== 'number' || typeof r.loss !== 'number') {
    throw new SvhnError('BAD_MODEL', `${file}: expected numbers accuracy and loss, got ${JSON.stringify(r?.accuracy)} and ${JSON.stringify(r?.loss)}`, {
      suggestion: 'run `svhn evaluate --model DIR` again',
    });
  }
  const ci = r.accuracyInterval; // Wilson 95%, in evaluations since issue 24
  const interval = typeof ci?.low === 'number' && typeof ci.high === 'number' ? { accuracyInterval: { low: ci.low, high: ci.high } } : {};
  return { accuracy: r.accuracy, loss: r.loss, synthetic: r.synthetic === true, file, ...interval };
}

/** Fields training writes beside ModelMetadata (train/loop.ts TrainExtras); absent in older models. */
type MetadataExtras = { madeBy?: unknown; data?: { train?: unknown; val?: unknown; extra?: unknown } };

function imagesOf(m: MetadataExtras): ModelInfo['data']['images'] {
  const d = m.data;
  if (typeof d?.train !== 'number' || typeof d.val !== 'number') return null;
  return { train: d.train, val: d.val, extra: typeof d.extra === 'number' ? d.extra : 0 };
}

/**
 * Reads a model directory and says what the model is. Fails with one line naming the
 * directory or file when it is missing, incomplete or damaged (io.ts's messages).
 * Needs a tfjs backend set (the CLI uses cpu: nothing here trains or predicts).
 */
export async function summarizeModelDir(dir: string): Promise<ModelInfo> {
  // Errors name the directory as typed after the command: `svhn info DIR: ...`.
  const flag = 'svhn info';
  assertModelDir(dir, flag);
  // Registers svhn's custom layers so models that use them rebuild.
  await import('./registry.js');
  const metadata: ModelMetadata & MetadataExtras = await readModelMetadata(dir, { flag });
  const model = await loadLayersModel(dir, { flag });
  try {
    const arch = summarizeArchitecture(model);
    return {
      dir,
      name: metadata.name,
      architecture: String(metadata.architecture),
      input: { shape: model.inputs[0]?.shape ?? [], preprocessing: INPUT_PREPROCESSING },
      ...arch,
      flopsConvention: FLOPS_CONVENTION,
      data: {
        synthetic: metadata.synthetic === true,
        dataManifestSha256: metadata.dataManifestSha256,
        images: imagesOf(metadata),
        parent: metadata.parent ?? null,
        madeBy: typeof metadata.madeBy === 'string' ? metadata.madeBy : null,
      },
      metrics: {
        validation: { acc: metadata.validation?.acc, loss: metadata.validation?.loss },
        calibration: metadata.calibration ?? null,
        test: await readTestEvaluation(dir),
      },
    };
  } finally {
    model.dispose();
  }
}

const shapeText = (s: Array<number | null>) => `(${s.map((d) => (d === null ? 'None' : String(d))).join(', ')})`;
const int = (n: number) => n.toLocaleString('en-US');
const fixed = (n: number | undefined, digits: number) => (typeof n === 'number' && Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

/** 10,278,144 -> '10.28 M' for the FLOPs line. */
function scaled(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(2)} k`;
  return `${n} `;
}

/** The text `svhn info` prints: a Keras-style layer table, then input, data and metrics. */
export function formatModelInfo(info: ModelInfo): string {
  const rows = info.layers.map((l) => {
    const shapes = Array.isArray(l.outputShape[0]) ? (l.outputShape as Array<Array<number | null>>) : [l.outputShape as Array<number | null>];
    return [`${l.name} (${l.type})`, shapes.map(shapeText).join(' '), int(l.params), l.flops ? int(l.flops) : ''];
  });
  const header = ['Layer (type)', 'Output shape', 'Param #', 'FLOPs'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('   ').trimEnd();
  const rule = (ch: string) => ch.repeat(widths.reduce((a, b) => a + b + 3, -3));
  const d = info.data;
  const test = info.metrics.test;
  const out = [
    `Model: ${info.name} (${info.architecture}) in ${info.dir}`,
    rule('_'),
    line(header),
    rule('='),
    ...rows.map(line),
    rule('='),
    `Total params: ${int(info.params.total)}`,
    `Trainable params: ${int(info.params.trainable)}`,
    `Non-trainable params: ${int(info.params.nonTrainable)}`,
    `FLOPs per image: ${int(info.flopsPerImage)} (${scaled(info.flopsPerImage)}FLOPs; ${info.flopsConvention})`,
    rule('_'),
    `Input: ${info.input.preprocessing}`,
    `Data: ${d.synthetic ? "SYNTHETIC (svhn's offline sample, not SVHN)" : 'not synthetic'}; dataset manifest sha256 ${d.dataManifestSha256}`,
    `Images: ${d.images ? `train ${int(d.images.train)}, val ${int(d.images.val)}${d.images.extra ? `, extra ${int(d.images.extra)}` : ''}` : 'not recorded'}`,
    `Fine-tuned from: ${d.parent ? `${d.parent.name} (${d.parent.architecture}) at ${d.parent.dir}; its data ${d.parent.dataManifestSha256}${d.parent.synthetic ? ' (SYNTHETIC)' : ''}` : 'none (trained from scratch)'}`,
    `Made by: ${d.madeBy ? `svhn ${d.madeBy}` : 'not recorded'}`,
    `Validation: accuracy ${fixed(info.metrics.validation.acc, 4)}, loss ${fixed(info.metrics.validation.loss, 4)}`,
    `Test: ${test ? `accuracy ${fixed(test.accuracy, 4)}${test.accuracyInterval ? ` (95% CI ${formatInterval(test.accuracyInterval)}, Wilson)` : ''}, loss ${fixed(test.loss, 4)}${test.synthetic ? ' (SYNTHETIC data)' : ''} (${test.file})` : 'not evaluated (run `svhn evaluate --model DIR`)'}`,
    `Calibration: ${info.metrics.calibration ? `temperature ${fixed(info.metrics.calibration.temperature, 3)}, fitted on ${int(info.metrics.calibration.images)} validation images (ECE ${fixed(info.metrics.calibration.eceBefore, 4)} -> ${fixed(info.metrics.calibration.eceAfter, 4)})` : 'none recorded (T = 1, the raw softmax)'}`,
  ];
  return out.join('\n') + '\n';
}
