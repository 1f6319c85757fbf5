/**
 * Resumable training, like Keras' BackupAndRestore: after every epoch the whole training state
 * is written to a checkpoint directory beside the model's (<out>.checkpoint), so a run killed
 * at any moment resumes from its last complete epoch and ends with the same weight bytes as a
 * run never interrupted.
 *
 *   <out>.checkpoint/state.json          CheckpointState: epoch, config, RNG states, Adam's
 *                                        scalars, history, callback state, and the index and
 *                                        sha256 of the tensors file it names (checked on load:
 *                                        a flipped bit is refused, not resumed)
 *   <out>.checkpoint/tensors-<epoch>.bin float32 arrays back to back: model weights, Adam's m
 *                                        and v, the early-stopping / best-model snapshots
 *
 * Crash safety: the new tensors file is written (atomically) first, then state.json is
 * replaced atomically to point at it, then older tensors files are removed. A kill at any
 * point leaves a state.json whose tensors file exists.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { LrSchedule } from '../config.js';
import { SvhnError, ioError } from '../errors.js';
import { removeStaleTemps, sha256, writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { readRegularFile } from '../util/files.js';
import { parseJsonFile } from '../util/json.js';
import type { BestModelState, EarlyStoppingState } from './callbacks.js';
import type { HistoryRecord, ParentModel } from '../models/modelDir.js';
import type { WeightSnapshot } from './weights.js';

export const CHECKPOINT_FORMAT = 'svhn-checkpoint' as const;
export const CHECKPOINT_VERSION = 1 as const;
const STATE_JSON = 'state.json';
const tensorsFile = (epoch: number) => `tensors-${String(epoch).padStart(4, '0')}.bin`;

/** Everything that must match for a checkpoint to continue a run exactly. */
export interface RunConfig {
  model: string;
  seed: number;
  batchSize: number;
  lr: number;
  limit: number | null;
  valLimit: number | null;
  extra: boolean;
  augment: boolean;
  dataManifestSha256: string;
  /** A fine-tune's parent weights (sha256 of its weights.bin); null, or absent in older checkpoints: from scratch. */
  init?: string | null;
  // The recipe beyond the notebook's (absent in older checkpoints: constant, 0, 0, 0, 1, null).
  schedule?: LrSchedule;
  warmupEpochs?: number;
  weightDecay?: number;
  labelSmoothing?: number;
  augmentStrength?: number;
  /** A fine-tune started from BatchNorm statistics measured on its training images (recalibrate.ts); absent in older checkpoints: false. */
  recalibrateBn?: boolean;
  /** The run's length where a schedule depends on it; null for a constant rate. */
  epochs?: number | null;
}

export interface CheckpointState {
  format: typeof CHECKPOINT_FORMAT;
  version: typeof CHECKPOINT_VERSION;
  epoch: number; // epochs completed
  config: RunConfig;
  backend: string;
  /** Data-parallel replicas (absent in checkpoints from before them: 1). */
  threads?: number;
  /** dropout: the model's layers (worker replicas follow the same streams, replicas.ts). */
  rng: { shuffle: number; augment: number; dropout: number[] };
  /** Adam's step count and its running beta powers (setWeights would recompute those with pow(), not bit-equal). */
  optimizer: { iterations: number; accBeta1: number; accBeta2: number };
  history: HistoryRecord[];
  earlyStopping: EarlyStoppingState;
  bestModel: BestModelState;
  wallTimeSec: number; // summed over every session of this run
  /** The model a fine-tune (--init) started from. */
  parent?: ParentModel;
}

export interface Checkpoint {
  state: CheckpointState;
  model: WeightSnapshot;
  optimizer: WeightSnapshot; // Adam's m then v, in variable order
  earlyStoppingBest: WeightSnapshot | null;
  bestModelBest: WeightSnapshot | null;
}

interface TensorIndexEntry {
  group: 'model' | 'optimizer' | 'earlyStoppingBest' | 'bestModelBest';
  name: string;
  shape: number[];
  offset: number; // in float32 elements
  length: number;
}

interface AdamInternals {
  accBeta1?: tf.Variable;
  accBeta2?: tf.Variable;
}

/** Adam's state: m and v per variable plus the step count and beta powers. */
export async function captureOptimizer(optimizer: tf.Optimizer): Promise<{ weights: WeightSnapshot; scalars: CheckpointState['optimizer'] }> {
  const named = await optimizer.getWeights(); // [iterations (new tensor), ...m, ...v (the live variables)]
  const [iter, ...moments] = named;
  const iterations = iter ? (await iter.tensor.data())[0]! : 0;
  if (iter) iter.tensor.dispose();
  const weights = moments.map((m) => ({ name: m.name, shape: m.tensor.shape.slice(), data: new Float32Array(m.tensor.dataSync()) }));
  const adam = optimizer as unknown as AdamInternals;
  if (!adam.accBeta1 || !adam.accBeta2) throw new Error('checkpoint: expected an Adam optimizer (accBeta1/accBeta2)');
  return { weights, scalars: { iterations, accBeta1: adam.accBeta1.dataSync()[0]!, accBeta2: adam.accBeta2.dataSync()[0]! } };
}

export async function restoreOptimizer(optimizer: tf.Optimizer, weights: WeightSnapshot, scalars: CheckpointState['optimizer']): Promise<void> {
  const named = [
    { name: 'iter', tensor: tf.scalar(scalars.iterations, 'int32') },
    ...weights.map((w) => ({ name: w.name, tensor: tf.tensor(w.data, w.shape, 'float32') })),
  ];
  await optimizer.setWeights(named); // makes its own variables from these
  tf.dispose(named.map((n) => n.tensor));
  const adam = optimizer as unknown as AdamInternals;
  // setWeights recomputes the beta powers as pow(beta, t + 1); training multiplied them step by
  // step. The two differ in the last bits, so put back the exact values.
  tf.tidy(() => {
    adam.accBeta1!.assign(tf.scalar(scalars.accBeta1));
    adam.accBeta2!.assign(tf.scalar(scalars.accBeta2));
  });
}

/** JSON has no Infinity: store non-finite numbers as null. */
function finiteOrNull(n: number): number | null {
  return Number.isFinite(n) ? n : null;
}

/** Saves a checkpoint into dir, atomically (a reader sees the old one or the new one, whole). */
export async function saveCheckpoint(dir: string, ckpt: Checkpoint): Promise<void> {
  const groups: Array<[TensorIndexEntry['group'], WeightSnapshot | null]> = [
    ['model', ckpt.model],
    ['optimizer', ckpt.optimizer],
    ['earlyStoppingBest', ckpt.earlyStoppingBest],
    ['bestModelBest', ckpt.bestModelBest],
  ];
  const index: TensorIndexEntry[] = [];
  let total = 0;
  for (const [group, snap] of groups) {
    for (const w of snap ?? []) {
      index.push({ group, name: w.name, shape: w.shape, offset: total, length: w.data.length });
      total += w.data.length;
    }
  }
  const bin = new Float32Array(total);
  let k = 0;
  for (const [, snap] of groups) for (const w of snap ?? []) bin.set(w.data, index[k++]!.offset);
  const s = ckpt.state;
  const file = tensorsFile(s.epoch);
  const bytes = new Uint8Array(bin.buffer, bin.byteOffset, bin.byteLength);
  const json = {
    ...s,
    earlyStopping: { ...s.earlyStopping, bestLoss: finiteOrNull(s.earlyStopping.bestLoss) },
    bestModel: { ...s.bestModel, bestAcc: finiteOrNull(s.bestModel.bestAcc) },
    tensorsFile: file,
    tensorsSha256: sha256(bytes),
    tensors: index,
  };
  await writeFileAtomic(join(dir, file), bytes);
  await writeJsonAtomic(join(dir, STATE_JSON), json); // the commit point
  for (const f of await readdir(dir)) {
    if (/^tensors-\d+\.bin$/.test(f) && f !== file) await rm(join(dir, f), { force: true });
    // A killed run's half-written tensors file: its epoch's name is never written again, so
    // removeStaleTemps (called per final name) would not reach it. Its pid decides, as there.
    const stale = /^\.tmp-(tensors-\d+\.bin)-\d+-[0-9a-z]+(-gone)?$/.exec(f);
    if (stale) await removeStaleTemps(join(dir, stale[1]!));
  }
}

/** Whether dir holds a checkpoint (its state file, the commit point, is there). Synchronous: interrupt notes ask it. */
export function hasCheckpoint(dir: string): boolean {
  return existsSync(join(dir, STATE_JSON));
}

/** Loads the checkpoint in dir, or undefined when there is none. */
export async function loadCheckpoint(dir: string): Promise<Checkpoint | undefined> {
  const statePath = join(dir, STATE_JSON);
  let text: string;
  try {
    text = (await readRegularFile(statePath)).toString('utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioError(statePath, 'read', e);
  }
  const suggestion = `delete ${dir} and train without --resume`;
  const bad = (why: string) => new SvhnError('BAD_INPUT', `${statePath}: ${why}`, { suggestion });
  const raw = parseJsonFile(text, statePath, { code: 'BAD_INPUT', suggestion }) as
    | (CheckpointState & { tensorsFile: string; tensorsSha256?: string; tensors: TensorIndexEntry[] })
    | null;
  if (raw?.format !== CHECKPOINT_FORMAT || raw.version !== CHECKPOINT_VERSION || !Array.isArray(raw.tensors) || !/^tensors-\d+\.bin$/.test(raw.tensorsFile)) {
    throw bad(`expected a ${CHECKPOINT_FORMAT} v${CHECKPOINT_VERSION} state file`);
  }
  const binPath = join(dir, raw.tensorsFile);
  let buf: Buffer;
  try {
    buf = await readRegularFile(binPath);
  } catch (e) {
    throw ioError(binPath, 'read', e);
  }
  const expected = raw.tensors.reduce((s, t) => s + t.length, 0) * 4;
  if (buf.byteLength !== expected) throw bad(`${raw.tensorsFile} has ${buf.byteLength} bytes, expected ${expected}`);
  // Checkpoints from before the hash was recorded have none: their size check above is all there is.
  const got = raw.tensorsSha256 !== undefined ? sha256(buf) : undefined;
  if (got !== raw.tensorsSha256) {
    throw new SvhnError('BAD_INPUT', `${binPath}: sha256 differs from the one ${STATE_JSON} records (expected ${String(raw.tensorsSha256).slice(0, 12)}..., got ${got!.slice(0, 12)}...): the checkpoint is damaged`, { suggestion });
  }
  // Copy into an aligned buffer: a Buffer's byteOffset need not be a multiple of 4.
  const all = new Float32Array(new Uint8Array(buf).buffer);
  const groups: Record<TensorIndexEntry['group'], WeightSnapshot> = { model: [], optimizer: [], earlyStoppingBest: [], bestModelBest: [] };
  for (const t of raw.tensors) groups[t.group].push({ name: t.name, shape: t.shape, data: all.subarray(t.offset, t.offset + t.length) });
  const { tensors: _index, tensorsFile: _file, tensorsSha256: _hash, ...rest } = raw;
  const state: CheckpointState = {
    ...rest,
    earlyStopping: { ...rest.earlyStopping, bestLoss: rest.earlyStopping.bestLoss ?? Infinity },
    bestModel: { ...rest.bestModel, bestAcc: rest.bestModel.bestAcc ?? -Infinity },
  };
  return {
    state,
    model: groups.model,
    optimizer: groups.optimizer,
    earlyStoppingBest: groups.earlyStoppingBest.length ? groups.earlyStoppingBest : null,
    bestModelBest: groups.bestModelBest.length ? groups.bestModelBest : null,
  };
}

export async function removeCheckpoint(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
