/**
 * A data-parallel training replica (see replicas.ts): a worker thread with its own tfjs and
 * single-threaded backend and its own copy of the model. Per step it reads the current
 * weights from shared memory, computes its shard's gradients and writes them back.
 */
import * as tf from '@tensorflow/tfjs';
import { parentPort, workerData } from 'node:worker_threads';
import { initWorkerBackend } from '../backend/index.js';
import { seededDropoutLayers } from '../models/layers.js';
import { buildModel, taskOf } from '../models/registry.js';
import type { FromWorker, ReplicaWorkerData, ToWorker } from './replicas.js';
import { setReplicaContext } from '../models/replicaContext.js';
import { SharedAllReduce } from './allReduce.js';
import { imageRange, type ImageSet } from '../data/cache/batches.js';
import { assignFrom, evaluateSums, packInto, shardGradients, statisticVariables, trainableSize, trainableVariables } from './step.js';

async function main(port: NonNullable<typeof parentPort>, data: ReplicaWorkerData): Promise<void> {
  const post = (m: FromWorker) => port.postMessage(m);
  const postRng = () => post({ type: 'rng', states: dropout.map((d) => d.rngState) });
  await initWorkerBackend(data.backend);
  const model = buildModel(data.modelName, { seed: data.modelSeed });
  const task = taskOf(data.modelName);
  // Built from the main model's seed: the same dropout streams, which every replica draws alike.
  const dropout = seededDropoutLayers(model);
  const vars = trainableVariables(model);
  const sums = new SharedAllReduce(data.sums, data.replicas, data.replica, data.maxSums);
  const stats = statisticVariables(model);
  const statistics = new Float32Array(data.statistics);
  let evalSet: ImageSet | undefined;
  const weights = new Float32Array(data.weights);
  const grads = new Float32Array(data.grads);
  const xs = new Float32Array(data.xs);
  const ys = new Float32Array(data.ys);

  port.on('message', (m: ToWorker) => {
    try {
      if (m.type === 'step') {
        assignFrom(vars, weights);
        setReplicaContext({ offset: m.offset, size: m.size, total: m.total, allReduce: (v) => sums.allReduce(v) });
        let r: ReturnType<typeof shardGradients>;
        try {
          r = shardGradients(model, xs, ys, m.size, task);
        } catch (e) {
          sums.abort(); // the main thread may be waiting on this replica's sums
          throw e;
        } finally {
          setReplicaContext(undefined);
        }
        try {
          packInto(r.grads, grads);
        } finally {
          tf.dispose(r.grads);
        }
        post({ type: 'done', loss: r.loss, correct: r.correct });
      } else if (m.type === 'evalSet') {
        evalSet = { count: m.count, images: new Uint8Array(m.images), labels: new Uint8Array(m.labels) };
        post({ type: 'ok' });
      } else if (m.type === 'eval') {
        if (!evalSet) throw new Error('eval before evalSet');
        assignFrom(vars, weights);
        assignFrom(stats, statistics);
        post({ type: 'evaluated', ...evaluateSums(model, imageRange(evalSet, m.from, m.to, task.layout), task) });
      } else {
        if (m.type === 'skip') for (const d of dropout) d.skipStep();
        if (m.type === 'setRng') dropout.forEach((d, i) => (d.rngState = m.states[i] ?? d.rngState));
        postRng(); // skip, getRng and setRng all answer with the streams' states
      }
    } catch (e) {
      post({ type: 'error', message: (e as Error).message });
    }
  });
  post({ type: 'ready', params: trainableSize(model) });
}

if (parentPort) {
  const port = parentPort;
  main(port, workerData as ReplicaWorkerData).catch((e: Error) => port.postMessage({ type: 'error', message: e.message } satisfies FromWorker));
}
