/**
 * Data-parallel training on one machine: `--threads N` runs N replicas of the model, the
 * main thread's and N - 1 in worker_threads, each on its own single-threaded backend. Every
 * step splits the batch into N shards; each replica computes its shard's gradients
 * (step.ts); the main thread combines them in replica order, weighted by shard size
 * (so the result is the batch-mean gradient, summed in a fixed order: a run repeats bit for
 * bit for a given thread count), applies Adam, and the workers read the new weights at the
 * start of the next step. Weights, gradients and batches travel through SharedArrayBuffers;
 * messages carry only sizes and results.
 *
 * Why replicas and not the threaded wasm build: that build parallelises XNNPACK's
 * convolutions only, while svhn's own JS/SIMD kernels and tfjs's per-op overhead stay on one
 * thread (measured on 2 cores, optimized model: 1 thread ~490 img/s, threaded build ~690,
 * two replicas: see README's benchmark table).
 *
 * Differences from one replica, as in PyTorch's DistributedDataParallel: BatchNorm
 * normalises each shard by its own statistics. Its moving statistics (used at inference)
 * are averaged over the replicas after every step, weighted by shard size, so they follow
 * the whole batch's mean rather than one shard's. Each worker's dropout draws from its own
 * seeded stream, saved in checkpoints.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { IMAGE_BYTES, NUM_CLASSES } from '../config.js';
import { SvhnError } from '../errors.js';
import type { BackendName } from '../backend/index.js';
import { assignFrom, packInto, shardGradients, sizeOf, statisticVariables, trainableSize, trainableVariables } from './step.js';

export interface TrainerOptions {
  model: tf.LayersModel;
  optimizer: tf.Optimizer;
  /** How workers rebuild the same architecture (registry name and build seed). */
  modelName: string;
  modelSeed: number;
  backend: BackendName;
  replicas: number;
  /** The largest batch step() will get. */
  maxBatch: number;
}

export interface StepResult {
  loss: number; // batch mean
  acc: number; // batch mean
}

export interface Trainer {
  readonly replicas: number;
  step(xs: Float32Array, ys: Float32Array, size: number): Promise<StepResult>;
  /** Each worker's dropout stream states (replicas 2..N), for checkpoints. */
  workerRngStates(): Promise<number[][]>;
  restoreWorkerRngStates(states: number[][]): Promise<void>;
  close(): Promise<void>;
}

/** Messages between the main thread and a replica worker (replicaWorker.ts). */
export type ToWorker =
  | { type: 'step'; size: number }
  | { type: 'getRng' }
  | { type: 'setRng'; states: number[] };
export type FromWorker =
  | { type: 'ready'; params: number }
  | { type: 'done'; loss: number; correct: number }
  | { type: 'rng'; states: number[] }
  | { type: 'error'; message: string };

export interface ReplicaWorkerData {
  backend: BackendName;
  modelName: string;
  modelSeed: number;
  replica: number; // 1-based among workers: replica 0 is the main thread
  /** float32: the trainable weights (trainableVariables order), then the moving statistics (statisticVariables order). */
  weights: SharedArrayBuffer;
  /** float32: this worker's shard gradient, then its moving statistics after the step (the same layout). */
  grads: SharedArrayBuffer;
  xs: SharedArrayBuffer; // float32 images of this worker's shard
  ys: SharedArrayBuffer; // float32 one-hot labels of this worker's shard
}

/** Shard sizes: as even as possible, the first shards one larger (n = 5, 2 replicas: 3 and 2). */
export function shardSizes(n: number, replicas: number): number[] {
  return Array.from({ length: replicas }, (_, k) => Math.floor(n / replicas) + (k < n % replicas ? 1 : 0));
}

/**
 * The batch-mean gradient from shard means: out = sum over shards, in order, of
 * (shard size / batch size) x shard gradient, accumulated in float64 per element and stored
 * as float32. The fixed order makes it bit-reproducible.
 */
export function combineShardGradients(shards: Array<{ grads: Float32Array; size: number }>, out: Float32Array): void {
  const total = shards.reduce((s, x) => s + x.size, 0);
  out.fill(0);
  const acc = new Float64Array(out.length);
  for (const { grads, size } of shards) {
    if (size === 0) continue;
    if (grads.length !== out.length) throw new Error(`combineShardGradients: ${grads.length} values for ${out.length}`);
    const w = size / total;
    for (let i = 0; i < acc.length; i++) acc[i] += w * grads[i]!;
  }
  out.set(acc);
}

/** dist/train/replicaWorker.js, also when this module runs from src/ under a TS loader (tests). */
function workerFile(): string {
  const file = fileURLToPath(new URL('./replicaWorker.js', import.meta.url));
  return existsSync(file) ? file : file.replace(`${sep}src${sep}`, `${sep}dist${sep}`);
}

/** One worker replica: a thread, its shared buffers and a queue of one outstanding request. */
class WorkerReplica {
  readonly xs: Float32Array;
  readonly ys: Float32Array;
  readonly grads: Float32Array;
  private pending: { resolve(m: FromWorker): void; reject(e: Error): void } | undefined;
  private failure: Error | undefined;

  constructor(readonly index: number, readonly worker: Worker, data: ReplicaWorkerData) {
    this.xs = new Float32Array(data.xs);
    this.ys = new Float32Array(data.ys);
    this.grads = new Float32Array(data.grads);
    const fail = (e: Error) => {
      this.failure ??= new SvhnError('BACKEND', `training replica ${index + 1} (a worker thread) failed: ${e.message}`, {
        suggestion: 'run with --threads 1',
      });
      this.pending?.reject(this.failure);
      this.pending = undefined;
    };
    worker.on('message', (m: FromWorker) => {
      if (m.type === 'error') return fail(new Error(m.message));
      const p = this.pending;
      this.pending = undefined;
      p?.resolve(m);
    });
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exited with code ${code}`)));
  }

  /** The next message from the worker (after sending `msg`, if given). */
  request(msg?: ToWorker): Promise<FromWorker> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      if (msg) this.worker.postMessage(msg);
    });
  }
}

async function startWorkers(o: TrainerOptions, params: number, weights: SharedArrayBuffer): Promise<WorkerReplica[]> {
  const stateBytes = weights.byteLength;
  const maxShard = Math.ceil(o.maxBatch / o.replicas);
  const file = workerFile();
  const replicas: WorkerReplica[] = [];
  try {
    for (let k = 1; k < o.replicas; k++) {
      const data: ReplicaWorkerData = {
        backend: o.backend,
        modelName: o.modelName,
        modelSeed: o.modelSeed,
        replica: k,
        weights,
        grads: new SharedArrayBuffer(stateBytes),
        xs: new SharedArrayBuffer(maxShard * IMAGE_BYTES * 4),
        ys: new SharedArrayBuffer(maxShard * NUM_CLASSES * 4),
      };
      const r = new WorkerReplica(k, new Worker(file, { workerData: data }), data);
      replicas.push(r);
    }
    // Start them all, then wait: each loads tfjs and its backend (~1 s) in parallel.
    const ready = await Promise.all(replicas.map((r) => r.request()));
    ready.forEach((m, i) => {
      if (m.type !== 'ready' || m.params !== params) {
        throw new SvhnError('BACKEND', `training replica ${i + 2} built a model with ${m.type === 'ready' ? m.params : '?'} weights, expected ${params}`);
      }
    });
    return replicas;
  } catch (e) {
    await Promise.all(replicas.map((r) => r.worker.terminate()));
    throw e;
  }
}

export async function createTrainer(o: TrainerOptions): Promise<Trainer> {
  const vars = trainableVariables(o.model);
  const stats = statisticVariables(o.model);
  const params = trainableSize(o.model);
  const state = params + sizeOf(stats); // the shared layout: weights, then moving statistics
  const weightsSab = new SharedArrayBuffer(o.replicas > 1 ? state * 4 : 0);
  const weights = new Float32Array(weightsSab);
  const workers = o.replicas > 1 ? await startWorkers(o, params, weightsSab) : [];
  const own = new Float32Array(workers.length ? state : 0);
  const combined = new Float32Array(workers.length ? state : 0);

  const step = async (xs: Float32Array, ys: Float32Array, size: number): Promise<StepResult> => {
    const sizes = shardSizes(size, o.replicas);
    const busy = workers.filter((_, i) => sizes[i + 1]! > 0);
    let offset = sizes[0]!;
    if (busy.length) packInto([...vars, ...stats], weights); // the state every replica starts this step from
    const replies = busy.map((w) => {
      const n = sizes[w.index]!;
      w.xs.set(xs.subarray(offset * IMAGE_BYTES, (offset + n) * IMAGE_BYTES));
      w.ys.set(ys.subarray(offset * NUM_CLASSES, (offset + n) * NUM_CLASSES));
      offset += n;
      return w.request({ type: 'step', size: n });
    });
    replies.forEach((p) => p.catch(() => undefined)); // awaited below; no unhandled rejection meanwhile
    // The main thread's shard, while the workers compute theirs.
    const mine = shardGradients(o.model, xs, ys, sizes[0]!);
    let lossSum = mine.loss * sizes[0]!;
    let correct = mine.correct;
    try {
      if (!busy.length) {
        o.optimizer.applyGradients(vars.map((v, i) => ({ name: v.name, tensor: mine.grads[i]! })));
      } else {
        packInto([...mine.grads, ...stats], own);
        const done = await Promise.all(replies);
        const shards: Array<{ grads: Float32Array; size: number }> = [{ grads: own, size: sizes[0]! }];
        done.forEach((m, j) => {
          const w = busy[j]!;
          if (m.type !== 'done') throw new Error(`replica ${w.index + 1}: unexpected ${m.type}`);
          shards.push({ grads: w.grads, size: sizes[w.index]! });
          lossSum += m.loss * sizes[w.index]!;
          correct += m.correct;
        });
        // Gradients and moving statistics alike: the shard-size-weighted mean, in replica order.
        combineShardGradients(shards, combined);
        assignFrom(stats, combined.subarray(params));
        const grads = tf.tidy(() => {
          let at = 0;
          return vars.map((v) => {
            const t = tf.tensor(combined.slice(at, at + v.size), v.shape, 'float32');
            at += v.size;
            return { name: v.name, tensor: t };
          });
        });
        try {
          o.optimizer.applyGradients(grads);
        } finally {
          tf.dispose(grads.map((g) => g.tensor));
        }
      }
    } finally {
      tf.dispose(mine.grads);
    }
    return { loss: lossSum / size, acc: correct / size };
  };

  return {
    replicas: o.replicas,
    step,
    async workerRngStates() {
      const replies = await Promise.all(workers.map((w) => w.request({ type: 'getRng' })));
      return replies.map((m) => (m.type === 'rng' ? m.states : []));
    },
    async restoreWorkerRngStates(states) {
      if (states.length !== workers.length) throw new SvhnError('BAD_INPUT', `checkpoint has dropout states for ${states.length} worker replica(s), this run has ${workers.length}`);
      await Promise.all(workers.map((w, i) => w.request({ type: 'setRng', states: states[i]! })));
    },
    async close() {
      await Promise.all(workers.map((w) => w.worker.terminate()));
    },
  };
}
