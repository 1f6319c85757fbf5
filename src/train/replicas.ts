/**
 * Data-parallel training on one machine: `--threads N` runs N replicas of the model, the
 * main thread's and N - 1 in worker_threads, each on its own single-threaded backend. Every
 * step splits the batch into N shards, and each replica computes its shard's part of the
 * one-replica step:
 *   - BatchNorm normalises with the whole batch's mean and variance, and back-propagates
 *     through them, by summing per-channel values over the replicas mid-step
 *     (models/syncBatchNorm.ts over allReduce.ts, a barrier on shared memory);
 *   - dropout masks each shard with its rows of the whole batch's mask (every replica draws
 *     the same per-step seed; models/layers.ts);
 *   - the gradients are combined in replica order, weighted by shard size, into the batch
 *     mean; the main thread applies Adam and the workers read the new weights at the start
 *     of the next step.
 * So N threads compute the same training as 1 thread, rounded differently (sums split
 * across replicas): a seed repeats bit for bit for a given thread count, and runs with other
 * counts agree to float32 rounding (test/train/replicas.test.ts), not bit for bit.
 *
 * Weights, gradients and batches travel through SharedArrayBuffers; messages carry sizes.
 *
 * Why replicas and not the threaded wasm build: that build parallelises XNNPACK's
 * convolutions only, while svhn's own JS/SIMD kernels and tfjs's per-op overhead stay on one
 * thread. Measured figures: README's benchmark table.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { SvhnError } from '../errors.js';
import type { BackendName } from '../backend/index.js';
import { setReplicaContext } from '../models/replicaContext.js';
import { SharedAllReduce } from './allReduce.js';
import { imageRange, type ImageSet } from '../data/cache/batches.js';
import { taskOf } from '../models/registry.js';
import { evaluateSums, packInto, shardGradients, sizeOf, statisticVariables, tensorFrom, trainableSize, trainableVariables, unpack, valuesOf } from './step.js';
import { combinesShards } from './adam.js';

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
  /** Mean cross-entropy and accuracy of the model over a set (inference), split over the replicas. */
  evaluate(set: ImageSet): Promise<{ loss: number; acc: number }>;
  /** Each worker's dropout stream states (they follow the main model's). */
  workerRngStates(): Promise<number[][]>;
  /** Sets every worker's dropout streams to `states` (the main model's, after a resume). */
  syncWorkerRngStates(states: number[]): Promise<void>;
  close(): Promise<void>;
}

/** Messages between the main thread and a replica worker (replicaWorker.ts). */
export type ToWorker =
  | { type: 'step'; offset: number; size: number; total: number }
  | { type: 'skip' } // a batch too small for this replica: only advance its dropout streams
  | { type: 'evalSet'; images: SharedArrayBuffer; labels: SharedArrayBuffer; count: number }
  | { type: 'eval'; from: number; to: number }
  | { type: 'getRng' }
  | { type: 'setRng'; states: number[] };
export type FromWorker =
  | { type: 'ready'; params: number }
  | { type: 'done'; loss: number; correct: number }
  | { type: 'rng'; states: number[] }
  | { type: 'evaluated'; lossSum: number; correct: number }
  | { type: 'ok' }
  | { type: 'error'; message: string };

export interface ReplicaWorkerData {
  backend: BackendName;
  modelName: string;
  modelSeed: number;
  replica: number; // 1-based among workers: replica 0 is the main thread
  replicas: number;
  weights: SharedArrayBuffer; // float32, trainable weights in trainableVariables order
  /** float32, the moving statistics (statisticVariables order), written before an evaluation. */
  statistics: SharedArrayBuffer;
  grads: SharedArrayBuffer; // float32, this worker's shard gradient, same layout
  /** BatchNorm's sums across replicas (allReduce.ts) and the most values one sum carries. */
  sums: SharedArrayBuffer;
  maxSums: number;
  xs: SharedArrayBuffer; // float32 images of this worker's shard
  ys: SharedArrayBuffer; // float32 one-hot labels of this worker's shard
}

/** Shard sizes: as even as possible, the first shards one larger (n = 5, 2 replicas: 3 and 2). */
export function shardSizes(n: number, replicas: number): number[] {
  return Array.from({ length: replicas }, (_, k) => Math.floor(n / replicas) + (k < n % replicas ? 1 : 0));
}

/**
 * The batch-mean gradient from shard means, one tensor per variable (the caller owns them):
 * sum over shards, in replica order, of (shard size / batch size) x shard gradient, in
 * float64 per element, stored as float32 (the fixed order makes it bit-reproducible). The
 * first shard's gradients are the main thread's tensors, read where they lie (step.ts
 * valuesOf); `scratch` (params values) holds the result on its way to the backend. One JS
 * pass: a few tfjs ops per variable cost more than the pass (~2 ms a step for the optimized model's 16).
 */
export function combineShardGradients(
  first: { grads: tf.Tensor[]; size: number },
  others: Array<{ grads: Float32Array; size: number }>,
  scratch = new Float32Array(sizeOf(first.grads)),
): tf.Tensor[] {
  const total = others.reduce((s, x) => s + x.size, first.size);
  const params = sizeOf(first.grads);
  for (const { grads } of [...others, { grads: scratch }]) {
    if (grads.length !== params) throw new Error(`combineShardGradients: ${grads.length} values for ${params}`);
  }
  const parts = others.filter((x) => x.size > 0);
  const w0 = first.size / total;
  const weights = parts.map((x) => x.size / total);
  let offset = 0;
  return first.grads.map((g) => {
    const a = valuesOf(g); // a view that the next tensor allocation may invalidate: used up before it
    const n = g.size;
    if (parts.length === 1) {
      // The common case (2 threads) without the inner loop: the same float64 sum, in the same order.
      const b = parts[0]!.grads;
      const w1 = weights[0]!;
      for (let i = 0; i < n; i++) scratch[offset + i] = w0 * a[i]! + w1 * b[offset + i]!;
    } else {
      for (let i = 0; i < n; i++) {
        let acc = w0 * a[i]!; // float64
        for (let k = 0; k < parts.length; k++) acc += weights[k]! * parts[k]!.grads[offset + i]!;
        scratch[offset + i] = acc;
      }
    }
    offset += n;
    return tensorFrom(scratch, offset - n, g.shape);
  });
}

/**
 * The error to report when the main thread's shard failed: a worker's own failure (the
 * cause: its abort is what the main thread saw) if one arrives promptly, else `own`.
 */
async function firstFailure(replies: Array<Promise<FromWorker>>, own: unknown): Promise<unknown> {
  const settled = await Promise.race([
    Promise.allSettled(replies),
    new Promise<undefined>((r) => setTimeout(() => r(undefined), 1000).unref()),
  ]);
  const failed = settled?.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  return failed && /another replica failed/.test((own as Error)?.message ?? '') ? failed.reason : own;
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
  private failureHooks: Array<() => void> = [];

  onFailure(hook: () => void): void {
    this.failureHooks.push(hook);
  }

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
      for (const hook of this.failureHooks) hook();
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

interface SharedState {
  weights: SharedArrayBuffer;
  statistics: SharedArrayBuffer;
  sums: SharedArrayBuffer;
  maxSums: number;
}

async function startWorkers(o: TrainerOptions, params: number, shared: SharedState): Promise<WorkerReplica[]> {
  const maxShard = Math.ceil(o.maxBatch / o.replicas);
  const layout = taskOf(o.modelName).layout;
  const file = workerFile();
  const replicas: WorkerReplica[] = [];
  try {
    for (let k = 1; k < o.replicas; k++) {
      const data: ReplicaWorkerData = {
        backend: o.backend,
        modelName: o.modelName,
        modelSeed: o.modelSeed,
        replica: k,
        replicas: o.replicas,
        ...shared,
        grads: new SharedArrayBuffer(params * 4),
        xs: new SharedArrayBuffer(maxShard * layout.imageBytes * 4),
        ys: new SharedArrayBuffer(maxShard * layout.targetLength * 4),
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

/** The most values one BatchNorm sum carries: 2 per channel of the widest layer (backward pass), at least 1 + channels (forward). */
function maxSumValues(model: tf.LayersModel): number {
  const widest = Math.max(0, ...statisticVariables(model).map((v) => v.size));
  return 2 * widest + 1;
}

export async function createTrainer(o: TrainerOptions): Promise<Trainer> {
  const task = taskOf(o.modelName); // its layout sizes the shards, its loss the step
  const { imageBytes, targetLength } = task.layout;
  const vars = trainableVariables(o.model);
  const params = trainableSize(o.model);
  const parallel = o.replicas > 1;
  const weightsSab = new SharedArrayBuffer(parallel ? params * 4 : 0);
  const weights = new Float32Array(weightsSab);
  const maxSums = maxSumValues(o.model);
  const sumsSab = SharedAllReduce.allocate(o.replicas, maxSums);
  const sums = new SharedAllReduce(sumsSab, o.replicas, 0, maxSums);
  const stats = statisticVariables(o.model);
  const statisticsSab = new SharedArrayBuffer(parallel ? sizeOf(stats) * 4 : 0);
  const workers = parallel ? await startWorkers(o, params, { weights: weightsSab, statistics: statisticsSab, sums: sumsSab, maxSums }) : [];
  workers.forEach((w) => w.onFailure(() => sums.abort())); // wake the main thread if it waits on a dead worker
  const combined = new Float32Array(workers.length ? params : 0);

  const step = async (xs: Float32Array, ys: Float32Array, size: number): Promise<StepResult> => {
    const sizes = shardSizes(size, o.replicas);
    const busy = workers.filter((_, i) => sizes[i + 1]! > 0);
    let offset = sizes[0]!;
    if (busy.length) {
      packInto(vars, weights); // the weights every replica starts this step from
      sums.setParticipants(1 + busy.length);
    }
    const replies = busy.map((w) => {
      const n = sizes[w.index]!;
      w.xs.set(xs.subarray(offset * imageBytes, (offset + n) * imageBytes));
      w.ys.set(ys.subarray(offset * targetLength, (offset + n) * targetLength));
      const reply = w.request({ type: 'step', offset, size: n, total: size });
      offset += n;
      return reply;
    });
    const idle = workers.filter((w) => !busy.includes(w)).map((w) => w.request({ type: 'skip' }));
    replies.push(...idle);
    replies.forEach((p) => p.catch(() => undefined)); // awaited below; no unhandled rejection meanwhile
    // The main thread's shard, in lockstep with the workers' (BatchNorm's sums meet mid-pass).
    let mine: ReturnType<typeof shardGradients>;
    setReplicaContext(busy.length ? { offset: 0, size: sizes[0]!, total: size, allReduce: (v) => sums.allReduce(v) } : undefined);
    try {
      mine = shardGradients(o.model, xs, ys, sizes[0]!, task);
    } catch (e) {
      sums.abort(); // workers waiting on this thread's sums fail instead of hanging
      throw await firstFailure(replies, e);
    } finally {
      setReplicaContext(undefined);
    }
    let lossSum = mine.loss * sizes[0]!;
    let correct = mine.correct;
    try {
      if (!busy.length) {
        await Promise.all(replies); // the idle workers' dropout streams moved on with this one's
        o.optimizer.applyGradients(vars.map((v, i) => ({ name: v.name, tensor: mine.grads[i]! })));
      } else {
        const done = (await Promise.all(replies)).slice(0, busy.length);
        const shards: Array<{ grads: Float32Array; size: number }> = [];
        done.forEach((m, j) => {
          const w = busy[j]!;
          if (m.type !== 'done') throw new Error(`replica ${w.index + 1}: unexpected ${m.type}`);
          shards.push({ grads: w.grads, size: sizes[w.index]! });
          lossSum += m.loss * sizes[w.index]!;
          correct += m.correct;
        });
        if (shards.length === 1 && combinesShards(o.optimizer)) {
          // Two replicas (2 threads): Adam's kernel combines the two shards in its own pass.
          const second = unpack(vars, shards[0]!.grads);
          try {
            o.optimizer.applyShardGradients(
              vars.map((v, i) => ({ name: v.name, first: mine.grads[i]!, second: second[i]! })), sizes[0]! / size, shards[0]!.size / size,
            );
          } finally {
            tf.dispose(second);
          }
        } else {
          const grads = combineShardGradients({ grads: mine.grads, size: sizes[0]! }, shards, combined);
          try {
            o.optimizer.applyGradients(vars.map((v, i) => ({ name: v.name, tensor: grads[i]! })));
          } finally {
            tf.dispose(grads);
          }
        }
      }
    } finally {
      tf.dispose(mine.grads);
    }
    return { loss: lossSum / size, acc: correct / size };
  };

  // Validation: contiguous parts of the set, one per replica, summed in replica order.
  let attached: ImageSet | undefined;
  const evaluate = async (set: ImageSet): Promise<{ loss: number; acc: number }> => {
    const parts = shardSizes(set.count, o.replicas);
    if (workers.length && set.count >= o.replicas) {
      if (attached !== set) {
        // The set goes to shared memory once; later epochs only send ranges.
        const images = new SharedArrayBuffer(set.images.byteLength);
        const labels = new SharedArrayBuffer(set.labels.byteLength);
        new Uint8Array(images).set(set.images);
        new Uint8Array(labels).set(set.labels);
        await Promise.all(workers.map((w) => w.request({ type: 'evalSet', images, labels, count: set.count })));
        attached = set;
      }
      packInto(vars, weights);
      packInto(stats, new Float32Array(statisticsSab));
    } else {
      parts.fill(0);
      parts[0] = set.count;
    }
    let from = parts[0]!;
    const replies = workers.filter((_, i) => parts[i + 1]! > 0).map((w) => {
      const to = from + parts[w.index]!;
      const reply = w.request({ type: 'eval', from, to });
      from = to;
      return reply;
    });
    replies.forEach((p) => p.catch(() => undefined));
    const mine = evaluateSums(o.model, imageRange(set, 0, parts[0]!, task.layout), task);
    let { lossSum, correct } = mine;
    for (const m of await Promise.all(replies)) {
      if (m.type !== 'evaluated') throw new Error(`replica: unexpected ${m.type}`);
      lossSum += m.lossSum;
      correct += m.correct;
    }
    return { loss: lossSum / set.count, acc: correct / set.count };
  };

  return {
    replicas: o.replicas,
    step,
    evaluate,
    async workerRngStates() {
      const replies = await Promise.all(workers.map((w) => w.request({ type: 'getRng' })));
      return replies.map((m) => (m.type === 'rng' ? m.states : []));
    },
    async syncWorkerRngStates(states) {
      await Promise.all(workers.map((w) => w.request({ type: 'setRng', states })));
    },
    async close() {
      await Promise.all(workers.map((w) => w.worker.terminate()));
    },
  };
}
