/**
 * The export formats, one row each (STYLE 19, after Ultralytics' export_formats()): what a
 * format's file is called, the arguments it is written with, the metadata it carries, how
 * it is written from the model predict runs, and the independent runtime that runs it for
 * the proof (export/proof.ts). The parity test (test/export/formats.test.ts) loops over this
 * table and every digit architecture; a new format is one row here and passes the same test.
 */
import type * as tf from '@tensorflow/tfjs';
import { IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH, NUM_CLASSES } from '../config.js';
import { layersToOnnx, ONNX_INPUT, ONNX_OUTPUT } from './onnx/fromLayers.js';
import { encodeOnnxModel, ONNX_IR_VERSION, ONNX_OPSET } from './onnx/onnxProto.js';

/** The proof (export/proof.ts): largest |difference| allowed between a file's probability and predict's. */
export const PROOF_TOLERANCE = 1e-5;
/** Images the proof runs. */
export const PROOF_IMAGES = 64;
/** Seed of the proof's synthetic crops (the number). */
export const PROOF_SEED = 24;

/** What every exported file says about itself (ONNX: metadata_props, all strings). */
export interface ExportMetadata {
  name: string;
  architecture: string;
  synthetic: boolean;
  /** The model's calibration temperature (metadata.json calibration.temperature; 1: none), which the file's probabilities include. */
  temperature: number;
  svhnVersion: string;
}

/** How the input must be prepared: what predict feeds the model. */
export const INPUT_DESCRIPTION =
  `${IMAGE_HEIGHT}x${IMAGE_WIDTH} RGB image scaled to [0, 1] (pixel / 255), float32, NHWC [N, ${IMAGE_HEIGHT}, ${IMAGE_WIDTH}, ${IMAGE_CHANNELS}]`;
export const OUTPUT_DESCRIPTION = `probabilities of the digits 0..9, [N, ${NUM_CLASSES}]`;

/** The metadata keys each file carries, as written (the test reads them back). */
export function metadataProps(meta: ExportMetadata): Record<string, string> {
  return {
    input: INPUT_DESCRIPTION,
    output: OUTPUT_DESCRIPTION,
    name: meta.name,
    architecture: meta.architecture,
    synthetic: String(meta.synthetic),
    temperature: String(meta.temperature),
    svhn_version: meta.svhnVersion,
  };
}

export interface ExportFormat {
  /** --format NAME */
  name: string;
  /** The default file is the model directory's path plus this. */
  suffix: string;
  description: string;
  /** Fixed arguments the file is written with (shown by --help and in the summary). */
  args: Record<string, string | number>;
  /** The runtime the proof loads the file in: independent of tfjs. */
  runtime: string;
  /**
   * The file's bytes, from the model as loadModelDir returns it (BatchNorms folded), with
   * `addTemperature` applied after its output (1: nothing added; the model may end with it already).
   */
  write(model: tf.LayersModel, meta: ExportMetadata, opts: { addTemperature: number }): Uint8Array;
  /** Runs the file's bytes on `count` NHWC images in [0, 1]; returns [count, 10] probabilities. */
  run(file: Uint8Array, images: Float32Array, count: number): Promise<Float32Array>;
}

export const EXPORT_FORMATS = {
  onnx: {
    name: 'onnx',
    suffix: '.onnx',
    description: `ONNX, opset ${ONNX_OPSET}: input '${ONNX_INPUT}' NHWC float32 in [0, 1], output '${ONNX_OUTPUT}' [N, 10]`,
    args: { opset: ONNX_OPSET, irVersion: ONNX_IR_VERSION, input: ONNX_INPUT, output: ONNX_OUTPUT, batch: 'dynamic (N)' },
    runtime: 'onnxruntime-web (wasm)',
    write(model, meta, opts) {
      const graph = layersToOnnx(model, { temperature: opts.addTemperature });
      return encodeOnnxModel({
        graphName: meta.architecture,
        ...graph,
        inputs: [{ name: ONNX_INPUT, dims: ['N', IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_CHANNELS], doc: INPUT_DESCRIPTION }],
        outputs: [{ name: ONNX_OUTPUT, dims: ['N', NUM_CLASSES], doc: OUTPUT_DESCRIPTION }],
        producerName: 'svhn',
        producerVersion: meta.svhnVersion,
        doc: `svhn ${meta.architecture} digit classifier '${meta.name}'${meta.synthetic ? ' (trained on SYNTHETIC data)' : ''}`,
        metadata: metadataProps(meta),
      });
    },
    async run(file, images, count) {
      const { runOnnx } = await import('./onnx/runtime.js');
      return runOnnx(file, images, count);
    },
  },
} satisfies Record<string, ExportFormat>;

export type ExportFormatName = keyof typeof EXPORT_FORMATS;
export const EXPORT_FORMAT_NAMES = Object.keys(EXPORT_FORMATS) as ExportFormatName[];
