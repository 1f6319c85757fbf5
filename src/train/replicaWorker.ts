/**
 * A data-parallel training replica (see replicas.ts): a worker thread with its own tfjs and
 * single-threaded backend and its own copy of the model. Per step it reads the current
 * weights from shared memory, computes its shard's gradients and writes them back.
 */
import * as tf from '@tensorflow/tfjs';
import { parentPort, workerData } from 'node:worker_threads';
import { initWorkerBackend } from '../backend/index.js';
import { seededDropoutLayers } from '../models/layers.js';
import { buildModel } from '../models/registry.js';
import type { FromWorker, ReplicaWorkerData, ToWorker } from './replicas.js';
import { assignFrom, packInto, shardGradients, statisticVariables, trainableSize, trainableVariables } from './step.js';

/** A dropout stream per (layer, replica), distinct from the main thread's (replica 0). */
export function replicaDropoutState(layerSeed: number, replica: number): number {
  return (layerSeed ^ Math.imul(replica, 0x9e3779b9)) >>> 0;
}

async function main(port: NonNullable<typeof parentPort>, data: ReplicaWorkerData): Promise<void> {
  const post = (m: FromWorker) => port.postMessage(m);
  await initWorkerBackend(data.backend);
  const model = buildModel(data.modelName, { seed: data.modelSeed });
  const dropout = seededDropoutLayers(model);
  dropout.forEach((d) => (d.rngState = replicaDropoutState(d.seed, data.replica)));
  const vars = trainableVariables(model);
  const state = [...vars, ...statisticVariables(model)]; // the shared layout (replicas.ts)
  const weights = new Float32Array(data.weights);
  const grads = new Float32Array(data.grads);
  const xs = new Float32Array(data.xs);
  const ys = new Float32Array(data.ys);

  port.on('message', (m: ToWorker) => {
    try {
      if (m.type === 'step') {
        assignFrom(state, weights);
        const r = shardGradients(model, xs, ys, m.size);
        try {
          packInto([...r.grads, ...state.slice(vars.length)], grads); // the moving statistics as this shard left them
        } finally {
          tf.dispose(r.grads);
        }
        post({ type: 'done', loss: r.loss, correct: r.correct });
      } else if (m.type === 'getRng') {
        post({ type: 'rng', states: dropout.map((d) => d.rngState) });
      } else {
        m.states.forEach((s, i) => {
          if (dropout[i]) dropout[i].rngState = s;
        });
        post({ type: 'rng', states: dropout.map((d) => d.rngState) });
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
