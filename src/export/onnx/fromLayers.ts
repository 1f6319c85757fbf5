/**
 * A tfjs layers model (as loadModelDir hands it to predict: BatchNorms folded, models/inference.ts)
 * as an ONNX graph. tfjs is channels-last and ONNX's Conv, MaxPool and GlobalAveragePool are
 * channels-first, so the graph transposes its NHWC input to NCHW once, keeps every 4-D
 * activation NCHW, and transposes back to NHWC right before a Flatten: Keras flattens
 * (h, w, c) in that order and the dense kernel's rows follow it.
 *
 *   layer                          ONNX nodes
 *   Conv2D(+bias, relu/linear)     Conv [-> Relu]          kernel [kh,kw,ci,co] -> W [co,ci,kh,kw]
 *   SvhnResidualConv2D             Conv -> Add(shortcut) -> Relu   (a folded residual block end)
 *   BatchNormalization             BatchNormalization (inference: moving mean and variance)
 *   MaxPooling2D ('valid')         MaxPool
 *   Flatten                        Transpose(NCHW -> NHWC) -> Flatten
 *   Dense(relu/softmax/linear)     Gemm [-> Relu | Softmax]
 *   ReLU, Activation(relu)         Relu
 *   Add                            Add
 *   GlobalAveragePooling2D         GlobalAveragePool -> Flatten
 *   Dropout                        nothing (the identity at inference)
 *
 * A calibration temperature T other than 1 ends the graph with Max(floor) -> Log -> Div(T) ->
 * Softmax, the softmax of log(max(p, 1e-12)) / T: given as an option, or as the model's last
 * layer (SvhnTemperatureScaling, where loadModelDir adds it). Any other layer is refused with
 * its name and class.
 */
import { PROB_FLOOR } from '../../metrics/calibration.js';
import type * as tf from '@tensorflow/tfjs';
import { SvhnError } from '../../errors.js';
import type { ConvInternals } from '../../models/fusedConv.js';
import type { BatchNormInternals } from '../../models/syncBatchNorm.js';
import type { OnnxInitializer, OnnxNode } from './onnxProto.js';

export const ONNX_INPUT = 'input';
export const ONNX_OUTPUT = 'probabilities';
/** Probabilities are floored before the log of calibration, as svhn's calibration does (a softmax that underflowed to 0 stays finite). */
/** log's floor under a probability, as calibration's (metrics/calibration.ts PROB_FLOOR). */
export const CALIBRATION_PROB_FLOOR = PROB_FLOOR;

type Symbolic = tf.SymbolicTensor;

/** An activation in the ONNX graph: its name, and whether it is a 4-D (NCHW) one. */
interface Value {
  name: string;
  spatial: boolean;
}

export interface OnnxGraph {
  nodes: OnnxNode[];
  initializers: OnnxInitializer[];
}

const values = (t: tf.Tensor | tf.LayerVariable): Float32Array => {
  const v = 'read' in t ? t.read() : t;
  return Float32Array.from(v.dataSync() as Float32Array);
};

/** [kh, kw, ci, co] (tfjs) -> [co, ci, kh, kw] (ONNX). */
function convKernel(kernel: Float32Array, [kh, kw, ci, co]: number[]): Float32Array {
  const out = new Float32Array(kernel.length);
  for (let y = 0; y < kh!; y++)
    for (let x = 0; x < kw!; x++)
      for (let i = 0; i < ci!; i++)
        for (let o = 0; o < co!; o++) out[((o * ci! + i) * kh! + y) * kw! + x] = kernel[((y * kw! + x) * ci! + i) * co! + o]!;
  return out;
}

/**
 * ONNX pads [top, left, bottom, right] for a Keras 'same' or 'valid' window over an h x w
 * input: 'same' pads so the output is ceil(size / stride), the odd pixel at the bottom / right.
 */
function windowPads(padding: string, [h, w]: number[], kernel: number[], strides: number[]): number[] {
  if (padding === 'valid') return [0, 0, 0, 0];
  const total = [h!, w!].map((size, i) => Math.max((Math.ceil(size / strides[i]!) - 1) * strides[i]! + kernel[i]! - size, 0));
  return [Math.floor(total[0]! / 2), Math.floor(total[1]! / 2), total[0]! - Math.floor(total[0]! / 2), total[1]! - Math.floor(total[1]! / 2)];
}

const pair = (v: number | number[]): number[] => (typeof v === 'number' ? [v, v] : v);

/** The ONNX graph of `model` (one input [N, 32, 32, 3] NHWC, one output [N, 10]); weights are copied. */
export function layersToOnnx(model: tf.LayersModel, opts: { temperature: number }): OnnxGraph {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new SvhnError('BAD_MODEL', `cannot export ${model.name}: expected one input and one output, got ${model.inputs.length} and ${model.outputs.length}`);
  }
  const nodes: OnnxNode[] = [];
  const initializers: OnnxInitializer[] = [];
  const made = new Map<Symbolic, Value>();
  const emit = (op: string, name: string, inputs: string[], attributes?: OnnxNode['attributes']): string => {
    nodes.push({ op, name, inputs, outputs: [name], ...(attributes ? { attributes } : {}) });
    return name;
  };
  const weight = (name: string, dims: number[], data: Float32Array): string => {
    initializers.push({ name, dims, data });
    return name;
  };
  /** softmax(log(max(p, floor)) / T) of probabilities p: the calibrated ones predict answers with. */
  const temperatureNodes = (name: string, p: string, temperature: number): string => {
    const floor = weight(`${name}/floor`, [], Float32Array.of(CALIBRATION_PROB_FLOOR));
    const t = weight(`${name}/temperature`, [], Float32Array.of(temperature));
    const logp = emit('Log', `${name}/log`, [emit('Max', `${name}/max`, [p, floor])]);
    return emit('Softmax', name, [emit('Div', `${name}/div`, [logp, t])], { axis: 1 });
  };
  const valueOf = (t: Symbolic): Value => {
    let v = made.get(t);
    if (!v) made.set(t, (v = emitLayerOf(t)));
    return v;
  };

  made.set(model.inputs[0]!, { name: emit('Transpose', 'input_nchw', [ONNX_INPUT], { perm: [0, 3, 1, 2] }), spatial: true });

  const conv = (layer: tf.layers.Layer, x: Value, inShape: number[], kernelT: tf.Tensor, biasT: tf.Tensor | undefined, strides: number[], padding: string): string => {
    const kshape = kernelT.shape as number[];
    const w = weight(`${layer.name}/W`, [kshape[3]!, kshape[2]!, kshape[0]!, kshape[1]!], convKernel(values(kernelT), kshape));
    const inputs = [x.name, w, ...(biasT ? [weight(`${layer.name}/B`, [kshape[3]!], values(biasT))] : [])];
    return emit('Conv', `${layer.name}/conv`, inputs, {
      kernel_shape: [kshape[0]!, kshape[1]!], strides, pads: windowPads(padding, inShape.slice(1, 3), kshape.slice(0, 2), strides), dilations: [1, 1], group: 1,
    });
  };

  /** The nodes of the layer call that made `t`, after those of its inputs (depth first from the output). */
  const emitLayerOf = (t: Symbolic): Value => {
    const layer = t.sourceLayer as tf.layers.Layer;
    const kind = layer.getClassName();
    // The call of this graph: a layer the folded model shares with the saved one was called in both.
    const inTensors = layer.inboundNodes[t.nodeIndex]!.inputTensors;
    inTensors.forEach(valueOf);
    const inShape = inTensors[0]!.shape as number[];
    const x = valueOf(inTensors[0]!);
    const refuse = (why: string) => new SvhnError('BAD_MODEL', `cannot export layer ${layer.name} (${kind}) to ONNX: ${why}`);
    const spatialOnly = () => {
      if (!x.spatial) throw refuse(`expected a 4-D input, got [${inShape.join(', ')}]`);
    };
    const activation = (name: string, act: string, y: string): string => {
      if (act === 'linear') return y;
      if (act === 'relu') return emit('Relu', `${name}/relu`, [y]);
      if (act === 'softmax') return emit('Softmax', `${name}/softmax`, [y], { axis: 1 });
      throw refuse(`activation '${act}' is not mapped`);
    };
    let out: Value;
    switch (kind) {
      case 'Conv2D': {
        spatialOnly();
        const c = layer as unknown as ConvInternals;
        const dil = pair(c.dilationRate);
        if (c.rank !== 2 || c.dataFormat !== 'channelsLast' || dil.some((d) => d !== 1)) throw refuse('expected a channels-last 2-D convolution without dilation');
        const y = conv(layer, x, inShape, c.kernel.read(), c.useBias && c.bias ? c.bias.read() : undefined, c.strides, c.padding);
        out = { name: activation(layer.name, c.activation?.getClassName() ?? 'linear', y), spatial: true };
        break;
      }
      case 'SvhnResidualConv2D': {
        spatialOnly();
        const cfg = layer.getConfig() as { strides: number[]; padding: string };
        const [kernelT, biasT] = layer.getWeights();
        const y = conv(layer, x, inShape, kernelT!, biasT, cfg.strides, cfg.padding);
        const sum = emit('Add', `${layer.name}/add`, [y, valueOf(inTensors[1]!).name]);
        out = { name: emit('Relu', `${layer.name}/relu`, [sum]), spatial: true };
        break;
      }
      case 'BatchNormalization': {
        const n = layer as unknown as BatchNormInternals;
        if (!(n.axis === -1 || n.axis === inShape.length - 1)) throw refuse(`expected the channel axis (-1), got axis ${n.axis}`);
        const channels = inShape[inShape.length - 1]!;
        const or = (v: tf.LayerVariable | null | undefined, fill: number) => (v ? values(v) : new Float32Array(channels).fill(fill));
        const params = [
          weight(`${layer.name}/scale`, [channels], or(n.gamma, 1)),
          weight(`${layer.name}/B`, [channels], or(n.beta, 0)),
          weight(`${layer.name}/mean`, [channels], values(n.movingMean)),
          weight(`${layer.name}/var`, [channels], values((n as unknown as { movingVariance: tf.LayerVariable }).movingVariance)),
        ];
        out = { name: emit('BatchNormalization', layer.name, [x.name, ...params], { epsilon: { float: n.epsilon } }), spatial: x.spatial };
        break;
      }
      case 'MaxPooling2D': {
        spatialOnly();
        const cfg = layer.getConfig() as { poolSize: number | number[]; strides: number | number[] | null; padding: string; dataFormat: string };
        if (cfg.padding !== 'valid' || cfg.dataFormat !== 'channelsLast') throw refuse(`expected 'valid' padding, channels last; got '${cfg.padding}', ${cfg.dataFormat}`);
        const pool = pair(cfg.poolSize);
        out = { name: emit('MaxPool', layer.name, [x.name], { kernel_shape: pool, strides: pair(cfg.strides ?? cfg.poolSize), pads: [0, 0, 0, 0] }), spatial: true };
        break;
      }
      case 'Flatten': {
        // Back to NHWC first, so the flat vector is Keras' (h, w, c) order.
        const nhwc = x.spatial ? emit('Transpose', `${layer.name}/nhwc`, [x.name], { perm: [0, 2, 3, 1] }) : x.name;
        out = { name: emit('Flatten', layer.name, [nhwc], { axis: 1 }), spatial: false };
        break;
      }
      case 'GlobalAveragePooling2D': {
        spatialOnly();
        const pooled = emit('GlobalAveragePool', `${layer.name}/pool`, [x.name]); // [N, C, 1, 1]
        out = { name: emit('Flatten', layer.name, [pooled], { axis: 1 }), spatial: false };
        break;
      }
      case 'Dense': {
        if (x.spatial || inShape.length !== 2) throw refuse(`expected a 2-D input, got [${inShape.join(', ')}]`);
        const [kernelT, biasT] = layer.getWeights();
        const [inUnits, units] = kernelT!.shape as number[];
        const inputs = [x.name, weight(`${layer.name}/W`, [inUnits!, units!], values(kernelT!)), ...(biasT ? [weight(`${layer.name}/B`, [units!], values(biasT))] : [])];
        const y = emit('Gemm', `${layer.name}/gemm`, inputs);
        const act = (layer as unknown as { activation?: { getClassName(): string } }).activation?.getClassName() ?? 'linear';
        out = { name: activation(layer.name, act, y), spatial: false };
        break;
      }
      case 'ReLU': {
        if ((layer as unknown as { maxValue?: number | null }).maxValue != null) throw refuse('a capped ReLU (maxValue) is not mapped');
        out = { name: emit('Relu', layer.name, [x.name]), spatial: x.spatial };
        break;
      }
      case 'Activation': {
        const act = (layer as unknown as { activation: { getClassName(): string } }).activation.getClassName();
        out = { name: activation(layer.name, act, x.name), spatial: x.spatial };
        break;
      }
      case 'Add': {
        let sum = x.name;
        inTensors.slice(1).forEach((t, i) => (sum = emit('Add', i === inTensors.length - 2 ? layer.name : `${layer.name}/${i}`, [sum, valueOf(t).name])));
        out = { name: sum, spatial: x.spatial };
        break;
      }
      case 'SvhnTemperatureScaling': {
        // The calibration loadModelDir may end the model with (softmax(log p / T)); its T in the config.
        const t = (layer.getConfig() as { temperature?: unknown }).temperature;
        if (typeof t !== 'number' || !(t > 0)) throw refuse(`expected a positive temperature, got ${JSON.stringify(t)}`);
        out = { name: temperatureNodes(layer.name, x.name, t), spatial: false };
        break;
      }
      case 'Dropout':
      case 'SeededDropout':
        out = x; // the identity at inference
        break;
      default:
        throw refuse('this layer is not mapped (models/ architectures use Conv2D, BatchNormalization, MaxPooling2D, Flatten, Dense, Dropout, ReLU, Add, GlobalAveragePooling2D)');
    }
    return out;
  };

  let probs = valueOf(model.outputs[0]!).name;
  if (opts.temperature !== 1) probs = temperatureNodes('calibration', probs, opts.temperature);
  emit('Identity', ONNX_OUTPUT, [probs]);
  return { nodes, initializers };
}
